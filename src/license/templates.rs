//! Auto-license templates: which
//! licenses a user gets from its organization's template and the
//! templates of the groups it is a direct member of.
//!
//! The rules, each tested below:
//! - a user created with explicit licenses is not touched by the
//!   organization template (group templates still apply: they are the
//!   group's, not a default);
//! - group templates apply to direct members only (the caller passes the
//!   user's direct groups; nesting is not followed);
//! - a user in several groups gets the union, each license once;
//! - for one meeting site, host beats attendee while host licenses remain,
//!   else attendee;
//! - two Contact Center agent licenses resolve to the Premium agent one;
//! - applied to an existing user, "preserve licenses" (on by default) keeps
//!   what it holds that the templates no longer list; off, the user holds
//!   exactly what the templates give (manual licenses go too).
//!
//! License names: `meetings-host:{site}` / `meetings-attendee:{site}` for
//! a meeting site's roles, `cc-standard-agent` / `cc-premium-agent` for
//! Contact Center; any other name is taken as it is.

use std::collections::{BTreeMap, BTreeSet};

use super::subscriptions::Pool;
pub use crate::domain::license::AutoLicenseTemplate;
use crate::domain::license::GrantSource;

pub const CC_STANDARD_AGENT: &str = "cc-standard-agent";
pub const CC_PREMIUM_AGENT: &str = "cc-premium-agent";
const HOST_PREFIX: &str = "meetings-host:";
const ATTENDEE_PREFIX: &str = "meetings-attendee:";

/// An organization's templates as the core reads them: its own (group
/// `""` in the store) and its groups'.
#[derive(Debug, Clone, Default)]
pub struct OrgTemplates {
    pub org: Option<AutoLicenseTemplate>,
    pub groups: BTreeMap<String, AutoLicenseTemplate>,
}

impl OrgTemplates {
    /// From `(group id, template)` rows; group `""` is the organization's.
    pub fn from_rows(rows: Vec<(String, AutoLicenseTemplate)>) -> OrgTemplates {
        let mut out = OrgTemplates::default();
        for (group, t) in rows {
            if group.is_empty() {
                out.org = Some(t);
            } else {
                out.groups.insert(group, t);
            }
        }
        out
    }

    /// The licenses a user of `group` (not created with explicit licenses:
    /// every user here comes from provisioning) gets from the templates,
    /// each with the template it comes from (`org`, or `group:{id}`).
    /// `held`: what it holds already (a host stays a host).
    pub fn licenses_for(
        &self,
        held: &BTreeSet<String>,
        group: Option<&str>,
        pool: &Pool,
    ) -> Vec<(String, (GrantSource, String))> {
        let group_template = group.and_then(|g| self.groups.get(g).map(|t| (g, t)));
        let groups: Vec<&AutoLicenseTemplate> = group_template.iter().map(|(_, t)| *t).collect();
        let user = UserLicensing {
            held: held.clone(),
            explicit: false,
        };
        let host_available =
            |site: &str| pool.is_empty() || pool.available(&format!("{HOST_PREFIX}{site}")) > 0;
        from_templates(&user, self.org.as_ref(), &groups, &host_available)
            .into_iter()
            .map(|license| {
                // An attendee license may stand for a host one it replaced.
                let listed = |t: &AutoLicenseTemplate| {
                    t.licenses.contains(&license)
                        || license.strip_prefix(ATTENDEE_PREFIX).is_some_and(|site| {
                            t.licenses.contains(&format!("{HOST_PREFIX}{site}"))
                        })
                };
                let from = match group_template {
                    Some((g, t)) if listed(t) => format!("group:{g}"),
                    _ => "org".to_string(),
                };
                (license, (GrantSource::Template, from))
            })
            .collect()
    }
}

/// What the rules need to know about one user.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct UserLicensing {
    /// Licenses it holds now (from templates, commands or admins).
    pub held: BTreeSet<String>,
    /// It was created with licenses given explicitly.
    pub explicit: bool,
}

/// How a template change reaches an existing user.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ApplyToExisting {
    /// Keep licenses the templates no longer list (the default).
    pub preserve: bool,
}

impl Default for ApplyToExisting {
    fn default() -> Self {
        ApplyToExisting { preserve: true }
    }
}

/// The licenses the templates give `user`. `groups`: the templates of the
/// groups the user is a direct member of. `host_available(site)`: whether
/// a host license of that meeting site is still free (the pool's answer).
pub fn from_templates(
    user: &UserLicensing,
    org: Option<&AutoLicenseTemplate>,
    groups: &[&AutoLicenseTemplate],
    host_available: &dyn Fn(&str) -> bool,
) -> BTreeSet<String> {
    let mut out: BTreeSet<String> = BTreeSet::new();
    if !user.explicit {
        if let Some(org) = org {
            out.extend(org.licenses.iter().cloned());
        }
    }
    for g in groups {
        out.extend(g.licenses.iter().cloned());
    }
    resolve(out, &user.held, host_available)
}

/// What an existing user holds once templates are applied to it.
pub fn apply_to_existing(
    user: &UserLicensing,
    from_templates: &BTreeSet<String>,
    how: ApplyToExisting,
) -> BTreeSet<String> {
    if how.preserve {
        let kept = user.held.union(from_templates).cloned().collect();
        // Host or attendee was decided already: by `from_templates` (a new
        // host took a free license) or by what the user holds.
        let decided: BTreeSet<String> = user.held.union(from_templates).cloned().collect();
        resolve(kept, &decided, &|_| false)
    } else {
        from_templates.clone()
    }
}

/// Host over attendee per site (a host already held stays a host; a new
/// one only while host licenses remain), Premium agent over Standard.
fn resolve(
    mut licenses: BTreeSet<String>,
    held: &BTreeSet<String>,
    host_available: &dyn Fn(&str) -> bool,
) -> BTreeSet<String> {
    let sites: BTreeSet<String> = licenses
        .iter()
        .filter_map(|l| {
            l.strip_prefix(HOST_PREFIX)
                .or_else(|| l.strip_prefix(ATTENDEE_PREFIX))
        })
        .map(str::to_string)
        .collect();
    for site in sites {
        let host = format!("{HOST_PREFIX}{site}");
        let attendee = format!("{ATTENDEE_PREFIX}{site}");
        let wants_host = licenses.contains(&host);
        let is_host = wants_host && (held.contains(&host) || host_available(&site));
        licenses.remove(&host);
        licenses.remove(&attendee);
        licenses.insert(if is_host { host } else { attendee });
    }
    // One agent license at most: with both, Premium.
    if licenses.contains(CC_PREMIUM_AGENT) {
        licenses.remove(CC_STANDARD_AGENT);
    }
    licenses
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(l: &[&str]) -> BTreeSet<String> {
        l.iter().map(|s| s.to_string()).collect()
    }

    fn template(l: &[&str]) -> AutoLicenseTemplate {
        AutoLicenseTemplate {
            licenses: set(l),
            preserve_on_group_move: None,
        }
    }

    fn new_user() -> UserLicensing {
        UserLicensing::default()
    }

    const HOSTS_LEFT: &dyn Fn(&str) -> bool = &|_| true;
    const NO_HOSTS_LEFT: &dyn Fn(&str) -> bool = &|_| false;

    #[test]
    fn a_user_in_several_groups_gets_the_union_once_plus_the_organizations() {
        let org = template(&["messaging"]);
        let sales = template(&["calling-basic", "messaging"]);
        let support = template(&["calling-basic", "webinars"]);
        let got = from_templates(&new_user(), Some(&org), &[&sales, &support], HOSTS_LEFT);
        assert_eq!(got, set(&["calling-basic", "messaging", "webinars"]));
    }

    #[test]
    fn explicit_licenses_keep_the_organization_template_away_but_not_groups() {
        let org = template(&["messaging", "calling-basic"]);
        let group = template(&["webinars"]);
        let explicit = UserLicensing {
            held: set(&["calling-premium"]),
            explicit: true,
        };
        assert_eq!(
            from_templates(&explicit, Some(&org), &[&group], HOSTS_LEFT),
            set(&["webinars"])
        );
        assert_eq!(
            from_templates(&new_user(), Some(&org), &[], HOSTS_LEFT),
            set(&["calling-basic", "messaging"])
        );
    }

    #[test]
    fn host_beats_attendee_while_hosts_remain() {
        let org = template(&["meetings-attendee:acme"]);
        let hosts = template(&["meetings-host:acme"]);
        assert_eq!(
            from_templates(&new_user(), Some(&org), &[&hosts], HOSTS_LEFT),
            set(&["meetings-host:acme"])
        );
        assert_eq!(
            from_templates(&new_user(), Some(&org), &[&hosts], NO_HOSTS_LEFT),
            set(&["meetings-attendee:acme"]),
            "no host license left: attendee"
        );
        // A user already a host stays one whatever is left.
        let host = UserLicensing {
            held: set(&["meetings-host:acme"]),
            explicit: false,
        };
        assert_eq!(
            from_templates(&host, Some(&org), &[&hosts], NO_HOSTS_LEFT),
            set(&["meetings-host:acme"])
        );
        // Sites are separate.
        let other = template(&["meetings-attendee:other"]);
        assert_eq!(
            from_templates(&new_user(), Some(&org), &[&hosts, &other], HOSTS_LEFT),
            set(&["meetings-attendee:other", "meetings-host:acme"])
        );
    }

    #[test]
    fn two_contact_center_agent_licenses_resolve_to_premium() {
        let a = template(&[CC_STANDARD_AGENT]);
        let b = template(&[CC_PREMIUM_AGENT]);
        assert_eq!(
            from_templates(&new_user(), None, &[&a, &b], HOSTS_LEFT),
            set(&[CC_PREMIUM_AGENT])
        );
        assert_eq!(
            from_templates(&new_user(), None, &[&a], HOSTS_LEFT),
            set(&[CC_STANDARD_AGENT])
        );
    }

    #[test]
    fn preserving_keeps_what_templates_dropped_and_not_preserving_removes_it() {
        let user = UserLicensing {
            held: set(&["calling-basic", "manual-addon"]),
            explicit: false,
        };
        let now = set(&["messaging"]);
        assert_eq!(
            apply_to_existing(&user, &now, ApplyToExisting::default()),
            set(&["calling-basic", "manual-addon", "messaging"])
        );
        assert_eq!(
            apply_to_existing(&user, &now, ApplyToExisting { preserve: false }),
            set(&["messaging"]),
            "manual licenses go too"
        );
        // Preserving a Standard agent next to a new Premium one: Premium.
        let agent = UserLicensing {
            held: set(&[CC_STANDARD_AGENT]),
            explicit: false,
        };
        assert_eq!(
            apply_to_existing(
                &agent,
                &set(&[CC_PREMIUM_AGENT]),
                ApplyToExisting::default()
            ),
            set(&[CC_PREMIUM_AGENT])
        );
    }

    #[test]
    fn an_existing_attendee_becomes_a_host_when_a_host_license_is_free() {
        let user = UserLicensing {
            held: set(&["meetings-attendee:s"]),
            explicit: false,
        };
        let given = from_templates(&user, Some(&template(&["meetings-host:s"])), &[], &|_| true);
        assert_eq!(given, set(&["meetings-host:s"]));
        let kept = apply_to_existing(&user, &given, ApplyToExisting { preserve: true });
        assert_eq!(
            kept,
            set(&["meetings-host:s"]),
            "host, once (no attendee beside)"
        );
        // A user with nothing yet keeps the host it was just given.
        let new = UserLicensing::default();
        let kept = apply_to_existing(&new, &given, ApplyToExisting { preserve: true });
        assert_eq!(kept, set(&["meetings-host:s"]));
    }
}
