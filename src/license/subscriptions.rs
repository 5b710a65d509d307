//! License subscriptions: an organization's subscriptions hold licenses by name and
//! quantity; a subscriber's licenses are taken from the oldest
//! subscription that still has room, then the next; a subscriber never
//! holds one license twice; a change is all or nothing (not enough of one
//! license: nothing moves, and the shortage says which and how many).
//!
//! Plain data and rules: the store keeps subscriptions and who holds what
//! (with the subscription each license came from); the core runs
//! [`Pool::assign`] inside the unit of work that records the result
//! (`apply.rs`).

use std::collections::{BTreeMap, BTreeSet};

pub use crate::domain::license::LicenseSubscription;

/// A license a subscriber holds, and the subscription it came from.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Held {
    pub license: String,
    pub subscription_id: String,
}

/// Not enough of one license: what a subscriber in `error` is told.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("no '{license}' license left: the organization's subscriptions hold {total}, all assigned")]
pub struct Shortage {
    pub license: String,
    /// Bought in all subscriptions.
    pub total: u32,
}

/// The organization's subscriptions and how much of each is used.
#[derive(Debug, Clone)]
pub struct Pool {
    /// Oldest first (then by id, so the order is total).
    subscriptions: Vec<LicenseSubscription>,
    /// `(subscription id, license)` → assigned.
    used: BTreeMap<(String, String), u32>,
    /// Subscriptions starting after this (unix ms) give nothing yet.
    now: i64,
}

impl Pool {
    /// `held`: every license every subscriber of the organization holds.
    #[cfg(test)]
    pub fn new(subscriptions: Vec<LicenseSubscription>, held: &[Held]) -> Pool {
        Pool::with_usage(
            subscriptions,
            held.iter()
                .map(|h| (h.subscription_id.clone(), h.license.clone(), 1)),
        )
    }

    /// `usage`: how many of each license each subscription has assigned,
    /// as `(subscription id, license, count)` (a pair may come twice).
    pub fn with_usage(
        mut subscriptions: Vec<LicenseSubscription>,
        usage: impl IntoIterator<Item = (String, String, u32)>,
    ) -> Pool {
        subscriptions.sort_by(|a, b| a.starts_at.cmp(&b.starts_at).then(a.id.cmp(&b.id)));
        let mut used = BTreeMap::new();
        for (subscription, license, n) in usage {
            *used.entry((subscription, license)).or_insert(0) += n;
        }
        Pool {
            subscriptions,
            used,
            now: i64::MAX,
        }
    }

    /// Only subscriptions that have started by `now` give licenses (a
    /// later one still makes the organization metered).
    pub fn started_by(mut self, now: i64) -> Pool {
        self.now = now;
        self
    }

    /// No subscription at all (the organization is unmetered, or short of
    /// everything when subscriptions are required).
    pub fn is_empty(&self) -> bool {
        self.subscriptions.is_empty()
    }

    /// Licenses of `license` not assigned yet, in all subscriptions.
    pub fn available(&self, license: &str) -> u32 {
        self.subscriptions
            .iter()
            .map(|s| self.room(s, license))
            .sum()
    }

    fn room(&self, s: &LicenseSubscription, license: &str) -> u32 {
        if s.starts_at > self.now {
            return 0;
        }
        let bought = s.quantities.get(license).copied().unwrap_or(0);
        let used = self
            .used
            .get(&(s.id.clone(), license.to_string()))
            .copied()
            .unwrap_or(0);
        bought.saturating_sub(used)
    }

    /// A subscriber holding `held` should hold exactly `wanted`: what it
    /// keeps stays where it came from (no churn when an older subscription
    /// has room again), what it no longer wants goes back, what is missing
    /// comes from the oldest subscription with room. Returns what it holds
    /// then; on a shortage nothing changes.
    pub fn assign(
        &mut self,
        held: &[Held],
        wanted: &BTreeSet<String>,
    ) -> Result<Vec<Held>, Shortage> {
        let mut next = self.clone();
        let mut holding: BTreeMap<String, String> = BTreeMap::new();
        for h in held {
            // A license held twice (never written so, but read defensively)
            // counts once; the extra goes back.
            if wanted.contains(&h.license) && !holding.contains_key(&h.license) {
                holding.insert(h.license.clone(), h.subscription_id.clone());
            } else {
                next.release(h);
            }
        }
        let missing: Vec<&String> = wanted
            .iter()
            .filter(|l| !holding.contains_key(*l))
            .collect();
        for license in missing {
            let from = next
                .subscriptions
                .iter()
                .find(|s| next.room(s, license) > 0)
                .map(|s| s.id.clone())
                .ok_or_else(|| Shortage {
                    license: license.clone(),
                    total: next
                        .subscriptions
                        .iter()
                        .map(|s| s.quantities.get(license).copied().unwrap_or(0))
                        .sum(),
                })?;
            *next
                .used
                .entry((from.clone(), license.clone()))
                .or_insert(0) += 1;
            holding.insert(license.clone(), from);
        }
        *self = next;
        Ok(holding
            .into_iter()
            .map(|(license, subscription_id)| Held {
                license,
                subscription_id,
            })
            .collect())
    }

    /// Moves a held license to subscription `to` (which must have one
    /// free): the old one goes back. Nothing changes on a shortage.
    pub fn move_to(&mut self, held: &Held, to: &str) -> Result<Held, Shortage> {
        if held.subscription_id == to {
            return Ok(held.clone());
        }
        let target = self.subscriptions.iter().find(|s| s.id == to);
        let room = target.map_or(0, |s| self.room(s, &held.license));
        if room == 0 {
            return Err(Shortage {
                license: held.license.clone(),
                total: target
                    .and_then(|s| s.quantities.get(&held.license).copied())
                    .unwrap_or(0),
            });
        }
        self.release(held);
        *self
            .used
            .entry((to.to_string(), held.license.clone()))
            .or_insert(0) += 1;
        Ok(Held {
            license: held.license.clone(),
            subscription_id: to.to_string(),
        })
    }

    fn release(&mut self, h: &Held) {
        let key = (h.subscription_id.clone(), h.license.clone());
        if let Some(n) = self.used.get_mut(&key) {
            *n = n.saturating_sub(1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sub(id: &str, starts_at: i64, quantities: &[(&str, u32)]) -> LicenseSubscription {
        LicenseSubscription {
            id: id.into(),
            starts_at,
            quantities: quantities
                .iter()
                .map(|(l, n)| (l.to_string(), *n))
                .collect(),
        }
    }

    fn wanted(licenses: &[&str]) -> BTreeSet<String> {
        licenses.iter().map(|l| l.to_string()).collect()
    }

    fn from(held: &[Held], license: &str) -> Option<String> {
        held.iter()
            .find(|h| h.license == license)
            .map(|h| h.subscription_id.clone())
    }

    #[test]
    fn licenses_come_from_the_oldest_subscription_until_it_is_used_up() {
        // Listed newest first: the pool orders them by start.
        let mut pool = Pool::new(
            vec![
                sub("new", 200, &[("calling", 5)]),
                sub("old", 100, &[("calling", 2), ("messaging", 10)]),
            ],
            &[],
        );
        let a = pool
            .assign(&[], &wanted(&["calling", "messaging"]))
            .unwrap();
        let b = pool.assign(&[], &wanted(&["calling"])).unwrap();
        let c = pool.assign(&[], &wanted(&["calling"])).unwrap();
        assert_eq!(from(&a, "calling").as_deref(), Some("old"));
        assert_eq!(from(&a, "messaging").as_deref(), Some("old"));
        assert_eq!(from(&b, "calling").as_deref(), Some("old"));
        assert_eq!(
            from(&c, "calling").as_deref(),
            Some("new"),
            "old is used up"
        );
        assert_eq!(pool.available("calling"), 4);
    }

    #[test]
    fn a_shortage_changes_nothing_and_says_which_license() {
        let mut pool = Pool::new(vec![sub("s", 1, &[("calling", 1), ("meetings", 0)])], &[]);
        let err = pool
            .assign(&[], &wanted(&["calling", "meetings"]))
            .unwrap_err();
        assert_eq!(
            err,
            Shortage {
                license: "meetings".into(),
                total: 0
            }
        );
        assert!(err.to_string().contains("'meetings'"));
        // All or nothing: the calling license was not taken.
        assert_eq!(pool.available("calling"), 1);
        let err = pool.assign(&[], &wanted(&["unknown"])).unwrap_err();
        assert_eq!(err.total, 0);
    }

    #[test]
    fn a_changed_package_keeps_what_stays_and_frees_what_goes() {
        let mut pool = Pool::new(
            vec![
                sub("old", 1, &[("basic", 1), ("premium", 1)]),
                sub("new", 2, &[("basic", 1), ("messaging", 2)]),
            ],
            &[],
        );
        let first = pool.assign(&[], &wanted(&["basic", "messaging"])).unwrap();
        assert_eq!(from(&first, "basic").as_deref(), Some("old"));
        let second = pool.assign(&[], &wanted(&["basic"])).unwrap();
        assert_eq!(from(&second, "basic").as_deref(), Some("new"));
        // The first moves to premium: basic goes back to "old", messaging
        // stays where it was.
        let moved = pool
            .assign(&first, &wanted(&["premium", "messaging"]))
            .unwrap();
        assert_eq!(from(&moved, "premium").as_deref(), Some("old"));
        assert_eq!(from(&moved, "messaging").as_deref(), Some("new"));
        assert_eq!(pool.available("basic"), 1);
        // The second keeps its license from "new" although "old" has room
        // again: no churn.
        let again = pool.assign(&second, &wanted(&["basic"])).unwrap();
        assert_eq!(again, second);
        // Removing every license gives them all back.
        assert!(pool.assign(&moved, &BTreeSet::new()).unwrap().is_empty());
        assert_eq!(
            (pool.available("premium"), pool.available("messaging")),
            (1, 2)
        );
    }

    #[test]
    fn no_license_is_held_twice_even_from_a_doubled_record() {
        let doubled = vec![
            Held {
                license: "calling".into(),
                subscription_id: "s".into(),
            },
            Held {
                license: "calling".into(),
                subscription_id: "s".into(),
            },
        ];
        let mut pool = Pool::new(vec![sub("s", 1, &[("calling", 3)])], &doubled);
        assert_eq!(pool.available("calling"), 1);
        let held = pool.assign(&doubled, &wanted(&["calling"])).unwrap();
        assert_eq!(held.len(), 1, "{held:?}");
        assert_eq!(pool.available("calling"), 2, "the extra one went back");
    }

    #[test]
    fn holdings_counted_at_start_are_not_given_again() {
        let others = vec![Held {
            license: "calling".into(),
            subscription_id: "old".into(),
        }];
        let mut pool = Pool::new(
            vec![
                sub("old", 1, &[("calling", 1)]),
                sub("new", 2, &[("calling", 1)]),
            ],
            &others,
        );
        let held = pool.assign(&[], &wanted(&["calling"])).unwrap();
        assert_eq!(from(&held, "calling").as_deref(), Some("new"));
        assert!(pool.assign(&[], &wanted(&["calling"])).is_err());
    }

    #[test]
    fn a_move_takes_room_in_the_target_and_frees_the_source() {
        let held = Held {
            license: "calling".into(),
            subscription_id: "old".into(),
        };
        let mut pool = Pool::new(
            vec![
                sub("old", 1, &[("calling", 1)]),
                sub("new", 2, &[("calling", 1)]),
            ],
            std::slice::from_ref(&held),
        );
        let moved = pool.move_to(&held, "new").unwrap();
        assert_eq!(moved.subscription_id, "new");
        assert_eq!(pool.available("calling"), 1, "old's is free again");
        // No room left in "new", and a subscription without the license.
        let other = Held {
            license: "calling".into(),
            subscription_id: "old".into(),
        };
        let mut full = pool.clone();
        full.assign(&[], &wanted(&["calling"])).unwrap();
        assert_eq!(full.move_to(&other, "new").unwrap_err().total, 1);
        assert_eq!(pool.move_to(&other, "ghost").unwrap_err().total, 0);
    }

    #[test]
    fn a_subscription_gives_nothing_before_it_starts() {
        let mut pool = Pool::new(vec![sub("later", 500, &[("calling", 5)])], &[]).started_by(100);
        assert!(!pool.is_empty(), "metered all the same");
        assert_eq!(pool.available("calling"), 0);
        assert!(pool.assign(&[], &wanted(&["calling"])).is_err());
        let mut started = pool.clone().started_by(500);
        assert!(started.assign(&[], &wanted(&["calling"])).is_ok());
    }
}
