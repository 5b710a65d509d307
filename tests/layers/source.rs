//! Reads the crate's source into module references, without a parser
//! dependency: a small lexer (comments, strings and chars dropped) and a
//! walk of the `mod` tree from `src/lib.rs`, so every file is read with its
//! real module path (`#[path]` included) and test-only code is known.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, PartialEq)]
pub enum Tok {
    Ident(String),
    /// A string literal's contents (only `#[path = "…"]` needs them).
    Str(String),
    /// `::`
    PathSep,
    Punct(char),
}

#[derive(Debug, Clone)]
pub struct Token {
    pub tok: Tok,
    pub line: usize,
}

/// One reference from code in one top-level module to another.
#[derive(Debug, Clone)]
pub struct Reference {
    pub from: String,
    pub to: String,
    pub file: PathBuf,
    pub line: usize,
    /// `#[cfg(test)]` code: reported, not held to the rules.
    pub test: bool,
    pub how: How,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum How {
    /// A `crate::…`, `super::…` or `$crate::…` path (use or inline).
    Path,
    /// `app.store`: the store reached through the shared application state,
    /// which no path shows.
    AppStore,
}

/// Where an external crate is named (an identifier outside comments and
/// strings), e.g. `rusqlite`; test code included.
#[derive(Debug, Clone)]
pub struct Mention {
    pub module: String,
    pub file: PathBuf,
    pub line: usize,
}

#[derive(Debug, Default)]
pub struct Crate {
    pub top_modules: BTreeSet<String>,
    pub references: Vec<Reference>,
    pub files: Vec<PathBuf>,
    mentions_wanted: Vec<String>,
    pub mentions: Vec<(String, Mention)>,
}

pub fn lex(src: &str) -> Vec<Token> {
    let chars: Vec<char> = src.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    let mut line = 1;
    let at = |i: usize| chars.get(i).copied().unwrap_or('\0');
    while i < chars.len() {
        let c = chars[i];
        if c == '\n' {
            line += 1;
            i += 1;
        } else if c.is_whitespace() {
            i += 1;
        } else if c == '/' && at(i + 1) == '/' {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
        } else if c == '/' && at(i + 1) == '*' {
            let mut depth = 0;
            while i < chars.len() {
                if chars[i] == '/' && at(i + 1) == '*' {
                    depth += 1;
                    i += 2;
                } else if chars[i] == '*' && at(i + 1) == '/' {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    if chars[i] == '\n' {
                        line += 1;
                    }
                    i += 1;
                }
            }
        } else if let Some((raw, quote)) = string_start(&chars, i) {
            // "…", b"…", c"…", r#"…"#, br"…", cr#"…"#
            let start_line = line;
            let hashes = chars[i..quote].iter().filter(|c| **c == '#').count();
            let mut j = quote + 1;
            let mut text = String::new();
            loop {
                let d = at(j);
                if j >= chars.len() {
                    break;
                }
                if d == '\n' {
                    line += 1;
                }
                if !raw && d == '\\' {
                    text.push(d);
                    text.push(at(j + 1));
                    if at(j + 1) == '\n' {
                        line += 1;
                    }
                    j += 2;
                    continue;
                }
                if d == '"' && (0..hashes).all(|k| at(j + 1 + k) == '#') {
                    j += 1 + hashes;
                    break;
                }
                text.push(d);
                j += 1;
            }
            out.push(Token {
                tok: Tok::Str(text),
                line: start_line,
            });
            i = j;
        } else if c == 'b' && at(i + 1) == '\'' {
            // b'x', b'\n'
            i += 2;
            if at(i) == '\\' {
                i += 2;
            }
            while i < chars.len() && chars[i] != '\'' {
                i += 1;
            }
            i += 1;
        } else if c == '\'' {
            // A char literal ('x', '\n', '\u{1F600}') or a lifetime ('a).
            if at(i + 1) == '\\' {
                i += 3;
                while i < chars.len() && chars[i] != '\'' {
                    i += 1;
                }
                i += 1;
            } else if at(i + 2) == '\'' {
                i += 3;
            } else {
                i += 1;
                while at(i).is_alphanumeric() || at(i) == '_' {
                    i += 1;
                }
            }
        } else if c.is_alphabetic() || c == '_' {
            if c == 'r' && at(i + 1) == '#' {
                i += 2; // r#ident
            }
            let start = i;
            while at(i).is_alphanumeric() || at(i) == '_' {
                i += 1;
            }
            let word: String = chars[start..i].iter().collect();
            out.push(Token {
                tok: Tok::Ident(word),
                line,
            });
        } else if c.is_ascii_digit() {
            while at(i).is_alphanumeric()
                || at(i) == '_'
                || at(i) == '.' && at(i + 1).is_ascii_digit()
            {
                i += 1;
            }
        } else if c == ':' && at(i + 1) == ':' {
            out.push(Token {
                tok: Tok::PathSep,
                line,
            });
            i += 2;
        } else {
            out.push(Token {
                tok: Tok::Punct(c),
                line,
            });
            i += 1;
        }
    }
    out
}

/// `cfg(test)` or `cfg(all(…, test, …))`: code compiled only for tests.
fn is_cfg_test(attr: &[&Tok]) -> bool {
    let word = |t: &Tok, w: &str| matches!(t, Tok::Ident(s) if s == w);
    match attr {
        [cfg, Tok::Punct('('), test, Tok::Punct(')')] => word(cfg, "cfg") && word(test, "test"),
        [cfg, Tok::Punct('('), all, Tok::Punct('('), list @ .., Tok::Punct(')'), Tok::Punct(')')]
            if word(cfg, "cfg") && word(all, "all") =>
        {
            let mut depth = 0;
            list.iter().any(|t| {
                match t {
                    Tok::Punct('(') => depth += 1,
                    Tok::Punct(')') => depth -= 1,
                    _ => {}
                }
                depth == 0 && word(t, "test")
            })
        }
        _ => false,
    }
}

/// At a string literal's start (`"`, `b"`, `c"`, `r#"`, `br"`, …): whether
/// it is raw and the index of its opening quote.
fn string_start(chars: &[char], i: usize) -> Option<(bool, usize)> {
    let mut j = i;
    let mut raw = false;
    while j < i + 2 && matches!(chars.get(j), Some('b' | 'c' | 'r')) {
        raw |= chars[j] == 'r';
        j += 1;
    }
    if raw {
        while chars.get(j) == Some(&'#') {
            j += 1;
        }
    }
    (chars.get(j) == Some(&'"')).then_some((raw, j))
}

fn ident(t: Option<&Token>) -> Option<&str> {
    match t.map(|t| &t.tok) {
        Some(Tok::Ident(s)) => Some(s.as_str()),
        _ => None,
    }
}

fn punct(t: Option<&Token>, c: char) -> bool {
    matches!(t.map(|t| &t.tok), Some(Tok::Punct(p)) if *p == c)
}

fn is_sep(t: Option<&Token>) -> bool {
    matches!(t.map(|t| &t.tok), Some(Tok::PathSep))
}

/// Index just past the bracket group opening at `open`.
fn skip_group(toks: &[Token], open: usize) -> usize {
    let mut depth = 0i32;
    let mut i = open;
    while i < toks.len() {
        match toks[i].tok {
            Tok::Punct('(' | '[' | '{') => depth += 1,
            Tok::Punct(')' | ']' | '}') => {
                depth -= 1;
                if depth == 0 {
                    return i + 1;
                }
            }
            _ => {}
        }
        i += 1;
    }
    i
}

/// Index just past the item starting at `start`: its `;` or its first
/// top-level `{…}` group.
fn skip_item(toks: &[Token], start: usize) -> usize {
    let mut i = start;
    while i < toks.len() {
        match toks[i].tok {
            Tok::Punct(';') => return i + 1,
            Tok::Punct('{') => return skip_group(toks, i),
            Tok::Punct('(' | '[') => i = skip_group(toks, i),
            _ => i += 1,
        }
    }
    i
}

impl Crate {
    /// Reads the crate whose root is `src/lib.rs` under `manifest_dir`;
    /// records where each of `crates` (external crate names) is named.
    pub fn read(manifest_dir: &Path, crates: &[&str]) -> Crate {
        let mut krate = Crate {
            mentions_wanted: crates.iter().map(|c| c.to_string()).collect(),
            ..Crate::default()
        };
        let root = manifest_dir.join("src/lib.rs");
        krate.read_file(&root, &[], true, false);
        krate
    }

    fn read_file(&mut self, path: &Path, module: &[String], owns_dir: bool, test: bool) {
        let src =
            fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
        self.files.push(path.to_path_buf());
        let toks = lex(&src);
        // Directory holding this module's child files.
        let parent = path.parent().unwrap_or(Path::new("."));
        let child_dir = if owns_dir {
            parent.to_path_buf()
        } else {
            let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or("");
            parent.join(stem)
        };
        // Inline modules: (name, brace depth inside them, test-only).
        let mut inline: Vec<(String, i32, bool)> = Vec::new();
        let mut depth = 0i32;
        let mut cfg_test = false;
        let mut path_attr: Option<String> = None;
        let mut i = 0;
        while i < toks.len() {
            let in_test = test || inline.iter().any(|m| m.2);
            match &toks[i].tok {
                Tok::Punct('#') => {
                    // Attribute: #[…] or #![…]
                    let mut j = i + 1;
                    if punct(toks.get(j), '!') {
                        j += 1;
                    }
                    if punct(toks.get(j), '[') {
                        let end = skip_group(&toks, j);
                        let body: Vec<&Tok> = toks[j + 1..end - 1].iter().map(|t| &t.tok).collect();
                        if is_cfg_test(&body) {
                            cfg_test = true;
                        }
                        if let [Tok::Ident(p), Tok::Punct('='), Tok::Str(s)] = body.as_slice() {
                            if p == "path" {
                                path_attr = Some(s.clone());
                            }
                        }
                        i = end;
                        continue;
                    }
                    i += 1;
                    continue;
                }
                Tok::Ident(w) if w == "mod" => {
                    if let Some(name) = ident(toks.get(i + 1)) {
                        let name = name.to_string();
                        if punct(toks.get(i + 2), ';') {
                            assert!(
                                inline.is_empty(),
                                "{}: `mod {name};` inside an inline module is not supported by this check",
                                path.display()
                            );
                            let file = match path_attr.take() {
                                Some(p) => parent.join(p),
                                None => {
                                    let flat = child_dir.join(format!("{name}.rs"));
                                    if flat.exists() {
                                        flat
                                    } else {
                                        child_dir.join(&name).join("mod.rs")
                                    }
                                }
                            };
                            let owns = file.file_name().is_some_and(|f| f == "mod.rs");
                            let mut child = module.to_vec();
                            child.push(name.clone());
                            if module.is_empty() {
                                self.top_modules.insert(name.clone());
                            }
                            self.read_file(&file, &child, owns, in_test || cfg_test);
                            cfg_test = false;
                            i += 3;
                            continue;
                        }
                        if punct(toks.get(i + 2), '{') {
                            depth += 1;
                            inline.push((name, depth, cfg_test));
                            cfg_test = false;
                            path_attr = None;
                            i += 3;
                            continue;
                        }
                    }
                }
                _ => {}
            }
            if cfg_test {
                // A test-only item other than a module: not held to the rules.
                let end = skip_item(&toks, i);
                self.scan(&toks[i..end], path, module, &inline, true);
                i = end;
                cfg_test = false;
                path_attr = None;
                continue;
            }
            match toks[i].tok {
                Tok::Punct('{') => depth += 1,
                Tok::Punct('}') => {
                    if inline.last().is_some_and(|m| m.1 == depth) {
                        inline.pop();
                    }
                    depth -= 1;
                }
                _ => {}
            }
            self.scan_at(&toks, i, path, module, &inline, in_test);
            i += 1;
        }
    }

    fn scan(
        &mut self,
        toks: &[Token],
        file: &Path,
        module: &[String],
        inline: &[(String, i32, bool)],
        test: bool,
    ) {
        for i in 0..toks.len() {
            self.scan_at(toks, i, file, module, inline, test);
        }
    }

    /// Records a reference starting at token `i`, if one does.
    fn scan_at(
        &mut self,
        toks: &[Token],
        i: usize,
        file: &Path,
        module: &[String],
        inline: &[(String, i32, bool)],
        test: bool,
    ) {
        let Some(word) = ident(toks.get(i)) else {
            return;
        };
        let line = toks[i].line;
        let mut here: Vec<String> = module.to_vec();
        here.extend(inline.iter().map(|m| m.0.clone()));
        let from = here.first().cloned().unwrap_or_default();
        if self.mentions_wanted.iter().any(|c| c == word)
            && !is_sep(i.checked_sub(1).and_then(|p| toks.get(p)))
        {
            self.mentions.push((
                word.to_string(),
                Mention {
                    module: from.clone(),
                    file: file.to_path_buf(),
                    line,
                },
            ));
        }
        if word == "app"
            && punct(toks.get(i + 1), '.')
            && ident(toks.get(i + 2)) == Some("store")
            && !punct(toks.get(i + 3), '(')
        {
            self.push(&from, "store", file, line, test, How::AppStore);
        }
        // A path starts at `crate`, `$crate`, `super` or `self` not preceded by `::`.
        if !matches!(word, "crate" | "super" | "self")
            || is_sep(i.checked_sub(1).and_then(|p| toks.get(p)))
            || !is_sep(toks.get(i + 1))
        {
            return;
        }
        for to in path_targets(toks, i, &here) {
            self.push(&from, &to, file, line, test, How::Path);
        }
    }

    fn push(&mut self, from: &str, to: &str, file: &Path, line: usize, test: bool, how: How) {
        if from.is_empty() || from == to {
            return;
        }
        self.references.push(Reference {
            from: from.to_string(),
            to: to.to_string(),
            file: file.to_path_buf(),
            line,
            test,
            how,
        });
    }
}

/// The top-level modules a path (or use tree) starting at token `i`
/// reaches from module `here` (its own for a path that stays inside).
fn path_targets(toks: &[Token], i: usize, here: &[String]) -> Vec<String> {
    let mut out = Vec::new();
    let (prefix, next) = resolve_prefix(toks, i, here);
    collect(toks, next, prefix, &mut out);
    out
}

/// Resolves `crate::`, `self::` and `super::super::…` into an absolute
/// module prefix; returns it and the index of the token after the last `::`.
fn resolve_prefix(toks: &[Token], i: usize, here: &[String]) -> (Vec<String>, usize) {
    let mut prefix: Vec<String> = here.to_vec();
    let mut j = i;
    match ident(toks.get(j)) {
        Some("crate") => {
            prefix.clear();
            j += 2;
        }
        Some("self") => j += 2,
        _ => {}
    }
    while ident(toks.get(j)) == Some("super") && is_sep(toks.get(j + 1)) {
        prefix.pop();
        j += 2;
    }
    (prefix, j)
}

/// Walks a path or use tree at `j` under `prefix`, pushing each leaf's
/// top-level module.
fn collect(toks: &[Token], j: usize, prefix: Vec<String>, out: &mut Vec<String>) {
    if let Some(top) = prefix.first() {
        out.push(top.clone());
        return;
    }
    // At the crate root: the next segment names the top-level module, or
    // a `{…}` group holds several.
    if let Some(name) = ident(toks.get(j)) {
        out.push(name.to_string());
    } else if punct(toks.get(j), '{') {
        let end = skip_group(toks, j);
        let mut k = j + 1;
        while k < end - 1 {
            if let Some(name) = ident(toks.get(k)) {
                if name != "self" {
                    out.push(name.to_string());
                }
            }
            // Skip to the next top-level comma of the group.
            while k < end - 1 && !punct(toks.get(k), ',') {
                if punct(toks.get(k), '{') {
                    k = skip_group(toks, k);
                } else {
                    k += 1;
                }
            }
            k += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Writes a small crate and returns what the scan found: sorted
    /// `from->to` (with `[test]` for test-only references) and mentions.
    fn scan(files: &[(&str, &str)]) -> (Vec<String>, Vec<String>) {
        let dir = tempfile::tempdir().expect("temp dir");
        for (path, text) in files {
            let path = dir.path().join(path);
            fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
            fs::write(&path, text).expect("write");
        }
        let krate = Crate::read(dir.path(), &["rusqlite"]);
        let mut refs: Vec<String> = krate
            .references
            .iter()
            .map(|r| {
                let test = if r.test { "[test]" } else { "" };
                format!("{}->{}{test}", r.from, r.to)
            })
            .collect();
        refs.sort();
        refs.dedup();
        let mentions = krate
            .mentions
            .iter()
            .map(|(c, m)| format!("{c}@{}:{}", m.module, m.line))
            .collect();
        (refs, mentions)
    }

    #[test]
    fn finds_use_trees_inline_paths_super_chains_and_app_store() {
        let (refs, _) = scan(&[
            (
                "src/lib.rs",
                "pub mod a;\npub mod b;\nmod c;\nmod d;\nmod e;\nmod f;\n",
            ),
            (
                "src/a/mod.rs",
                "mod inner;\nuse crate::{b::X, c::{self, Y}};\nfn f() { let _ = crate::d::Z; }\n",
            ),
            // super::super from a/inner.rs reaches the root, then e.
            (
                "src/a/inner.rs",
                "use super::super::e::W;\nuse super::Local;\n",
            ),
            (
                "src/b.rs",
                "fn g(app: &App) { app.store.get(); self.last.store(1); }\n",
            ),
            (
                "src/c.rs",
                "mod nested { fn h() { super::super::f::run(); } }\n",
            ),
            ("src/d.rs", ""),
            ("src/e.rs", ""),
            ("src/f.rs", ""),
        ]);
        assert_eq!(refs, ["a->b", "a->c", "a->d", "a->e", "b->store", "c->f"]);
    }

    #[test]
    fn ignores_comments_strings_and_chars_and_marks_test_code() {
        let (refs, mentions) = scan(&[
            ("src/lib.rs", "mod a;\nmod b;\nmod c;\nmod d;\nmod e;\n"),
            (
                "src/a.rs",
                concat!(
                    "// use crate::b;\n",
                    "/* crate::b /* nested */ crate::b */\n",
                    "/// [`crate::b::X`]\n",
                    "const S: &str = \"crate::b\";\n",
                    "const R: &str = r#\"crate::b \"quoted\" \"#;\n",
                    "const Q: char = '\"'; const E: char = '\\'';\n",
                    "fn f<'a>(x: &'a str) -> &'a str { let _ = b'\"'; crate::c::go(); x }\n",
                    "// rusqlite\n",
                    "#[cfg(test)]\nmod tests { use crate::d; fn t() { rusqlite::x(); } }\n",
                    "#[cfg(all(unix, test))]\nfn helper() { crate::d::go(); }\n",
                    "#[cfg(all(unix, not(test)))]\nfn real() { crate::c::go(); }\n",
                    "#[cfg(test)]\n#[path = \"a_tests.rs\"]\nmod more;\n",
                    "fn after() { crate::e::go(); }\n",
                ),
            ),
            ("src/a_tests.rs", "use crate::d::T;\n"),
            ("src/b.rs", ""),
            ("src/c.rs", ""),
            ("src/d.rs", "use rusqlite::Connection;\n"),
            ("src/e.rs", ""),
        ]);
        // b only appears in comments and literals; d only in test code.
        assert_eq!(refs, ["a->c", "a->d[test]", "a->e"]);
        assert_eq!(mentions, ["rusqlite@a:10", "rusqlite@d:1"]);
    }
}
