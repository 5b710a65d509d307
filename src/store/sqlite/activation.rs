//! Activation rows (schema `0005_activation.sql`): one per subscriber
//! waiting on the portal. The steps themselves are `provision::activation`'s.

use rusqlite::{params, Connection, OptionalExtension};

use super::subscribers;
use crate::domain::activation::{Activation, ActivationPurpose};
use crate::store::{ActivationView, StoreError};

const COLUMNS: &str = "subscriber_id, purpose, nonce, link_expires_at, pending_email, code_hash,
     code_expires_at, code_attempts, codes_sent, locked_until, completed_at, created_at";

pub(super) fn get(
    conn: &Connection,
    subscriber_id: &str,
) -> Result<Option<Activation>, StoreError> {
    let row = conn
        .prepare_cached(&format!(
            "SELECT {COLUMNS} FROM activations WHERE subscriber_id = ?1"
        ))?
        .query_row([subscriber_id], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, i64>(3)?,
                r.get::<_, Option<String>>(4)?,
                r.get::<_, Option<String>>(5)?,
                r.get::<_, Option<i64>>(6)?,
                r.get::<_, u32>(7)?,
                r.get::<_, u32>(8)?,
                r.get::<_, Option<i64>>(9)?,
                r.get::<_, Option<i64>>(10)?,
                r.get::<_, i64>(11)?,
            ))
        })
        .optional()?;
    let Some((id, purpose, nonce, link_exp, pending, hash, code_exp, tries, sent, lock, done, at)) =
        row
    else {
        return Ok(None);
    };
    let purpose = ActivationPurpose::parse(&purpose).ok_or_else(|| {
        StoreError::Corrupt(format!("activation of '{id}' has purpose '{purpose}'"))
    })?;
    Ok(Some(Activation {
        subscriber_id: id,
        purpose,
        nonce,
        link_expires_at: link_exp,
        pending_email: pending,
        code_hash: hash,
        code_expires_at: code_exp,
        code_attempts: tries,
        codes_sent: sent,
        locked_until: lock,
        completed_at: done,
        created_at: at,
    }))
}

pub(super) fn put(conn: &Connection, a: &Activation, now: i64) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO activations (subscriber_id, purpose, nonce, link_expires_at, pending_email,
                                  code_hash, code_expires_at, code_attempts, codes_sent,
                                  locked_until, completed_at, created_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)
         ON CONFLICT (subscriber_id) DO UPDATE SET
             purpose = ?2, nonce = ?3, link_expires_at = ?4, pending_email = ?5,
             code_hash = ?6, code_expires_at = ?7, code_attempts = ?8, codes_sent = ?9,
             locked_until = ?10, completed_at = ?11, updated_at = ?13",
    )?
    .execute(params![
        a.subscriber_id,
        a.purpose.as_str(),
        a.nonce,
        a.link_expires_at,
        a.pending_email,
        a.code_hash,
        a.code_expires_at,
        a.code_attempts,
        a.codes_sent,
        a.locked_until,
        a.completed_at,
        a.created_at,
        now
    ])?;
    Ok(())
}

pub(super) fn view(
    conn: &Connection,
    subscriber_id: &str,
) -> Result<Option<ActivationView>, StoreError> {
    let Some(subscriber) = subscribers::subscriber_by_id(conn, subscriber_id)? else {
        return Ok(None);
    };
    Ok(get(conn, subscriber_id)?.map(|activation| ActivationView {
        subscriber,
        activation,
        emails_enqueued: 0,
        commands_written: 0,
    }))
}
