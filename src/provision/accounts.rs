//! Another account holding an email: a live subscriber of the gateway, or
//! a user of an existing organization other than the one the subscriber
//! is in. The product treats such an email the same way in every flow
//! (trusted, untrusted, self-activation, an email change): the first user
//! of an organization created here takes the address at once (the other
//! account moves and the user becomes the admin); anyone else waits for
//! the user's consent (`pending_user_migration`), and the consent moves
//! it. No two live subscribers ever hold one email.

use crate::commands::Command;
use crate::domain::lifecycle::{self, SubscriberRecord};
use crate::store::tx::Tx;
use crate::store::StoreError;

use super::change::{incomplete, sent_to_core};
use super::emit::Emitter;

/// Whether an account other than subscriber `subscriber_id` holds
/// `email`: another live subscriber, or a user of an existing
/// organization other than `org_id` (a user of the subscriber's own
/// attached organization is the same person's account, not another).
pub(crate) fn held_elsewhere(
    tx: &dyn Tx,
    email: &str,
    subscriber_id: Option<&str>,
    org_id: Option<&str>,
) -> Result<bool, StoreError> {
    // First: on PostgreSQL it also takes the email's guard row, so two
    // units of work deciding about one email cannot both commit.
    if tx.email_taken(email, subscriber_id)? {
        return Ok(true);
    }
    Ok(tx
        .orgs_with_user_email(email)?
        .iter()
        .any(|(org, _)| Some(org.as_str()) != org_id))
}

/// Every other account holding `email` moves to `to`: other subscribers
/// are removed (partial deletion; `RemoveSubscriber` when the core knows
/// them, else `DiscardPendingSubscriber`), users of other existing
/// organizations leave them (`MoveAccount`, keyed on `to`'s enterprise so
/// it precedes `to`'s own command). Returns how many moved.
pub(crate) fn move_to(
    tx: &dyn Tx,
    email: &str,
    to: &SubscriberRecord,
    out: &mut Emitter<'_>,
    now: i64,
) -> Result<usize, StoreError> {
    let mut moved = 0;
    for old in tx.subscribers_with_email(email, &to.id)? {
        let removed = lifecycle::partial_delete(&old, now);
        tx.update_subscriber(&removed, now)?;
        super::events::subscriber_updated(tx, &old, &removed, now)?;
        moved += 1;
        let (Some(org_id), Some(key)) = (&old.org_id, &old.enterprise_key) else {
            // No organization: nothing the core could key a command on.
            tracing::warn!(subscriber_id = %old.id, "moved away without an organization: no command");
            continue;
        };
        let (subscriber_id, org_id, subscriber_version) =
            (removed.id.clone(), org_id.clone(), removed.version);
        let command = if sent_to_core(old.status) {
            Command::RemoveSubscriber {
                subscriber_id,
                org_id,
                subscriber_version,
            }
        } else {
            Command::DiscardPendingSubscriber {
                subscriber_id,
                org_id,
                subscriber_version,
            }
        };
        out.emit(key, command)?;
    }
    let key = to
        .enterprise_key
        .as_ref()
        .ok_or_else(|| incomplete(to, "enterprise key"))?;
    for (org_id, _) in tx.orgs_with_user_email(email)? {
        if Some(&org_id) == to.org_id.as_ref() {
            continue;
        }
        if tx.remove_existing_org_user(&org_id, email)? {
            moved += 1;
            out.emit(
                key,
                Command::MoveAccount {
                    subscriber_id: to.id.clone(),
                    email: email.to_string(),
                    from_org_id: org_id,
                },
            )?;
        }
    }
    Ok(moved)
}
