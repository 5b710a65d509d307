//! The delivery worker against a real SQLite store with scripted license
//! cores: a rejected command puts its subscriber in `error` with
//! `errors[{errorCode, description}]`, and a core that answers "unavailable"
//! holds that enterprise's later commands behind the retried one while
//! other enterprises carry on.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::{watch, Notify};

use super::spawn_delivery;
use crate::commands::{Command, CommandEnvelope};
use crate::config::StoreConfig;
use crate::domain::ids::UserId;
use crate::domain::lifecycle::{SubscriberRecord, SubscriberStatus};
use crate::domain::phone::DirectoryNumber;
use crate::domain::subscriber::{NewSubscriber, Operation, SubscriberChanges};
use crate::domain::template::TemplateSource;
use crate::domain::{CustomerTemplate, ErrorCode, Partner, Refusal, TemplateSettings};
use crate::license::{Granted, LicenseCore, LicenseError};
use crate::provision::testing::UseCases;
use crate::provision::AcceptBatch;
use crate::store::sqlite::SqliteStore;
use crate::store::{OutboxState, SharedStore, Store};
use crate::testing::eventually;

/// The enterprise whose commands the core cannot take for now.
const WAITING: &str = "ENT-W";

/// Rejects `ProvisionSubscriber` for user ids starting with `bad`; answers
/// "unavailable" to every command of [`WAITING`] while `down`; accepts the
/// rest. Records every call in order.
struct ScriptedCore {
    down: AtomicBool,
    calls: Mutex<Vec<Call>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Call {
    enterprise: String,
    key: String,
    kind: &'static str,
    ok: bool,
}

impl ScriptedCore {
    fn calls_of(&self, enterprise: &str) -> Vec<Call> {
        self.calls
            .lock()
            .expect("calls")
            .iter()
            .filter(|c| c.enterprise == enterprise)
            .cloned()
            .collect()
    }
}

#[async_trait]
impl LicenseCore for ScriptedCore {
    async fn apply(&self, env: &CommandEnvelope) -> Result<Granted, LicenseError> {
        let enterprise = env.enterprise_key.as_str().to_string();
        let outcome = match &env.command {
            _ if enterprise == WAITING && self.down.load(Ordering::SeqCst) => {
                Err(LicenseError::Unavailable("core in maintenance".into()))
            }
            Command::ProvisionSubscriber { user_id, .. } if user_id.as_str().starts_with("bad") => {
                Err(LicenseError::Rejected(Refusal::new(
                    ErrorCode::NumberAlreadyAssigned,
                    "the number is assigned to another user",
                )))
            }
            _ => Ok(Granted::default()),
        };
        self.calls.lock().expect("calls").push(Call {
            enterprise,
            key: env.idempotency_key.clone(),
            kind: env.command.kind(),
            ok: outcome.is_ok(),
        });
        outcome
    }

    fn name(&self) -> &'static str {
        "scripted"
    }
}

/// Each user its own number (the core rejects by user id, not number).
fn add(user: &str, enterprise: &str) -> Operation {
    let digits: u32 = user.bytes().map(u32::from).sum();
    Operation::AddUser(NewSubscriber {
        user_id: UserId::parse(user).expect("user id"),
        service_provider_id: enterprise.into(),
        group_id: "G1".into(),
        first_name: "Alice".into(),
        last_name: "Smith".into(),
        email: Some(user.to_string()),
        phone_number: Some(
            DirectoryNumber::parse(&format!("+1240555{:04}", digits % 10_000)).expect("phone"),
        ),
        extension: None,
        mobile_phone_number: None,
        language: None,
        time_zone: None,
        package: None,
        is_trunk_user: false,
        has_route_list: false,
        service_provider_name: None,
        group_name: None,
    })
}

fn rename(user: &str, enterprise: &str, first_name: &str) -> Operation {
    Operation::ModifyUser(SubscriberChanges {
        user_id: UserId::parse(user).expect("user id"),
        service_provider_id: enterprise.into(),
        group_id: "G1".into(),
        first_name: Some(first_name.into()),
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
    })
}

async fn store_with_template(dir: &tempfile::TempDir) -> (Arc<SqliteStore>, CustomerTemplate) {
    let store = Arc::new(
        SqliteStore::open(&dir.path().join("bwgate.db"), &StoreConfig::default())
            .await
            .expect("open store"),
    );
    store
        .upsert_partner(&Partner {
            id: "acme".into(),
            name: "Acme".into(),
            admin_email: None,
        })
        .await
        .expect("partner");
    let template = CustomerTemplate {
        provisioning_id: "tpl".into(),
        partner_id: "acme".into(),
        cluster_id: None,
        name: "Template".into(),
        settings: TemplateSettings {
            enterprise_mode: true,
            trusted_emails: true,
            ..TemplateSettings::default()
        },
        provisioning_username: "prov".into(),
        provisioning_password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".into(),
        source: TemplateSource::Api,
        disabled_at: None,
    };
    store.upsert_template(&template).await.expect("template");
    (store, template)
}

async fn accept(store: &SqliteStore, t: &CustomerTemplate, tracking: &str, ops: Vec<Operation>) {
    let out = store
        .accept(AcceptBatch {
            template: t.clone(),
            tracking_id: tracking.into(),
            request_id: None,
            // In the past: the worker's clock finds the commands due.
            now: super::now_millis() - 1_000,
            operations: ops.into_iter().enumerate().collect(),
            invalid: Vec::new(),
            sent_user_ids: Vec::new(),
            approvals: None,
            activations: None,
            self_activation: false,
        })
        .await
        .expect("accept");
    assert!(
        out.results.iter().all(|r| r.error_code.is_none()),
        "{out:?}"
    );
}

async fn sub(store: &SqliteStore, user: &str) -> SubscriberRecord {
    store
        .subscriber_by_user_id(user)
        .await
        .expect("lookup")
        .unwrap_or_else(|| panic!("{user} is stored"))
}

/// How long a test waits for the worker.
const WAIT: Duration = Duration::from_secs(15);

/// Waits until `user` reaches `status`.
async fn wait_status(store: &SqliteStore, user: &str, status: SubscriberStatus) {
    eventually(format!("{user} {status:?}"), WAIT, || async {
        match sub(store, user).await.status {
            s if s == status => Ok(()),
            s => Err(s),
        }
    })
    .await
}

#[tokio::test]
async fn a_running_worker_records_rejections_and_holds_an_enterprise_behind_a_retry() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (store, t) = store_with_template(&dir).await;
    // ENT-R: its subscriber's provisioning is rejected by the core.
    accept(&store, &t, "T1", vec![add("bad@acme.example", "ENT-R")]).await;
    // ENT-W: the core is unavailable; three documents queue behind its head.
    accept(&store, &t, "T2", vec![add("slow@acme.example", "ENT-W")]).await;
    accept(
        &store,
        &t,
        "T3",
        vec![
            rename("slow@acme.example", "ENT-W", "Slower"),
            add("next@acme.example", "ENT-W"),
        ],
    )
    .await;
    // ENT-O: unaffected by either.
    accept(&store, &t, "T4", vec![add("other@acme.example", "ENT-O")]).await;

    let core = Arc::new(ScriptedCore {
        down: AtomicBool::new(true),
        calls: Mutex::new(Vec::new()),
    });
    let shared: SharedStore = store.clone();
    let wake = Arc::new(Notify::new());
    let (stop_tx, stop_rx) = watch::channel(false);
    let worker = spawn_delivery(shared, core.clone(), wake.clone(), stop_rx);

    // (a) The rejected subscriber reaches `error` with the core's answer.
    wait_status(&store, "bad@acme.example", SubscriberStatus::Error).await;
    let bad = sub(&store, "bad@acme.example").await;
    // The admin read-back serializes the record as is: `errors[]` with
    // `errorCode` and `description`.
    let json = serde_json::to_value(&bad).expect("json");
    assert_eq!(json["status"], "error");
    assert_eq!(
        json["errors"],
        serde_json::json!([{
            "errorCode": 9008,
            "description": "the number is assigned to another user"
        }])
    );
    let cmds = store.subscriber_commands(&bad.id).await.expect("commands");
    let provision = cmds
        .iter()
        .find(|c| c.envelope.command.kind() == "ProvisionSubscriber")
        .expect("provision command");
    assert_eq!(provision.state, OutboxState::Failed);
    assert!(
        provision
            .last_error
            .as_deref()
            .unwrap_or("")
            .contains("assigned to another user"),
        "{provision:?}"
    );
    assert!(store.licenses(&bad.id).await.expect("licenses").is_empty());

    // Another enterprise is delivered meanwhile.
    wait_status(&store, "other@acme.example", SubscriberStatus::Provisioned).await;

    // (b) ENT-W: only its head is tried, again and again (backing off);
    // nothing behind it reaches the core.
    eventually("two attempts at ENT-W's head", WAIT, || {
        let n = core.calls_of(WAITING).len();
        async move {
            if n >= 2 {
                Ok(())
            } else {
                Err(n)
            }
        }
    })
    .await;
    let outbox_w: Vec<_> = store
        .due_commands(i64::MAX, usize::MAX)
        .await
        .expect("due")
        .into_iter()
        .filter(|e| e.envelope.enterprise_key.as_str() == WAITING)
        .collect();
    let order_w: Vec<String> = outbox_w
        .iter()
        .map(|e| e.envelope.idempotency_key.clone())
        .collect();
    assert_eq!(
        outbox_w
            .iter()
            .map(|e| e.envelope.command.kind())
            .collect::<Vec<_>>(),
        [
            "EnsureOrganization",
            "ProvisionSubscriber",
            "UpdateSubscriber",
            "ProvisionSubscriber"
        ]
    );
    let head = &order_w[0];
    let tried = core.calls_of(WAITING);
    assert!(
        tried.iter().all(|c| &c.key == head && !c.ok),
        "only the head is tried while it fails: {tried:?}"
    );
    assert!(outbox_w[0].attempts >= 1 && outbox_w[0].last_error.is_some());
    for user in ["slow@acme.example", "next@acme.example"] {
        assert_eq!(
            sub(&store, user).await.status,
            SubscriberStatus::Provisioning,
            "{user} waits"
        );
    }

    // The core comes back: ENT-W's commands go through in their order.
    core.down.store(false, Ordering::SeqCst);
    wake.notify_one();
    wait_status(&store, "next@acme.example", SubscriberStatus::Provisioned).await;
    let slow = sub(&store, "slow@acme.example").await;
    assert_eq!(
        (slow.status, slow.first_name.as_str()),
        (SubscriberStatus::Provisioned, "Slower")
    );
    let delivered: Vec<String> = core
        .calls_of(WAITING)
        .into_iter()
        .filter(|c| c.ok)
        .map(|c| c.key)
        .collect();
    assert_eq!(delivered, order_w, "delivered once each, in order");

    stop_tx.send(true).expect("stop");
    worker.await.expect("worker");
    store.close().await.expect("close");
}

/// A deep backlog of one enterprise is settled in a few transactions per
/// pass (the local core takes the run at once, the outcomes are recorded
/// together), not two per command, and every license is granted once.
#[tokio::test]
async fn one_enterprise_backlog_is_delivered_in_runs_not_one_commit_per_command() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (store, template) = store_with_template(&dir).await;
    let ops = (0..300)
        .map(|i| match add(&format!("u{i}@acme.example"), "ENT-BIG") {
            Operation::AddUser(mut s) => {
                s.phone_number =
                    Some(DirectoryNumber::parse(&format!("+1240556{i:04}")).expect("phone"));
                Operation::AddUser(s)
            }
            other => other,
        })
        .collect();
    accept(&store, &template, "T-big", ops).await;
    let shared: SharedStore = store.clone();
    let core: Arc<dyn LicenseCore> =
        crate::license::LocalLicenseCore::new(shared.clone(), Default::default());
    let before = store.stats().transactions_committed;
    let mut settled = 0;
    let mut passes = 0;
    while settled < 301 {
        let n = super::deliver_due(&shared, &core).await.expect("pass");
        assert!(n > 0, "a pass settles something ({settled} of 301 so far)");
        settled += n;
        passes += 1;
    }
    let commits = store.stats().transactions_committed - before;
    // Per pass: the claim (a lease is a write), the core's ledger, the
    // outcomes. Alone here; under load the claim shares a group commit.
    assert!(
        commits <= 3 * passes,
        "{commits} commits for {passes} passes over 301 commands"
    );
    for i in [0, 150, 299] {
        let s = sub(&store, &format!("u{i}@acme.example")).await;
        assert_eq!(s.status, SubscriberStatus::Provisioned);
        let events = store.license_events(&s.id).await.expect("events");
        let granted: Vec<_> = events.iter().filter(|e| e.action == "grant").collect();
        assert_eq!(
            granted.len(),
            2,
            "basic = 2 licenses, once each: {events:?}"
        );
    }
    let counts = store.outbox_counts().await.expect("counts");
    assert_eq!(
        counts,
        vec![
            (OutboxState::Pending, 0),
            (OutboxState::Delivered, 301),
            (OutboxState::Failed, 0)
        ]
    );
}
