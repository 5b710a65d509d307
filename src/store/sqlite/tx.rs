//! [`Tx`] on the writer's connection: each row operation is one or two
//! cached statements (the entity files hold the SQL), and parts are
//! savepoints only when the writer runs the batch isolated (see
//! `writer.rs`: a savepoint copies every page a part touches).

use rusqlite::{params, OptionalExtension};

use super::{activation, email, events, orgs, outbox, subscribers, tenancy, trunk, WriteConn};
use crate::commands::CommandEnvelope;
use crate::domain::activation::Activation;
use crate::domain::email::{EmailKind, EmailMessage};
use crate::domain::event::ProvisioningEvent;
use crate::domain::ids::EnterpriseKey;
use crate::domain::lifecycle::{
    OperationResult, OrganizationRef, SubscriberError, SubscriberRecord, SubscriberStatus,
    TrunkFlags,
};
use crate::domain::organization::{ExistingOrganization, PartnerRole};
use crate::domain::CustomerTemplate;
use crate::store::tx::{OrgOrigin, Part, Tx};
use crate::store::{OutboxEntry, OutboxState, StoreError};

/// Per part when the write runs isolated, nested inside the writer's
/// `bwgate_w` savepoint; run as cached statements.
const SAVEPOINT: &str = "SAVEPOINT bwgate_op";
const RELEASE: &str = "RELEASE bwgate_op";
const ROLLBACK_TO: &str = "ROLLBACK TO bwgate_op";

pub(super) struct SqliteTx<'c, 'w> {
    pub(super) conn: &'c WriteConn<'w>,
}

impl SqliteTx<'_, '_> {
    fn exec(&self, sql: &str) -> Result<(), StoreError> {
        self.conn.prepare_cached(sql)?.execute([])?;
        Ok(())
    }
}

impl Tx for SqliteTx<'_, '_> {
    fn begin_part(&self) -> Result<Part, StoreError> {
        if self.conn.isolated() {
            self.exec(SAVEPOINT)?;
        }
        Ok(Part(self.conn.total_changes()))
    }

    fn keep_part(&self, _part: Part) -> Result<(), StoreError> {
        if self.conn.isolated() {
            self.exec(RELEASE)?;
        }
        Ok(())
    }

    fn undo_part(&self, part: Part) -> Result<(), StoreError> {
        if self.conn.isolated() {
            self.exec(ROLLBACK_TO)?;
            return self.exec(RELEASE);
        }
        if self.conn.total_changes() != part.0 {
            // No savepoint to go back to: fail the write so the writer undoes
            // the batch and runs it again isolated.
            return Err(StoreError::Database(
                "a part was refused after changing rows; the write is run again \
                 with a savepoint per part"
                    .into(),
            ));
        }
        Ok(())
    }

    fn aborted(&self) -> bool {
        self.conn.is_autocommit()
    }

    fn template(&self, provisioning_id: &str) -> Result<Option<CustomerTemplate>, StoreError> {
        tenancy::template(self.conn, provisioning_id)
    }

    fn subscriber_by_id(&self, id: &str) -> Result<Option<SubscriberRecord>, StoreError> {
        subscribers::subscriber_by_id(self.conn, id)
    }

    fn subscriber_by_user_id(&self, user_id: &str) -> Result<Option<SubscriberRecord>, StoreError> {
        subscribers::subscriber_by_user_id(self.conn, user_id)
    }

    fn subscribers_with_email(
        &self,
        email: &str,
        except_id: &str,
    ) -> Result<Vec<SubscriberRecord>, StoreError> {
        subscribers::query_subscribers(
            self.conn,
            "WHERE email = ?1 COLLATE NOCASE
               AND status NOT IN ('removed', 'pending_email_input', 'pending_email_validation')
               AND id <> ?2 ORDER BY id",
            params![email, except_id],
        )
    }

    fn email_taken(&self, email: &str, except_id: Option<&str>) -> Result<bool, StoreError> {
        subscribers::email_taken(self.conn, email, except_id)
    }

    fn subscribers_of_org(&self, org_id: &str) -> Result<Vec<SubscriberRecord>, StoreError> {
        subscribers::subscribers_of_org(self.conn, org_id)
    }

    fn insert_subscriber(&self, record: &SubscriberRecord, now: i64) -> Result<(), StoreError> {
        subscribers::insert_subscriber(self.conn, record, now)
    }

    fn update_subscriber(&self, record: &SubscriberRecord, now: i64) -> Result<(), StoreError> {
        subscribers::update_subscriber(self.conn, record, now)
    }

    fn set_status_if(
        &self,
        id: &str,
        version: i64,
        from: &[SubscriberStatus],
        to: SubscriberStatus,
        errors: &[SubscriberError],
        now: i64,
    ) -> Result<bool, StoreError> {
        subscribers::set_status_if(self.conn, id, version, from, to, errors, now)
    }

    fn set_errors(
        &self,
        id: &str,
        errors: &[SubscriberError],
        status: Option<SubscriberStatus>,
        now: i64,
    ) -> Result<(), StoreError> {
        subscribers::set_errors(self.conn, id, errors, status, now)
    }

    fn trunk_flags(&self, id: &str) -> Result<TrunkFlags, StoreError> {
        trunk::flags(self.conn, id)
    }

    fn set_trunk_flags(&self, id: &str, flags: TrunkFlags) -> Result<(), StoreError> {
        trunk::set_flags(self.conn, id, flags)
    }

    fn organization_by_key(
        &self,
        partner_id: &str,
        key: &EnterpriseKey,
    ) -> Result<Option<(OrganizationRef, OrgOrigin)>, StoreError> {
        subscribers::organization_by_key(self.conn, partner_id, key)
    }

    fn insert_organization(
        &self,
        org: &OrganizationRef,
        partner_id: &str,
        provisioning_id: &str,
        origin: OrgOrigin,
        now: i64,
    ) -> Result<(), StoreError> {
        subscribers::insert_organization(self.conn, org, partner_id, provisioning_id, origin, now)
    }

    fn org_admin(&self, org_id: &str) -> Result<Option<(String, SubscriberStatus)>, StoreError> {
        let row: Option<(String, String)> = self
            .conn
            .prepare_cached(
                "SELECT s.id, s.status FROM organizations o
                 JOIN subscribers s ON s.id = o.admin_subscriber_id
                 WHERE o.id = ?1",
            )?
            .query_row([org_id], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()?;
        row.map(|(id, status)| {
            SubscriberStatus::parse(&status)
                .map(|st| (id.clone(), st))
                .ok_or_else(|| {
                    StoreError::Corrupt(format!("subscriber '{id}' has status '{status}'"))
                })
        })
        .transpose()
    }

    fn set_org_admin_if_unset(
        &self,
        org_id: &str,
        subscriber_id: &str,
    ) -> Result<bool, StoreError> {
        let changed = self
            .conn
            .prepare_cached(
                "UPDATE organizations SET admin_subscriber_id = ?2
                 WHERE id = ?1 AND origin = 'created' AND admin_subscriber_id IS NULL",
            )?
            .execute([org_id, subscriber_id])?;
        Ok(changed > 0)
    }

    fn replace_org_admin(&self, org_id: &str, from: &str, to: &str) -> Result<bool, StoreError> {
        let changed = self
            .conn
            .prepare_cached(
                "UPDATE organizations SET admin_subscriber_id = ?3
                 WHERE id = ?1 AND admin_subscriber_id = ?2",
            )?
            .execute([org_id, from, to])?;
        Ok(changed > 0)
    }

    fn settle_pending_organization(&self, org_id: &str) -> Result<(), StoreError> {
        self.conn
            .prepare_cached("UPDATE organizations SET pending = 0 WHERE id = ?1")?
            .execute([org_id])?;
        Ok(())
    }

    fn replace_pending_organization(
        &self,
        from: &str,
        to: &OrganizationRef,
        partner_id: &str,
        provisioning_id: &str,
        now: i64,
    ) -> Result<(), StoreError> {
        subscribers::replace_pending_organization(
            self.conn,
            from,
            to,
            partner_id,
            provisioning_id,
            now,
        )
    }

    fn unlink_organization(&self, org_id: &str) -> Result<(), StoreError> {
        self.conn
            .prepare_cached("UPDATE subscribers SET org_id = NULL WHERE org_id = ?1")?
            .execute([org_id])?;
        self.conn
            .prepare_cached("DELETE FROM organizations WHERE id = ?1")?
            .execute([org_id])?;
        Ok(())
    }

    fn orgs_with_user_email(&self, email: &str) -> Result<Vec<(String, bool)>, StoreError> {
        orgs::orgs_with_user_email(self.conn, email)
    }

    fn existing_org(&self, id: &str) -> Result<Option<ExistingOrganization>, StoreError> {
        orgs::existing_org(self.conn, id)
    }

    fn org_email_suppressed(&self, org_id: &str) -> Result<bool, StoreError> {
        orgs::email_suppressed(self.conn, org_id)
    }

    fn remove_existing_org_user(&self, org_id: &str, email: &str) -> Result<bool, StoreError> {
        orgs::remove_user(self.conn, org_id, email)
    }

    fn partner_role(&self, org_id: &str, partner_id: &str) -> Result<PartnerRole, StoreError> {
        orgs::role(self.conn, org_id, partner_id)
    }

    fn grant_role(
        &self,
        org_id: &str,
        partner_id: &str,
        role: PartnerRole,
        source: &str,
        now: i64,
    ) -> Result<(), StoreError> {
        orgs::grant_role(self.conn, org_id, partner_id, role, source, now)
    }

    fn revoke_role(
        &self,
        org_id: &str,
        partner_id: &str,
        source: &str,
        now: i64,
    ) -> Result<(), StoreError> {
        orgs::revoke_role(self.conn, org_id, partner_id, source, now)
    }

    fn approval_used(&self, signature: &str) -> Result<bool, StoreError> {
        Ok(self
            .conn
            .prepare_cached("SELECT 1 FROM org_approvals WHERE signature = ?1")?
            .query_row([signature], |_| Ok(()))
            .optional()?
            .is_some())
    }

    fn record_approval(
        &self,
        signature: &str,
        org_id: &str,
        partner_id: &str,
        now: i64,
    ) -> Result<(), StoreError> {
        self.conn
            .prepare_cached(
                "INSERT INTO org_approvals (signature, org_id, partner_id, approved_at)
                 VALUES (?1, ?2, ?3, ?4)",
            )?
            .execute(params![signature, org_id, partner_id, now])?;
        Ok(())
    }

    fn activation(&self, subscriber_id: &str) -> Result<Option<Activation>, StoreError> {
        activation::get(self.conn, subscriber_id)
    }

    fn put_activation(&self, a: &Activation, now: i64) -> Result<(), StoreError> {
        activation::put(self.conn, a, now)
    }

    fn insert_command(&self, envelope: &CommandEnvelope) -> Result<(), StoreError> {
        outbox::insert_command(self.conn, envelope)
    }

    fn append_event(&self, event: &ProvisioningEvent) -> Result<(), StoreError> {
        events::append(self.conn, event)
    }

    fn events_wanted(&self) -> Result<bool, StoreError> {
        events::any_subscription(self.conn)
    }

    fn command(&self, seq: i64) -> Result<Option<OutboxEntry>, StoreError> {
        outbox::entry(self.conn, seq)
    }

    fn command_state(&self, seq: i64) -> Result<Option<OutboxState>, StoreError> {
        outbox::state(self.conn, seq)
    }

    fn has_pending_commands(
        &self,
        subscriber_id: &str,
        kinds: &[&str],
    ) -> Result<bool, StoreError> {
        // ",A,B," (kind names have no commas): a plain string test per
        // row, no JSON to parse on the writer for each delivered command.
        let kinds = format!(",{},", kinds.join(","));
        Ok(self
            .conn
            .prepare_cached(
                "SELECT 1 FROM outbox
                 WHERE subscriber_id = ?1 AND state = 'pending'
                   AND instr(?2, ',' || kind || ',') > 0
                 LIMIT 1",
            )?
            .query_row(params![subscriber_id, kinds], |_| Ok(()))
            .optional()?
            .is_some())
    }

    fn mark_delivered(&self, seq: i64, now: i64) -> Result<(), StoreError> {
        self.conn
            .prepare_cached(
                "UPDATE outbox SET state = 'delivered', delivered_at = ?2,
                                   attempts = attempts + 1
                 WHERE seq = ?1",
            )?
            .execute(params![seq, now])?;
        self.conn.settled(seq);
        Ok(())
    }

    fn mark_failed(&self, seq: i64, error: &str) -> Result<(), StoreError> {
        self.conn
            .prepare_cached(
                "UPDATE outbox SET state = 'failed', attempts = attempts + 1, last_error = ?2
                 WHERE seq = ?1",
            )?
            .execute(params![seq, error])?;
        self.conn.settled(seq);
        Ok(())
    }

    fn schedule_retry(&self, seq: i64, retry_at: i64, error: &str) -> Result<(), StoreError> {
        self.conn
            .prepare_cached(
                "UPDATE outbox SET attempts = attempts + 1, next_attempt_at = ?2,
                                   last_error = ?3, lease_until = 0
                 WHERE seq = ?1",
            )?
            .execute(params![seq, retry_at, error])?;
        self.conn.settled(seq);
        Ok(())
    }

    fn enqueue_email(&self, msg: &EmailMessage, now: i64) -> Result<Option<i64>, StoreError> {
        email::enqueue_email(self.conn, msg, now)
    }

    fn last_email_with_key_prefix(
        &self,
        kind: EmailKind,
        prefix: &str,
    ) -> Result<Option<i64>, StoreError> {
        email::last_enqueued_with_key_prefix(self.conn, kind, prefix)
    }

    fn accepted_request(
        &self,
        provisioning_id: &str,
        request_id: &str,
    ) -> Result<Option<(String, Vec<OperationResult>)>, StoreError> {
        let row: Option<(String, String)> = self
            .conn
            .prepare_cached(
                "SELECT tracking_id, results_json FROM accepted_requests
                 WHERE provisioning_id = ?1 AND request_id = ?2",
            )?
            .query_row([provisioning_id, request_id], |row| {
                Ok((row.get(0)?, row.get(1)?))
            })
            .optional()?;
        let Some((tracking_id, json)) = row else {
            return Ok(None);
        };
        let results: Vec<OperationResult> = serde_json::from_str(&json).map_err(|e| {
            StoreError::Corrupt(format!(
                "accepted request '{request_id}' of '{provisioning_id}': results_json: {e}"
            ))
        })?;
        Ok(Some((tracking_id, results)))
    }

    fn record_accepted_request(
        &self,
        provisioning_id: &str,
        request_id: &str,
        tracking_id: &str,
        results: &[OperationResult],
        now: i64,
    ) -> Result<(), StoreError> {
        let json = serde_json::to_string(results)
            .map_err(|e| StoreError::Corrupt(format!("cannot encode results: {e}")))?;
        self.conn
            .prepare_cached(
                "INSERT INTO accepted_requests (provisioning_id, request_id, tracking_id,
                                                results_json, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT (provisioning_id, request_id)
                 DO UPDATE SET results_json = excluded.results_json",
            )?
            .execute(params![provisioning_id, request_id, tracking_id, json, now])?;
        Ok(())
    }
}
