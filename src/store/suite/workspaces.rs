//! Workspaces on any store: provisioned into an enterprise's organization
//! with their command in one unit of work; the core gives each the
//! workspace license from the subscriptions (9041 when none is left);
//! the core's answer settles the status; moves take workspaces like users,
//! templates and admin grants leave them alone; removal frees the license.

use super::licenses::subscription;
use super::*;
use crate::commands::{Command, CommandEnvelope};
use crate::domain::ids::UserId;
use crate::domain::workspace::{WorkspaceRecord, WorkspaceStatus, WORKSPACE_LICENSE};
use crate::domain::ErrorCode;
use crate::license::admin::{LicenseAdmin, Place, SubscriptionMoves, TemplateApplication};
use crate::license::admin_grants::{AdminGrant, GrantAction};
use crate::license::{LicenseCore, LicenseError, LicensePolicy, LocalLicenseCore};
use crate::provision::delivery::{complete_command, DeliveryOutcome};
use crate::provision::workspaces::{self, NewWorkspace, WorkspaceChange};
use crate::store::transact;

fn new_workspace(user: &str, enterprise: &str) -> NewWorkspace {
    NewWorkspace {
        provisioning_id: "tpl".into(),
        user_id: UserId::parse(user).expect("user id"),
        sp_enterprise_id: enterprise.into(),
        display_name: format!("Room {user}"),
        phone_number: None,
        extension: Some("4100".into()),
    }
}

type Made = Result<WorkspaceRecord, crate::domain::Refusal>;

async fn create(fx: &Fixture, user: &str, enterprise: &str) -> Made {
    let new = new_workspace(user, enterprise);
    let tracking = format!("T-{user}-{}", crate::provision::new_id());
    transact(fx.store.as_ref(), move |tx| {
        workspaces::create(tx, "acme", &new, &tracking, NOW)
    })
    .await
    .expect("store")
}

/// The workspace commands not delivered yet, oldest first.
async fn pending(fx: &Fixture) -> Vec<(i64, CommandEnvelope)> {
    outbox(fx)
        .await
        .into_iter()
        .filter(|e| e.state == crate::store::OutboxState::Pending)
        .filter(|e| e.envelope.command.workspace_target().is_some())
        .map(|e| (e.seq, e.envelope))
        .collect()
}

/// Delivers every pending workspace command to `core` and records each
/// answer as the delivery worker does; the refusals' codes.
async fn deliver(fx: &Fixture, core: &LocalLicenseCore) -> Vec<Option<u32>> {
    let mut codes = Vec::new();
    for (seq, env) in pending(fx).await {
        let answer = core.apply(&env).await;
        let outcome = match &answer {
            Ok(_) => DeliveryOutcome::delivered(),
            Err(LicenseError::Rejected(r)) => DeliveryOutcome::Rejected {
                error_code: r.code.code(),
                description: r.message().to_string(),
            },
            Err(e) => panic!("unexpected {e}"),
        };
        codes.push(answer.as_ref().err().map(|e| match e {
            LicenseError::Rejected(r) => r.code.code(),
            _ => 0,
        }));
        let command = env.command.clone();
        transact(fx.store.as_ref(), move |tx| {
            complete_command(tx, seq, &command, &outcome, NOW)
        })
        .await
        .expect("record");
    }
    codes
}

/// The partner `acme` changes workspace `id`.
async fn update(fx: &Fixture, id: &str, change: WorkspaceChange) -> WorkspaceRecord {
    let (id, tracking) = (id.to_string(), format!("T-{}", crate::provision::new_id()));
    transact(fx.store.as_ref(), move |tx| {
        workspaces::update(tx, "acme", &id, &change, &tracking, NOW)
    })
    .await
    .expect("store")
    .expect("update")
}

fn extension(e: &str) -> WorkspaceChange {
    WorkspaceChange {
        extension: Some(e.into()),
        ..WorkspaceChange::default()
    }
}

async fn workspace(fx: &Fixture, id: &str) -> WorkspaceRecord {
    let id = id.to_string();
    transact(fx.store.as_ref(), move |tx| tx.workspace(&id))
        .await
        .expect("read")
        .expect("workspace")
}

/// `user id → (license, subscription)` of the organization's holders.
async fn held(fx: &Fixture, org: &str) -> Vec<(String, String, Option<String>)> {
    fx.license_holders(org)
        .await
        .expect("holders")
        .into_iter()
        .map(|r| (r.user_id, r.holding.license, r.holding.subscription_id))
        .collect()
}

pub(crate) async fn workspaces_hold_the_workspace_license_and_move_like_users(
    factory: &dyn StoreFactory,
) {
    let fx = fixture(factory).await;
    let t = template(&fx, "tpl", true, true).await;
    accept(
        &fx,
        &t,
        "T1",
        vec![add(
            "ann@acme.example",
            "SP1",
            "G1",
            Some("ann@acme.example"),
        )],
    )
    .await;
    let org = value(&fx, "SELECT id FROM organizations", &[])
        .await
        .expect("org");
    let admin = LicenseAdmin::new(fx.store.clone(), LicensePolicy::default(), Place::Gateway);
    let core = LocalLicenseCore::new(fx.store.clone(), LicensePolicy::default());
    // Ann first (unmetered), then subscriptions with two workspace
    // licenses in the older one (the newer has none yet).
    let provisions: Vec<CommandEnvelope> = outbox(&fx)
        .await
        .into_iter()
        .map(|e| e.envelope)
        .filter(|e| matches!(e.command, Command::ProvisionSubscriber { .. }))
        .collect();
    assert!(core
        .apply_in_order(&provisions)
        .await
        .iter()
        .all(Result::is_ok));
    for (id, at, n) in [("old", NOW - 1_000, 2), ("new", NOW, 0)] {
        admin
            .put_subscription(&org, subscription(id, at, &[(WORKSPACE_LICENSE, n)]), NOW)
            .await
            .expect("put");
    }

    // Refusals change nothing: an enterprise that is not the partner's, a
    // user id a subscriber has.
    let unknown = create(&fx, "room0@acme.example", "SP9").await;
    assert!(
        matches!(&unknown, Err(r) if r.code == ErrorCode::NotFound),
        "{unknown:?}"
    );
    let taken = create(&fx, "ann@acme.example", "SP1").await;
    assert!(
        matches!(&taken, Err(r) if r.code == ErrorCode::UserIdAlreadyAssociated),
        "{taken:?}"
    );
    assert!(pending(&fx).await.is_empty(), "no command for a refusal");

    // Three rooms, two licenses: the third is refused by the core (9041)
    // and goes to `error`; the others are provisioned.
    let mut rooms = Vec::new();
    for user in [
        "room1@acme.example",
        "room2@acme.example",
        "room3@acme.example",
    ] {
        let w = create(&fx, user, "SP1").await.expect("created");
        assert_eq!(
            (w.status, w.org_id.as_str()),
            (WorkspaceStatus::Provisioning, org.as_str())
        );
        assert!(w.id.starts_with("ws-"), "{}", w.id);
        rooms.push(w.id);
    }
    let again = create(&fx, "room1@acme.example", "SP1").await;
    assert!(
        matches!(&again, Err(r) if r.code == ErrorCode::UserIdAlreadyAssociated),
        "a live workspace's user id: {again:?}"
    );
    // Room3 changes before the core has answered: its update finds no
    // license and asks for one again (refused too), so room3 does not
    // pass for provisioned.
    update(&fx, &rooms[2], extension("4300")).await;
    assert_eq!(
        deliver(&fx, &core).await,
        [None, None, Some(9041), Some(9041)]
    );
    let statuses: Vec<WorkspaceStatus> = {
        let mut out = Vec::new();
        for id in &rooms {
            out.push(workspace(&fx, id).await.status);
        }
        out
    };
    assert_eq!(
        statuses,
        [
            WorkspaceStatus::Provisioned,
            WorkspaceStatus::Provisioned,
            WorkspaceStatus::Error
        ]
    );
    assert_eq!(workspace(&fx, &rooms[2]).await.errors[0].error_code, 9041);
    let rows = held(&fx, &org).await;
    let of = |user: &str| {
        rows.iter()
            .filter(|(u, _, _)| u == user)
            .map(|(_, l, s)| (l.clone(), s.clone()))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        of("room1@acme.example"),
        [(WORKSPACE_LICENSE.to_string(), Some("old".to_string()))]
    );
    assert!(of("room3@acme.example").is_empty());

    // More bought on the newer subscription.
    admin
        .put_subscription(
            &org,
            subscription("new", NOW, &[(WORKSPACE_LICENSE, 5)]),
            NOW,
        )
        .await
        .expect("more");

    // Templates and admin grants are users': a workspace is left as it is.
    admin
        .put_template(
            &org,
            None,
            crate::domain::license::AutoLicenseTemplate {
                licenses: [WORKSPACE_LICENSE.to_string()].into(),
                preserve_on_group_move: None,
            },
            NOW,
        )
        .await
        .expect("template");
    let applied = admin
        .apply_templates(&org, TemplateApplication::default(), NOW)
        .await
        .expect("apply");
    assert_eq!(applied.users, 1, "ann only: {applied:?}");
    let granted = admin
        .admin_grant(
            &org,
            AdminGrant {
                action: GrantAction::Revoke,
                users: vec!["room1@acme.example".into()],
                licenses: [WORKSPACE_LICENSE.to_string()].into(),
                by: "ops".into(),
                calling_loss_acknowledged: false,
            },
            NOW,
        )
        .await
        .expect("grant");
    assert_eq!(granted.short.len(), 1, "{granted:?}");

    // A move takes every holder of the old subscription, workspaces too;
    // the freed licenses let room3 through when it is asked again.
    let moved = admin
        .move_subscription(
            &org,
            "old",
            SubscriptionMoves::All { to: "new".into() },
            NOW,
        )
        .await
        .expect("move");
    let mut users: Vec<&str> = moved.moved.iter().map(|(u, _)| u.as_str()).collect();
    users.sort();
    assert_eq!(users, ["room1@acme.example", "room2@acme.example"]);
    let retried = update(&fx, &rooms[2], extension("4199")).await;
    assert_eq!(retried.status, WorkspaceStatus::Provisioning);
    assert_eq!(deliver(&fx, &core).await, [None]);
    assert_eq!(
        workspace(&fx, &rooms[2]).await.status,
        WorkspaceStatus::Provisioned
    );
    assert_eq!(
        of_all(&held(&fx, &org).await, "room3@acme.example"),
        [(WORKSPACE_LICENSE.to_string(), Some("old".to_string()))]
    );

    // A user id change reaches the holdings; removal frees the license.
    let lobby = WorkspaceChange {
        user_id: Some(UserId::parse("lobby@acme.example").expect("uid")),
        ..WorkspaceChange::default()
    };
    update(&fx, &rooms[0], lobby).await;
    let id = rooms[1].clone();
    transact(fx.store.as_ref(), move |tx| {
        workspaces::remove(tx, "acme", &id, "T-remove", NOW)
    })
    .await
    .expect("store")
    .expect("remove");
    assert_eq!(deliver(&fx, &core).await, [None, None]);
    let rows = held(&fx, &org).await;
    assert_eq!(
        of_all(&rows, "lobby@acme.example"),
        [(WORKSPACE_LICENSE.to_string(), Some("new".to_string()))]
    );
    assert!(of_all(&rows, "room1@acme.example").is_empty());
    assert!(of_all(&rows, "room2@acme.example").is_empty(), "freed");
    assert_eq!(
        workspace(&fx, &rooms[1]).await.status,
        WorkspaceStatus::Removed
    );
    // A removed workspace's user id may be used again; another partner
    // cannot touch the workspace.
    create(&fx, "room2@acme.example", "SP1")
        .await
        .expect("user id free again");
    let id = rooms[0].clone();
    let foreign = transact(fx.store.as_ref(), move |tx| {
        workspaces::remove(tx, "other", &id, "T-x", NOW)
    })
    .await
    .expect("store");
    assert!(
        matches!(&foreign, Err(r) if r.code == ErrorCode::NotFound),
        "{foreign:?}"
    );
}

fn of_all(rows: &[(String, String, Option<String>)], user: &str) -> Vec<(String, Option<String>)> {
    rows.iter()
        .filter(|(u, _, _)| u == user)
        .map(|(_, l, s)| (l.clone(), s.clone()))
        .collect()
}
