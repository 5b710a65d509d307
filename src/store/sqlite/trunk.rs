//! The BroadWorks trunk flags of a subscriber (`isTrunkUser`,
//! `hasRouteList`; schema `0007_trunk_flags.sql`). Stored so that a later
//! `ModifyUser` that sets only one of them is checked against the other
//! (`lifecycle::trunk_flags_after`); they are not part of the record the
//! license core receives.

use rusqlite::{params, Connection, OptionalExtension};

use crate::domain::lifecycle::TrunkFlags;
use crate::store::StoreError;

/// The stored flags of subscriber `id` (both off if there is no such row).
pub(super) fn flags(conn: &Connection, id: &str) -> Result<TrunkFlags, StoreError> {
    Ok(conn
        .prepare_cached("SELECT is_trunk_user, has_route_list FROM subscribers WHERE id = ?1")?
        .query_row([id], |r| {
            Ok(TrunkFlags {
                is_trunk_user: r.get(0)?,
                has_route_list: r.get(1)?,
            })
        })
        .optional()?
        .unwrap_or_default())
}

/// Stores the flags of subscriber `id` (a no-op when they are unchanged).
pub(super) fn set_flags(conn: &Connection, id: &str, f: TrunkFlags) -> Result<(), StoreError> {
    conn.prepare_cached(
        "UPDATE subscribers SET is_trunk_user = ?2, has_route_list = ?3
         WHERE id = ?1 AND (is_trunk_user, has_route_list) IS NOT (?2, ?3)",
    )?
    .execute(params![id, f.is_trunk_user, f.has_route_list])?;
    Ok(())
}
