//! The Xsi-Actions enterprise directory
//! (`GET …/v2.0/user/{userId}/directories/Enterprise`, Xsi spec R21
//! §3.5.2.7, §3.5.12, §3.5.13) over bwgate's own subscribers: which
//! entries a query selects, in which order, and which page of them.
//!
//! Pure rules: the caller reads the entries, hands over the decoded query
//! parameters ([`DirectoryQuery::from_pairs`]) and writes the page
//! (`crate::xsi::actions::enterprise_directory`).
//!
//! - **Criteria** (`firstName`, `lastName`, `userId`, `groupId`, `number`,
//!   `extension`, `mobileNo`, `emailAddress`, `impId`; also `yahooId` and
//!   `department`, which entries never have: such a criterion matches no
//!   entry, so it empties an AND search and adds nothing to an OR search).
//!   A criterion given more than once matches an entry when any of its
//!   values does. An entry without the field never matches a criterion on
//!   it, not even `*`. Values are compared as stored (`number` is not
//!   normalized: `+19008005006` does not match `9008005006`).
//! - **Patterns** ([`SearchPattern`]): `*` is a wildcard (any run of
//!   characters, empty included) anywhere; without one the value must be
//!   equal. A `/i` suffix makes the match case-insensitive (Unicode
//!   lower-casing of both sides). A literal `/` is written `\/`; any other
//!   unescaped `/` is an error. A `\` not followed by `/` is an ordinary
//!   character (there is no escape for `*`).
//! - **Mode**: `searchCriteriaModeOr=true` ORs the criteria; the default
//!   (`false`) ANDs them. No criteria select every entry.
//! - **Order** ([`SortColumn`]): see there; the order is total, so pages
//!   do not overlap or skip entries between requests.
//! - **Paging**: `start` is 1-based (default 1); `results` is 1..=1000,
//!   default and cap the configured maximum.
//!
//! Parameter names are case-sensitive; unknown parameters (`format`
//! among them) are ignored; for single-valued parameters (`start`,
//! `results`, `sortColumn`, `searchCriteriaModeOr`) the first value
//! counts and later ones are not looked at (Xsi spec §3.3). Every refusal
//! is 9017 (`InvalidParameterValue`) with detail `<param>: <why>`.

use std::cmp::Ordering;

use super::error_code::ErrorCode;
use super::refusal::Refusal;

/// Largest `results` a request may ask for (Xsi spec §3.5.13).
pub const MAX_RESULTS_LIMIT: u32 = 1000;

/// One user as the enterprise directory lists it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DirectoryEntry {
    pub user_id: String,
    pub first_name: String,
    pub last_name: String,
    pub group_id: Option<String>,
    pub number: Option<String>,
    pub extension: Option<String>,
    pub mobile: Option<String>,
    pub email: Option<String>,
    pub imp_id: Option<String>,
}

/// `sortColumn`: the order of the listing.
///
/// Names compare case-insensitively (Unicode lower-casing) first; ties
/// are broken by the other name, then the user id, then the names as
/// written, so the order is total.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum SortColumn {
    /// Last name, then first name (the default).
    #[default]
    LastName,
    /// First name, then last name.
    FirstName,
    /// Department, then last name, then first name. Entries have no
    /// department (all equal), so this orders exactly like
    /// [`SortColumn::LastName`].
    Department,
}

impl SortColumn {
    /// The `sortColumn` value.
    pub fn parse(raw: &str) -> Option<SortColumn> {
        match raw {
            "lastName" => Some(SortColumn::LastName),
            "firstName" => Some(SortColumn::FirstName),
            "department" => Some(SortColumn::Department),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            SortColumn::LastName => "lastName",
            SortColumn::FirstName => "firstName",
            SortColumn::Department => "department",
        }
    }
}

/// A field a search criterion looks at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CriterionField {
    FirstName,
    LastName,
    UserId,
    GroupId,
    Number,
    Extension,
    MobileNo,
    EmailAddress,
    ImpId,
    /// Never present on an entry: matches nothing.
    YahooId,
    /// Never present on an entry: matches nothing.
    Department,
}

impl CriterionField {
    pub const ALL: [CriterionField; 11] = [
        CriterionField::FirstName,
        CriterionField::LastName,
        CriterionField::UserId,
        CriterionField::GroupId,
        CriterionField::Number,
        CriterionField::Extension,
        CriterionField::MobileNo,
        CriterionField::EmailAddress,
        CriterionField::ImpId,
        CriterionField::YahooId,
        CriterionField::Department,
    ];

    /// The query parameter naming this criterion.
    pub fn param(self) -> &'static str {
        match self {
            CriterionField::FirstName => "firstName",
            CriterionField::LastName => "lastName",
            CriterionField::UserId => "userId",
            CriterionField::GroupId => "groupId",
            CriterionField::Number => "number",
            CriterionField::Extension => "extension",
            CriterionField::MobileNo => "mobileNo",
            CriterionField::EmailAddress => "emailAddress",
            CriterionField::ImpId => "impId",
            CriterionField::YahooId => "yahooId",
            CriterionField::Department => "department",
        }
    }

    /// The criterion a query parameter names (case-sensitive).
    pub fn from_param(name: &str) -> Option<CriterionField> {
        CriterionField::ALL.into_iter().find(|f| f.param() == name)
    }

    /// The entry's value of this field, when it has one.
    pub fn value(self, e: &DirectoryEntry) -> Option<&str> {
        match self {
            CriterionField::FirstName => Some(&e.first_name),
            CriterionField::LastName => Some(&e.last_name),
            CriterionField::UserId => Some(&e.user_id),
            CriterionField::GroupId => e.group_id.as_deref(),
            CriterionField::Number => e.number.as_deref(),
            CriterionField::Extension => e.extension.as_deref(),
            CriterionField::MobileNo => e.mobile.as_deref(),
            CriterionField::EmailAddress => e.email.as_deref(),
            CriterionField::ImpId => e.imp_id.as_deref(),
            CriterionField::YahooId | CriterionField::Department => None,
        }
    }
}

/// Why a search pattern is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PatternError {
    #[error("the search pattern is empty")]
    Empty,
    #[error("an unescaped '/' (write a literal slash as \\/; the only suffix is /i)")]
    UnescapedSlash,
}

/// A search value: literal runs separated by `*` wildcards, optionally
/// case-insensitive (see the module documentation).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchPattern {
    /// The literal runs between the `*`s (lower-cased when
    /// case-insensitive); one more than the number of `*`s, so an empty
    /// first (last) run means the pattern starts (ends) with `*`. A
    /// single run is an exact match.
    parts: Vec<String>,
    case_insensitive: bool,
}

impl SearchPattern {
    pub fn parse(raw: &str) -> Result<SearchPattern, PatternError> {
        enum Token {
            Char(char),
            Star,
            Slash,
        }
        let mut tokens = Vec::with_capacity(raw.len());
        let mut chars = raw.chars().peekable();
        while let Some(c) = chars.next() {
            tokens.push(match c {
                '\\' if chars.peek() == Some(&'/') => {
                    chars.next();
                    Token::Char('/')
                }
                '*' => Token::Star,
                '/' => Token::Slash,
                c => Token::Char(c),
            });
        }
        let case_insensitive = matches!(tokens.as_slice(), [.., Token::Slash, Token::Char('i')]);
        if case_insensitive {
            tokens.truncate(tokens.len() - 2);
        }
        if tokens.is_empty() {
            return Err(PatternError::Empty);
        }
        let mut parts = vec![String::new()];
        for t in tokens {
            match t {
                Token::Star => parts.push(String::new()),
                Token::Slash => return Err(PatternError::UnescapedSlash),
                Token::Char(c) => {
                    if let Some(last) = parts.last_mut() {
                        last.push(c);
                    }
                }
            }
        }
        if case_insensitive {
            for p in &mut parts {
                *p = p.to_lowercase();
            }
        }
        Ok(SearchPattern {
            parts,
            case_insensitive,
        })
    }

    pub fn is_case_insensitive(&self) -> bool {
        self.case_insensitive
    }

    /// Has at least one `*`.
    pub fn has_wildcard(&self) -> bool {
        self.parts.len() > 1
    }

    /// Whether `value` matches the whole pattern.
    pub fn matches(&self, value: &str) -> bool {
        if self.case_insensitive {
            glob_match(&self.parts, &value.to_lowercase())
        } else {
            glob_match(&self.parts, value)
        }
    }
}

/// `parts` joined by `*` matches `value`: the first part is a prefix, the
/// last a suffix (not overlapping the prefix), the middle ones occur in
/// order in between (leftmost occurrence each, which is enough when the
/// only wildcard is `*`).
fn glob_match(parts: &[String], value: &str) -> bool {
    let (first, rest) = match parts.split_first() {
        Some(x) => x,
        None => return value.is_empty(),
    };
    let Some((last, middle)) = rest.split_last() else {
        return value == first;
    };
    let Some(mut rest) = value.strip_prefix(first.as_str()) else {
        return false;
    };
    let Some(stripped) = rest.strip_suffix(last.as_str()) else {
        return false;
    };
    rest = stripped;
    for part in middle {
        match rest.find(part.as_str()) {
            Some(at) => rest = &rest[at + part.len()..],
            None => return false,
        }
    }
    true
}

/// One search criterion: a field and the values it may match (any).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchCriterion {
    pub field: CriterionField,
    /// Never empty.
    pub patterns: Vec<SearchPattern>,
}

impl SearchCriterion {
    pub fn matches(&self, e: &DirectoryEntry) -> bool {
        match self.field.value(e) {
            Some(v) => self.patterns.iter().any(|p| p.matches(v)),
            None => false,
        }
    }
}

/// A directory request: criteria, mode, order and page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirectoryQuery {
    /// One per criterion name, in the order each first appears.
    pub criteria: Vec<SearchCriterion>,
    /// `searchCriteriaModeOr=true`: an entry matching any criterion is
    /// selected; otherwise it must match all.
    pub or_mode: bool,
    pub sort: SortColumn,
    /// 1-based index of the first entry of the page.
    pub start: u32,
    /// Most entries on the page (1..=1000).
    pub results: u32,
}

impl DirectoryQuery {
    /// Every entry, first page of `max_results`.
    pub fn all(max_results: u32) -> DirectoryQuery {
        DirectoryQuery {
            criteria: Vec::new(),
            or_mode: false,
            sort: SortColumn::default(),
            start: 1,
            results: clamp_max(max_results),
        }
    }

    /// Reads the query parameters (decoded `(name, value)` pairs, in
    /// order). `max_results` is the configured default and cap of
    /// `results` (itself held to 1..=1000).
    pub fn from_pairs(
        pairs: &[(String, String)],
        max_results: u32,
    ) -> Result<DirectoryQuery, Refusal> {
        let max_results = clamp_max(max_results);
        let mut q = DirectoryQuery::all(max_results);
        let mut or_mode = None;
        let mut sort = None;
        let mut start = None;
        let mut results = None;
        for (name, value) in pairs {
            match name.as_str() {
                "searchCriteriaModeOr" if or_mode.is_none() => {
                    or_mode = Some(match value.as_str() {
                        "true" => true,
                        "false" => false,
                        _ => return Err(invalid(name, "must be true or false")),
                    });
                }
                "sortColumn" if sort.is_none() => {
                    sort = Some(SortColumn::parse(value).ok_or_else(|| {
                        invalid(name, "must be lastName, firstName or department")
                    })?);
                }
                "start" if start.is_none() => {
                    let n = parse_count(name, value)?;
                    if n == 0 {
                        return Err(invalid(name, "must be at least 1"));
                    }
                    start = Some(n);
                }
                "results" if results.is_none() => {
                    let n = parse_count(name, value)?;
                    if n == 0 || n > MAX_RESULTS_LIMIT {
                        return Err(invalid(
                            name,
                            &format!("must be from 1 to {MAX_RESULTS_LIMIT}"),
                        ));
                    }
                    results = Some(n.min(max_results));
                }
                other => {
                    let Some(field) = CriterionField::from_param(other) else {
                        continue; // unknown, or a repeated single-valued one
                    };
                    let pattern =
                        SearchPattern::parse(value).map_err(|e| invalid(name, &e.to_string()))?;
                    match q.criteria.iter_mut().find(|c| c.field == field) {
                        Some(c) => c.patterns.push(pattern),
                        None => q.criteria.push(SearchCriterion {
                            field,
                            patterns: vec![pattern],
                        }),
                    }
                }
            }
        }
        q.or_mode = or_mode.unwrap_or(false);
        q.sort = sort.unwrap_or_default();
        q.start = start.unwrap_or(1);
        q.results = results.unwrap_or(max_results);
        Ok(q)
    }

    /// Whether the criteria select this entry.
    pub fn selects(&self, e: &DirectoryEntry) -> bool {
        if self.criteria.is_empty() {
            return true;
        }
        if self.or_mode {
            self.criteria.iter().any(|c| c.matches(e))
        } else {
            self.criteria.iter().all(|c| c.matches(e))
        }
    }
}

fn clamp_max(max_results: u32) -> u32 {
    max_results.clamp(1, MAX_RESULTS_LIMIT)
}

fn invalid(param: &str, why: &str) -> Refusal {
    Refusal::new(ErrorCode::InvalidParameterValue, format!("{param}: {why}"))
}

/// A count: ASCII digits only (no sign, no spaces), within `u32`.
fn parse_count(param: &str, value: &str) -> Result<u32, Refusal> {
    if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
        return Err(invalid(param, "must be a whole number"));
    }
    value
        .parse::<u32>()
        .map_err(|_| invalid(param, "is too large"))
}

/// One page of the listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirectoryPage<'a> {
    /// The request's `start` (even past the end).
    pub start_index: u32,
    /// Entries on this page.
    pub number_of_records: u32,
    /// Entries the criteria select, on every page.
    pub total_available_records: u32,
    pub entries: Vec<&'a DirectoryEntry>,
}

/// Filters, sorts and pages `entries`.
pub fn search<'a>(entries: &'a [DirectoryEntry], q: &DirectoryQuery) -> DirectoryPage<'a> {
    let mut selected: Vec<SortKey<'a>> = entries
        .iter()
        .filter(|e| q.selects(e))
        .map(|e| SortKey::new(e, q.sort))
        .collect();
    // Stable, and the key is total over the compared fields.
    selected.sort_by(SortKey::cmp);
    let total = selected.len();
    let skip = usize::try_from(q.start.saturating_sub(1)).unwrap_or(usize::MAX);
    let take = usize::try_from(q.results).unwrap_or(usize::MAX);
    let page: Vec<&'a DirectoryEntry> = selected
        .into_iter()
        .skip(skip)
        .take(take)
        .map(|k| k.entry)
        .collect();
    DirectoryPage {
        start_index: q.start,
        number_of_records: u32::try_from(page.len()).unwrap_or(u32::MAX),
        total_available_records: u32::try_from(total).unwrap_or(u32::MAX),
        entries: page,
    }
}

/// An entry with its names lower-cased once (not at every comparison).
struct SortKey<'a> {
    primary: String,
    secondary: String,
    entry: &'a DirectoryEntry,
}

impl<'a> SortKey<'a> {
    fn new(entry: &'a DirectoryEntry, column: SortColumn) -> SortKey<'a> {
        let (primary, secondary) = match column {
            SortColumn::LastName | SortColumn::Department => (&entry.last_name, &entry.first_name),
            SortColumn::FirstName => (&entry.first_name, &entry.last_name),
        };
        SortKey {
            primary: primary.to_lowercase(),
            secondary: secondary.to_lowercase(),
            entry,
        }
    }

    fn raw(&self) -> (&str, &str) {
        // `primary` was built from one of these; which one does not
        // matter for the tie-break as long as it is the same for both.
        (&self.entry.last_name, &self.entry.first_name)
    }

    fn cmp(&self, other: &SortKey<'_>) -> Ordering {
        self.primary
            .cmp(&other.primary)
            .then_with(|| self.secondary.cmp(&other.secondary))
            .then_with(|| self.entry.user_id.cmp(&other.entry.user_id))
            .then_with(|| self.raw().cmp(&other.raw()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn query(list: &[(&str, &str)]) -> DirectoryQuery {
        DirectoryQuery::from_pairs(&pairs(list), 100).unwrap()
    }

    fn refused(list: &[(&str, &str)]) -> Refusal {
        DirectoryQuery::from_pairs(&pairs(list), 100).expect_err("refused")
    }

    fn entry(user: &str, first: &str, last: &str) -> DirectoryEntry {
        DirectoryEntry {
            user_id: user.into(),
            first_name: first.into(),
            last_name: last.into(),
            ..DirectoryEntry::default()
        }
    }

    fn users(page: &DirectoryPage<'_>) -> Vec<String> {
        page.entries.iter().map(|e| e.user_id.clone()).collect()
    }

    fn p(raw: &str) -> SearchPattern {
        SearchPattern::parse(raw).unwrap()
    }

    #[test]
    fn patterns_without_a_star_match_exactly() {
        assert!(p("john").matches("john"));
        assert!(!p("john").matches("johnny"));
        assert!(!p("john").matches("ajohn"));
        assert!(!p("john").matches("John"));
        assert!(!p("john").has_wildcard());
    }

    #[test]
    fn stars_are_prefix_suffix_contains_and_glob() {
        assert!(p("john*").matches("johnny"));
        assert!(p("john*").matches("john"));
        assert!(!p("john*").matches("ajohn"));
        assert!(p("*john").matches("ajohn"));
        assert!(!p("*john").matches("johnny"));
        assert!(p("*john*").matches("xjohnx"));
        assert!(p("*john*").matches("john"));
        assert!(!p("*john*").matches("jon"));
        assert!(p("jo*hn").matches("john"));
        assert!(p("jo*hn").matches("joXYhn"));
        assert!(
            !p("jo*hn").matches("joh"),
            "prefix and suffix may not overlap"
        );
        assert!(p("a*b*c").matches("a-b-c"));
        assert!(p("a*b*c").matches("abbc"));
        assert!(!p("a*b*c").matches("a-c-b"));
        assert!(p("*").matches(""));
        assert!(p("*").matches("anything"));
        assert!(p("**").matches("x"));
        assert!(p("*@example.com").matches("j@example.com"));
    }

    #[test]
    fn slash_i_is_a_unicode_case_insensitive_match() {
        let pat = p("JÜR*/i");
        assert!(pat.is_case_insensitive());
        assert!(pat.matches("jürgen"));
        assert!(pat.matches("JÜRGEN"));
        assert!(!p("JÜR*").matches("jürgen"), "case-sensitive without /i");
        assert!(p("ΣΟΦΙΑ/i").matches("σοφια"));
        assert!(p("smith/i").matches("SMITH"));
        assert!(!p("smith/i").matches("SMITHS"));
    }

    #[test]
    fn slashes_must_be_escaped() {
        assert!(p(r"a\/b").matches("a/b"));
        assert!(p(r"a\/b/i").matches("A/B"));
        assert!(p(r"*\/*").matches("x/y"));
        assert!(p(r"a\/i").matches("a/i"), "an escaped slash is no suffix");
        assert!(!p(r"a\/i").is_case_insensitive());
        assert!(p(r"a\b").matches(r"a\b"), "other backslashes are literal");
        for bad in ["a/b", "a/I", "a/", "/", "a/ii", "a/i/i", "/ia"] {
            assert_eq!(
                SearchPattern::parse(bad),
                Err(PatternError::UnescapedSlash),
                "{bad}"
            );
        }
        assert_eq!(SearchPattern::parse(""), Err(PatternError::Empty));
        assert_eq!(SearchPattern::parse("/i"), Err(PatternError::Empty));
    }

    #[test]
    fn defaults_and_unknown_parameters() {
        let q = query(&[("format", "json"), ("FirstName", "x"), ("other", "y")]);
        assert_eq!(q, DirectoryQuery::all(100));
        assert_eq!(
            (q.or_mode, q.sort, q.start, q.results),
            (false, SortColumn::LastName, 1, 100)
        );
        assert!(q.criteria.is_empty());
    }

    #[test]
    fn paging_parameters_are_checked_and_results_clamped() {
        let q = query(&[("start", "3"), ("results", "1000")]);
        assert_eq!((q.start, q.results), (3, 100), "clamped to max_results");
        assert_eq!(query(&[("results", "7")]).results, 7);
        for (param, value) in [
            ("start", "0"),
            ("start", "x"),
            ("start", "-1"),
            ("start", "+2"),
            ("start", ""),
            ("start", "99999999999"),
            ("results", "0"),
            ("results", "1001"),
            ("results", "ten"),
            ("sortColumn", "userId"),
            ("sortColumn", "LastName"),
            ("searchCriteriaModeOr", "yes"),
            ("firstName", ""),
            ("lastName", "a/b"),
            ("yahooId", "/i"),
        ] {
            let r = refused(&[(param, value)]);
            assert_eq!(r.code, ErrorCode::InvalidParameterValue, "{param}={value}");
            assert_eq!(r.code.code(), 9017);
            let detail = r.detail.unwrap_or_default();
            assert!(
                detail.starts_with(&format!("{param}: ")),
                "{param}={value}: {detail}"
            );
        }
    }

    #[test]
    fn max_results_is_held_to_one_through_a_thousand() {
        let q = DirectoryQuery::from_pairs(&[], 0).unwrap();
        assert_eq!(q.results, 1);
        let q = DirectoryQuery::from_pairs(&pairs(&[("results", "1000")]), 5000).unwrap();
        assert_eq!(q.results, 1000);
        let q = DirectoryQuery::from_pairs(&[], 5000).unwrap();
        assert_eq!(q.results, 1000);
    }

    #[test]
    fn single_valued_parameters_take_the_first_value() {
        let q = query(&[
            ("start", "2"),
            ("start", "0"),
            ("results", "5"),
            ("results", "bad"),
            ("sortColumn", "firstName"),
            ("sortColumn", "nope"),
            ("searchCriteriaModeOr", "true"),
            ("searchCriteriaModeOr", "maybe"),
        ]);
        assert_eq!(
            (q.start, q.results, q.sort, q.or_mode),
            (2, 5, SortColumn::FirstName, true)
        );
    }

    #[test]
    fn repeated_criteria_are_multi_valued_in_first_seen_order() {
        let q = query(&[
            ("lastName", "Smith"),
            ("firstName", "A*"),
            ("lastName", "Jones"),
        ]);
        let fields: Vec<_> = q.criteria.iter().map(|c| c.field).collect();
        assert_eq!(
            fields,
            vec![CriterionField::LastName, CriterionField::FirstName]
        );
        assert_eq!(q.criteria[0].patterns, vec![p("Smith"), p("Jones")]);
        let entries = vec![
            entry("1@x", "Ann", "Smith"),
            entry("2@x", "Al", "Jones"),
            entry("3@x", "Bob", "Jones"),
            entry("4@x", "Amy", "Brown"),
        ];
        assert_eq!(users(&search(&entries, &q)), vec!["2@x", "1@x"]);
    }

    #[test]
    fn every_criterion_looks_at_its_field() {
        let e = DirectoryEntry {
            user_id: "u@x.example".into(),
            first_name: "Fi".into(),
            last_name: "La".into(),
            group_id: Some("G1".into()),
            number: Some("+15550001".into()),
            extension: Some("0001".into()),
            mobile: Some("+15559999".into()),
            email: Some("fi@mail.example".into()),
            imp_id: Some("fi@imp.example".into()),
        };
        for (param, hit, miss) in [
            ("firstName", "Fi", "La"),
            ("lastName", "La", "Fi"),
            ("userId", "u@*", "fi@*"),
            ("groupId", "G1", "G2"),
            ("number", "+1555000*", "*9999"),
            ("extension", "0001", "1"),
            ("mobileNo", "*9999", "+15550001"),
            ("emailAddress", "fi@mail*", "fi@imp*"),
            ("impId", "*@imp.example", "*@mail.example"),
        ] {
            let entries = std::slice::from_ref(&e);
            assert_eq!(
                search(entries, &query(&[(param, hit)])).total_available_records,
                1,
                "{param}={hit}"
            );
            assert_eq!(
                search(entries, &query(&[(param, miss)])).total_available_records,
                0,
                "{param}={miss}"
            );
        }
        // Fields an entry lacks never match, not even `*`.
        let bare = entry("b@x", "B", "B");
        for param in ["groupId", "number", "mobileNo", "yahooId", "department"] {
            let page = search(std::slice::from_ref(&bare), &query(&[(param, "*")]));
            assert_eq!(page.total_available_records, 0, "{param}");
        }
    }

    #[test]
    fn and_is_the_default_and_or_is_asked_for() {
        let entries = vec![
            entry("1@x", "Ann", "Smith"),
            entry("2@x", "Ann", "Jones"),
            entry("3@x", "Bob", "Smith"),
        ];
        let and = query(&[("firstName", "Ann"), ("lastName", "Smith")]);
        assert_eq!(users(&search(&entries, &and)), vec!["1@x"]);
        let or = query(&[
            ("firstName", "Ann"),
            ("lastName", "Smith"),
            ("searchCriteriaModeOr", "true"),
        ]);
        assert_eq!(users(&search(&entries, &or)), vec!["2@x", "1@x", "3@x"]);
        let explicit_and = query(&[
            ("searchCriteriaModeOr", "false"),
            ("firstName", "Ann"),
            ("lastName", "Smith"),
        ]);
        assert_eq!(users(&search(&entries, &explicit_and)), vec!["1@x"]);
        // yahooId matches nothing: it empties AND, adds nothing to OR.
        let and_yahoo = query(&[("firstName", "Ann"), ("yahooId", "*")]);
        assert_eq!(search(&entries, &and_yahoo).total_available_records, 0);
        let or_yahoo = query(&[
            ("firstName", "Ann"),
            ("yahooId", "*"),
            ("searchCriteriaModeOr", "true"),
        ]);
        assert_eq!(search(&entries, &or_yahoo).total_available_records, 2);
    }

    #[test]
    fn sorting_is_case_insensitive_and_total() {
        let entries = vec![
            entry("c@x", "bob", "smith"),
            entry("b@x", "Bob", "Smith"),
            entry("a@x", "Bob", "Smith"),
            entry("d@x", "Zed", "adams"),
            entry("e@x", "amy", "Smith"),
        ];
        let by_last = search(&entries, &query(&[]));
        assert_eq!(users(&by_last), vec!["d@x", "e@x", "a@x", "b@x", "c@x"]);
        let by_first = search(&entries, &query(&[("sortColumn", "firstName")]));
        assert_eq!(users(&by_first), vec!["e@x", "a@x", "b@x", "c@x", "d@x"]);
        let by_department = search(&entries, &query(&[("sortColumn", "department")]));
        assert_eq!(users(&by_department), users(&by_last));
        // The input order does not change the result.
        let mut reversed = entries.clone();
        reversed.reverse();
        assert_eq!(users(&search(&reversed, &query(&[]))), users(&by_last));
    }

    #[test]
    fn ties_on_user_id_fall_back_to_the_names_as_written() {
        let entries = vec![entry("a@x", "bob", "Smith"), entry("a@x", "Bob", "Smith")];
        let mut reversed = entries.clone();
        reversed.reverse();
        let first = search(&entries, &query(&[]));
        let second = search(&reversed, &query(&[]));
        assert_eq!(first.entries, second.entries);
        assert_eq!(first.entries[0].first_name, "Bob");
    }

    #[test]
    fn pages_echo_start_and_count_the_whole_selection() {
        let entries: Vec<_> = (0..7)
            .map(|i| entry(&format!("u{i}@x"), "F", &format!("L{i}")))
            .collect();
        let page = search(&entries, &query(&[("start", "3"), ("results", "2")]));
        assert_eq!(
            (
                page.start_index,
                page.number_of_records,
                page.total_available_records
            ),
            (3, 2, 7)
        );
        assert_eq!(users(&page), vec!["u2@x", "u3@x"]);
        let last = search(&entries, &query(&[("start", "6"), ("results", "5")]));
        assert_eq!(users(&last), vec!["u5@x", "u6@x"]);
        assert_eq!(last.number_of_records, 2);
        let beyond = search(&entries, &query(&[("start", "8")]));
        assert_eq!(
            (
                beyond.start_index,
                beyond.number_of_records,
                beyond.total_available_records
            ),
            (8, 0, 7)
        );
        assert!(beyond.entries.is_empty());
        let none = search(&[], &query(&[]));
        assert_eq!((none.start_index, none.total_available_records), (1, 0));
        let far = search(&entries, &query(&[("start", "4294967295")]));
        assert_eq!((far.start_index, far.number_of_records), (u32::MAX, 0));
    }
}
