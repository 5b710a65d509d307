//! One suite of store tests that every back-end must pass.
//!
//! The cases here test behaviour, not a database: accept and its
//! replay/idempotency, organizations, activation, the outbox with its
//! leased claims, emails, partner admin, the license core. Each case is
//! an `async fn case(f: &dyn StoreFactory)` that gets its stores from the
//! factory, so it runs unchanged on every back-end. Tests of one
//! back-end's internals (SQLite's writer batching, migrations, query
//! plans, file modes) stay with that back-end.
//!
//! How a back-end joins:
//! 1. implement [`StoreFactory`] (a fresh, empty database per call) and
//!    [`TestDatabase`] (open it, again after a close or drop, and the few
//!    probes the cases use to look underneath the `Store` trait: a row
//!    snapshot, a query, a statement, a failure to inject);
//! 2. invoke `store_suite!(MyFactory);` in a `#[cfg(test)]` module of the
//!    back-end (SQLite: `store/sqlite/suite.rs`). That expands to one
//!    `#[tokio::test]` per case, named `<module>::<case>`.
//!
//! A new case is a `pub(crate) async fn` in one of the modules below plus
//! its name in [`store_suite!`]'s list.

pub(crate) mod activation;
pub(crate) mod basics;
pub(crate) mod calling;
pub(crate) mod emails;
pub(crate) mod events;
pub(crate) mod licenses;
pub(crate) mod outbox;
pub(crate) mod partner;
pub(crate) mod provisioning;
pub(crate) mod workspaces;

use std::ops::Deref;
use std::sync::Arc;

use async_trait::async_trait;

use crate::domain::ids::UserId;
use crate::domain::lifecycle::{OperationResult, SubscriberRecord, SubscriberStatus};
use crate::domain::phone::DirectoryNumber;
use crate::domain::subscriber::{
    NewSubscriber, Operation, OperationKind, SubscriberChanges, SubscriberRef,
};
use crate::domain::template::TemplateSource;
use crate::domain::{CustomerTemplate, Partner, TemplateSettings};
use crate::provision::testing::UseCases;
use crate::provision::{AcceptBatch, AcceptOutcome, DeliveryOutcome};
use crate::store::{OutboxEntry, Store, StoreError};

/// Makes databases of one back-end for the suite.
#[async_trait]
pub(crate) trait StoreFactory: Send + Sync {
    /// A new, empty database (nothing opened yet). It lives as long as the
    /// returned value.
    async fn create(&self) -> Box<dyn TestDatabase>;
}

/// One database of a back-end, and what the cases need to see underneath
/// the `Store` trait. Probes act on the store opened last (it must still
/// be open).
#[async_trait]
pub(crate) trait TestDatabase: Send + Sync {
    /// Opens a store on this database: on the second and later calls
    /// (after the previous store was closed or dropped) it holds the same
    /// data.
    async fn open(&self) -> Arc<dyn Store>;
    /// Every row of the provisioning tables (organizations, subscribers,
    /// outbox, accepted requests, licenses and their ledger, activations),
    /// rendered one line per row in a stable order: equal snapshots mean
    /// nothing was written.
    async fn snapshot(&self) -> Vec<String>;
    /// Runs a read-only SQL query (plain SQL any back-end understands,
    /// `?1`-style parameters) and renders each value as text (NULL as
    /// `None`, integers and booleans as digits).
    async fn query(&self, sql: &str, args: &[&str]) -> Vec<Vec<Option<String>>>;
    /// Runs one plain SQL statement through the store's own writer.
    async fn execute(&self, sql: &str, args: &[&str]) -> Result<(), StoreError>;
    /// From now on, inserting a subscriber whose first name is
    /// `first_name` fails with a database error (after whatever the same
    /// unit of work did before it).
    async fn fail_subscriber_inserts_named(&self, first_name: &str);
    /// Every outbox entry (any state), in seq order.
    async fn all_commands(&self) -> Vec<OutboxEntry>;
}

/// A store opened on a fresh database, with the database kept for probes
/// and reopening. Derefs to the store, so `fx.accept(..)` reads as before.
pub(crate) struct Fixture {
    pub(crate) db: Box<dyn TestDatabase>,
    pub(crate) store: Arc<dyn Store>,
}

impl Deref for Fixture {
    type Target = dyn Store;
    fn deref(&self) -> &Self::Target {
        &*self.store
    }
}

/// Fixed clock (unix ms) so due times are deterministic.
pub(crate) const NOW: i64 = 1_700_000_000_000;

/// A fresh, empty store.
pub(crate) async fn empty(f: &dyn StoreFactory) -> Fixture {
    let db = f.create().await;
    let store = db.open().await;
    Fixture { db, store }
}

/// A fresh store with the partner `acme` the templates belong to.
pub(crate) async fn fixture(f: &dyn StoreFactory) -> Fixture {
    let fx = empty(f).await;
    fx.upsert_partner(&Partner {
        id: "acme".into(),
        name: "Acme".into(),
        admin_email: None,
    })
    .await
    .expect("partner");
    fx
}

/// A stored template (enterprise mode and trusted emails are the knobs).
pub(crate) async fn template(
    store: &impl Deref<Target = dyn Store>,
    pid: &str,
    enterprise_mode: bool,
    trusted_emails: bool,
) -> CustomerTemplate {
    let t = CustomerTemplate {
        provisioning_id: pid.to_string(),
        partner_id: "acme".into(),
        cluster_id: None,
        name: format!("Template {pid}"),
        settings: TemplateSettings {
            enterprise_mode,
            trusted_emails,
            ..TemplateSettings::default()
        },
        provisioning_username: format!("prov-{pid}"),
        provisioning_password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".into(),
        source: TemplateSource::Api,
        disabled_at: None,
    };
    store.upsert_template(&t).await.expect("template");
    t
}

pub(crate) fn uid(s: &str) -> UserId {
    UserId::parse(s).expect("user id")
}

pub(crate) fn phone(s: &str) -> DirectoryNumber {
    DirectoryNumber::parse(s).expect("phone")
}

pub(crate) fn new_sub(user: &str, sp: &str, group: &str, email: Option<&str>) -> NewSubscriber {
    NewSubscriber {
        user_id: uid(user),
        service_provider_id: sp.into(),
        group_id: group.into(),
        first_name: "Alice".into(),
        last_name: "Smith".into(),
        email: email.map(str::to_string),
        phone_number: Some(phone("+12405551212")),
        extension: Some("1212".into()),
        mobile_phone_number: Some(phone("+447700900123")),
        language: Some("English".into()),
        time_zone: Some("America/New_York".into()),
        package: None,
        is_trunk_user: false,
        has_route_list: false,
        service_provider_name: None,
        group_name: None,
    }
}

pub(crate) fn add(user: &str, sp: &str, group: &str, email: Option<&str>) -> Operation {
    Operation::AddUser(new_sub(user, sp, group, email))
}

pub(crate) fn no_changes(user: &str) -> SubscriberChanges {
    SubscriberChanges {
        user_id: uid(user),
        service_provider_id: "SP1".into(),
        group_id: "G1".into(),
        first_name: None,
        last_name: None,
        email: None,
        phone_number: None,
        extension: None,
        mobile_phone_number: None,
        language: None,
        time_zone: None,
        package: None,
        is_trunk_user: None,
        has_route_list: None,
    }
}

pub(crate) fn delete(user: &str) -> Operation {
    Operation::DeleteUser(SubscriberRef {
        user_id: uid(user),
        service_provider_id: None,
        group_id: None,
    })
}

pub(crate) fn batch(
    t: &CustomerTemplate,
    tracking: &str,
    request_id: Option<&str>,
    ops: Vec<Operation>,
) -> AcceptBatch {
    AcceptBatch {
        template: t.clone(),
        tracking_id: tracking.into(),
        request_id: request_id.map(str::to_string),
        now: NOW,
        operations: ops.into_iter().enumerate().collect(),
        invalid: Vec::new(),
        sent_user_ids: Vec::new(),
        approvals: None,
        activations: None,
        self_activation: false,
    }
}

pub(crate) async fn accept(
    store: &impl Deref<Target = dyn Store>,
    t: &CustomerTemplate,
    tracking: &str,
    ops: Vec<Operation>,
) -> AcceptOutcome {
    store
        .accept(batch(t, tracking, None, ops))
        .await
        .expect("accept")
}

pub(crate) async fn sub(store: &impl Deref<Target = dyn Store>, user: &str) -> SubscriberRecord {
    store
        .subscriber_by_user_id(user)
        .await
        .expect("lookup")
        .unwrap_or_else(|| panic!("{user} is stored"))
}

/// The single integer a `SELECT count(*) ...` returns.
pub(crate) async fn count(fx: &Fixture, sql: &'static str) -> i64 {
    let rows = fx.db.query(sql, &[]).await;
    rows.first()
        .and_then(|r| r.first().cloned().flatten())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("{sql} returns one integer: {rows:?}"))
}

/// Every outbox entry (any state), in seq order.
pub(crate) async fn outbox(fx: &Fixture) -> Vec<OutboxEntry> {
    fx.db.all_commands().await
}

/// One outbox entry by seq (any state).
pub(crate) async fn entry(fx: &Fixture, seq: i64) -> OutboxEntry {
    outbox(fx)
        .await
        .into_iter()
        .find(|e| e.seq == seq)
        .unwrap_or_else(|| panic!("outbox entry {seq}"))
}

pub(crate) fn keys_and_kinds(entries: &[OutboxEntry]) -> Vec<(String, &'static str)> {
    entries
        .iter()
        .map(|e| {
            (
                e.envelope.idempotency_key.clone(),
                e.envelope.command.kind(),
            )
        })
        .collect()
}

/// See [`TestDatabase::snapshot`].
pub(crate) async fn snapshot(fx: &Fixture) -> Vec<String> {
    fx.db.snapshot().await
}

pub(crate) fn ok(
    index: usize,
    kind: OperationKind,
    user: &str,
    status: SubscriberStatus,
) -> OperationResult {
    OperationResult::accepted(index, kind, &uid(user), status)
}

pub(crate) fn code_of(r: &OperationResult) -> Option<u32> {
    r.error_code
}

pub(crate) async fn deliver(store: &impl Deref<Target = dyn Store>, seq: i64) {
    store
        .complete_command(seq, DeliveryOutcome::delivered(), NOW + 1)
        .await
        .expect("complete");
}

/// Delivers every due command (in order), like a worker with a healthy core.
pub(crate) async fn deliver_all(store: &impl Deref<Target = dyn Store>) {
    for e in store.due_commands(i64::MAX, usize::MAX).await.expect("due") {
        deliver(store, e.seq).await;
    }
}

pub(crate) fn seqs(entries: &[OutboxEntry]) -> Vec<i64> {
    entries.iter().map(|e| e.seq).collect()
}

/// A (3 commands) and B (2) interleaved: A = seq 1, 2, 5; B = 3, 4.
/// Returns the outbox seqs of A's and of B's commands.
pub(crate) async fn two_enterprises(fx: &Fixture) -> (Vec<i64>, Vec<i64>) {
    let s = fx;
    let t = template(s, "tpl", true, true).await;
    accept(
        s,
        &t,
        "A1",
        vec![add("a1@a.example", "A", "G", Some("a1@a.example"))],
    )
    .await;
    accept(
        s,
        &t,
        "B1",
        vec![add("b1@b.example", "B", "G", Some("b1@b.example"))],
    )
    .await;
    accept(
        s,
        &t,
        "A2",
        vec![add("a2@a.example", "A", "G", Some("a2@a.example"))],
    )
    .await;
    let all = outbox(fx).await;
    let of = |k: &str| {
        all.iter()
            .filter(|e| e.envelope.enterprise_key.as_str() == k)
            .map(|e| e.seq)
            .collect::<Vec<_>>()
    };
    (of("A"), of("B"))
}

/// The first value of the first row a query returns (`None` for no row
/// or NULL).
pub(crate) async fn value(fx: &Fixture, sql: &str, args: &[&str]) -> Option<String> {
    fx.db
        .query(sql, args)
        .await
        .into_iter()
        .next()
        .and_then(|row| row.into_iter().next().flatten())
}

/// Expands to one `#[tokio::test]` per case of the suite, each running the
/// case on `$factory` (an expression of a type implementing
/// [`StoreFactory`], resolved in the invoking module). The list below is
/// the suite: a case not named here does not run.
macro_rules! store_suite {
    ($factory:expr) => {
        $crate::store::suite::suite_cases! { $factory;
            basics: [
                round_trip_and_upsert_replaces,
                missing_references_are_reported_and_nothing_is_written,
                after_close_operations_fail_with_closed,
                undecodable_rows_are_corrupt,
                single_use_keys_are_good_once_until_they_expire,
            ],
            provisioning: [
                trusted_add_creates_the_org_once_and_writes_commands_in_order,
                enterprise_mode_and_group_mode_derive_different_keys,
                concurrent_first_adds_of_one_enterprise_create_one_org
                    [flavor = "multi_thread", worker_threads = 8],
                email_flows_decide_the_initial_status,
                repeated_add_is_unchanged_and_changed_add_is_an_update,
                a_user_id_of_another_template_or_enterprise_is_refused,
                a_replayed_request_id_returns_the_first_answer_and_changes_nothing,
                a_failing_operation_does_not_undo_its_neighbours,
                modify_moves_a_provisioned_subscriber_to_updating,
                modify_of_a_waiting_subscriber_sends_nothing_to_the_core,
                delete_is_partial_and_the_user_id_can_come_back,
                deleting_a_waiting_subscriber_sends_no_command_and_activation_codes_need_a_provisioned_one,
                due_commands_keep_per_enterprise_order_behind_a_backing_off_head,
                delivery_outcomes_settle_the_subscriber_status,
                a_rejected_older_command_records_the_error_but_not_the_status,
                only_the_last_command_of_the_current_version_settles_the_status,
                a_device_activation_code_in_flight_does_not_hold_the_status,
                acknowledged_acceptances_survive_drop_without_close
                    [flavor = "multi_thread", worker_threads = 4],
                a_2017_keeps_its_email_through_the_rollback_once_per_window,
                approval_notifications_use_a_sliding_window_from_the_last_email,
                trunk_flags_are_stored_and_rechecked_on_modify,
                detach_needs_full_admin_deletes_the_users_data_and_drops_the_role,
                created_orgs_are_named_after_the_broadworks_names,
            ],
            activation: [
                untrusted_add_waits_until_an_email_is_entered_and_verified,
                too_many_wrong_codes_lock_the_activation_even_for_the_right_code,
                provision_admin_first_holds_other_users_until_the_admin_is_active,
                a_deleted_admin_no_longer_holds_the_others,
                without_admin_first_whoever_activates_first_becomes_admin,
                consent_removes_the_old_account_and_provisions_with_the_same_email,
                consent_removes_others_waiting_for_the_email_each_with_its_command,
                renewal_replaces_the_link_and_only_applies_to_waiting_users,
                a_trusted_email_sent_later_by_modify_ends_the_wait,
                an_existing_org_user_named_by_a_later_user_waits_for_consent_and_leaves_that_org,
                untrusted_addresses_held_elsewhere_are_verified_then_moved_by_consent,
                an_untrusted_address_attaches_the_enterprise_only_once_verified,
                an_organization_that_suppresses_emails_gets_no_activation_or_consent_emails,
                an_active_subscribers_new_email_is_confirmed_or_consented_before_it_is_taken,
                a_failed_subscriber_retried_is_provisioned_again_never_sent_back_to_waiting,
                a_new_address_for_a_user_waiting_for_consent_is_decided_again,
                an_unverified_address_belongs_to_nobody,
                a_template_removed_from_the_config_is_disabled_kept_and_refuses_activation,
            ],
            outbox: [
                two_claimers_never_share_an_enterprise_and_keep_its_order,
                concurrent_claims_split_the_work_without_overlap,
                an_expired_lease_is_retaken_and_a_retry_or_release_frees_it_early,
            ],
            emails: [
                enqueue_round_trips_every_field,
                dedupe_key_enqueues_once_whatever_the_state,
                due_emails_are_ordered_by_due_time_and_respect_backoff,
                complete_settles_once_and_names_unknown_ids,
                emails_filter_by_subscriber_kind_and_state_newest_first,
                pending_emails_survive_a_reopen,
                two_claimers_never_take_one_email_and_an_expired_lease_is_retaken,
            ],
            events: [
                without_subscriptions_no_event_is_written,
                provisioning_changes_append_events_in_commit_order,
                an_undone_operation_leaves_no_event,
                subscriptions_persist_and_their_cursor_only_moves_forward,
                pruning_removes_only_old_events_up_to_the_given_seq,
            ],
            licenses: [
                licenses_come_from_the_oldest_subscription_and_a_shortage_is_answered_once,
                package_changes_move_only_the_difference_and_keys_apply_once,
                an_organization_without_subscriptions_grants_nothing_when_required,
                subscriptions_are_checked_and_never_drop_below_what_they_assigned,
                concurrent_runs_never_assign_more_than_bought
                    [flavor = "multi_thread", worker_threads = 4],
                templates_license_new_users_and_reach_existing_ones_when_asked,
                subscription_moves_keep_why_and_losing_calling_needs_an_acknowledgement,
                template_extras_are_best_effort_and_outlive_package_changes,
                a_group_move_follows_the_new_groups_template_and_the_preserve_setting,
                admins_grant_and_revoke_by_hand_within_the_subscriptions,
                a_move_by_template_takes_the_users_the_template_applies_to,
                the_holders_report_comes_in_keyset_pages,
            ],
            calling: [
                calling_needs_a_free_number_of_the_organizations_locations,
                an_organization_without_locations_needs_only_an_e164_number,
                numbers_are_added_all_or_nothing_to_one_organizations_location,
                two_cores_never_give_one_number_to_two_users
                    [flavor = "multi_thread", worker_threads = 4],
                devices_need_calling_and_webex_go_needs_professional_in_the_us_or_uk,
                a_bulk_device_request_is_all_or_nothing,
            ],
            workspaces: [
                workspaces_hold_the_workspace_license_and_move_like_users,
            ],
            partner: [
                partner_list_filters_by_status_template_and_exclude_provisioned,
                partner_list_pages_by_keyset_without_gaps_or_repeats,
                partner_delete_is_partial_and_writes_remove_subscriber_in_the_same_transaction,
                partner_package_change_follows_the_modify_rules,
                partner_admin_tokens_are_set_kept_and_cleared,
            ],
        }
    };
}

/// [`store_suite!`]'s worker: a module per suite module, a test per case
/// (with the case's `#[tokio::test(..)]` arguments when it has some).
macro_rules! suite_cases {
    ($factory:expr; $($module:ident: [$($case:ident $([$($arg:tt)*])?),* $(,)?]),* $(,)?) => {
        $(
            mod $module {
                #[allow(unused_imports)]
                use super::*;
                $(
                    #[tokio::test $(($($arg)*))?]
                    async fn $case() {
                        $crate::store::suite::$module::$case(&$factory).await
                    }
                )*
            }
        )*
    };
}

pub(crate) use {store_suite, suite_cases};
