//! The license core end to end: the real binary, AddUsers over mTLS, a
//! subscription put through the operator API, licenses taken from it until
//! it is used up, the shortage on the subscriber (9041), the CSV export of
//! who holds what and why, and the ledger as a billing feed.

use std::time::Duration;

use serde_json::{json, Value};

use crate::flowthrough::{add_user, demo, document, post, subscriber, wait_status, Demo};
use crate::harness::{admin_http_with_head, eventually, Server};

const CALLING: &str = "webex-calling-basic";
const MESSAGING: &str = "webex-messaging";

async fn send(server: &Server, d: &Demo, ops: &[String]) -> String {
    let resp = post(
        server,
        &d.path,
        Some(&d.auth),
        document(None, ops),
        "application/xml",
    )
    .await;
    assert_eq!(resp.status, 200, "{}", resp.text());
    resp.text()
}

async fn admin(server: &Server, method: &str, path: &str, body: &Value) -> (u16, Value) {
    let (status, text) = server.admin_json(method, path, &body.to_string()).await;
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

async fn get(server: &Server, path: &str) -> (u16, Value) {
    let (status, text) = server.admin_get(path).await;
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// `GET` with `Accept: text/csv`: (status, content type, body).
async fn get_csv(server: &Server, path: &str) -> (u16, String, String) {
    let auth = format!("Bearer {}", server.ops_token());
    let (status, head, body) = admin_http_with_head(
        server.admin,
        "GET",
        path,
        &[("Authorization", &auth), ("Accept", "text/csv")],
        "",
    )
    .await;
    let ct = head
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("content-type:")
                .map(|v| v.trim().to_string())
        })
        .unwrap_or_default();
    (status, ct, body)
}

/// Adds `user` (enterprise `sp`) as the first user of a new organization,
/// waits until it is provisioned, and returns the organization's id.
async fn first_user_org(server: &Server, d: &Demo, user: &str, sp: &str) -> String {
    send(server, d, &[add_user(user, sp, Some(user))]).await;
    let v = wait_status(server, user, "provisioned").await;
    v["organization"]["id"]
        .as_str()
        .expect("org id")
        .to_string()
}

fn error_code(v: &Value) -> i64 {
    v["errors"][0]["errorCode"].as_i64().unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscriptions_are_used_up_oldest_first_and_the_ledger_and_csv_say_who_holds_what() {
    let server = Server::start();
    let d = demo(&server);

    // The first user makes the organization; it has no subscription yet,
    // so its licenses are unmetered.
    let org = first_user_org(&server, &d, "a@lic.example", "lic").await;
    let base = format!("/admin/v1/organizations/{org}");

    // Two subscriptions, added newest first.
    let (status, body) = admin(
        &server,
        "PUT",
        &format!("{base}/subscriptions/sub-new"),
        &json!({"startsAt": "2026-06-01T00:00:00Z", "quantities": {CALLING: 5, MESSAGING: 5}}),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let (status, body) = admin(
        &server,
        "PUT",
        &format!("{base}/subscriptions/sub-old"),
        &json!({"startsAt": "2026-01-01", "quantities": {CALLING: 1, MESSAGING: 1}}),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["startsAt"], "2026-01-01T00:00:00.000Z");
    assert_eq!(body["available"][CALLING], 1);

    // b takes the old one's last licenses, c the new one's.
    send(
        &server,
        &d,
        &[
            add_user("b@lic.example", "lic", Some("b@lic.example")),
            add_user("c@lic.example", "lic", Some("c@lic.example")),
        ],
    )
    .await;
    wait_status(&server, "b@lic.example", "provisioned").await;
    wait_status(&server, "c@lic.example", "provisioned").await;

    let (status, subs) = get(&server, &format!("{base}/subscriptions")).await;
    assert_eq!(status, 200, "{subs}");
    let list = subs["subscriptions"].as_array().expect("list");
    assert_eq!(list[0]["id"], "sub-old", "oldest first: {subs}");
    assert_eq!(list[0]["assigned"][CALLING], 1);
    assert_eq!(list[0]["available"][CALLING], 0);
    assert_eq!(list[1]["assigned"][CALLING], 1);
    assert_eq!(list[1]["available"][CALLING], 4);

    // Who holds what and why, as CSV.
    let (status, ct, csv) = get_csv(&server, &format!("{base}/licenses")).await;
    assert_eq!(status, 200, "{csv}");
    assert!(ct.starts_with("text/csv"), "{ct}");
    let mut lines = csv.lines();
    assert_eq!(
        lines.next(),
        Some("subscriber_id,user_id,license,subscription_id,source,source_ref,command_key,granted_at")
    );
    let rows: Vec<Vec<&str>> = lines.map(|l| l.split(',').collect()).collect();
    let from = |user: &str, license: &str| {
        rows.iter()
            .find(|r| r[1] == user && r[2] == license)
            .map(|r| r[3].to_string())
            .unwrap_or_else(|| panic!("{user} holds {license}: {csv}"))
    };
    assert_eq!(from("a@lic.example", CALLING), "", "unmetered");
    assert_eq!(from("b@lic.example", CALLING), "sub-old");
    assert_eq!(from("c@lic.example", CALLING), "sub-new");
    assert!(rows
        .iter()
        .all(|r| r[4] == "package" && r[5] == "basic" && r[7].ends_with('Z')));
    // The same as JSON (`?format` absent, no Accept).
    let (_, holders) = get(&server, &format!("{base}/licenses")).await;
    assert_eq!(
        holders["holders"].as_array().map(Vec::len),
        Some(rows.len())
    );
    assert_eq!(holders["next"], Value::Null, "one page");
    // In pages of 4, following `next`: the same rows, in order.
    assert!(rows.len() > 4, "more than one page: {}", rows.len());
    let mut paged: Vec<Value> = Vec::new();
    let mut path = format!("{base}/licenses?limit=4");
    loop {
        let (status, page) = get(&server, &path).await;
        assert_eq!(status, 200, "{page}");
        paged.extend(page["holders"].as_array().expect("holders").iter().cloned());
        match page["next"].as_str() {
            Some(next) => path = format!("{base}/licenses?limit=4&after={next}"),
            None => break,
        }
    }
    assert_eq!(Some(&paged), holders["holders"].as_array());
    let (status, body) = get(&server, &format!("{base}/licenses?after=garbage")).await;
    assert_eq!((status, error_code(&body)), (400, 9017), "{body}");

    // A subscription cannot drop below what it assigned; nothing changes.
    let (status, body) = admin(
        &server,
        "PUT",
        &format!("{base}/subscriptions/sub-old"),
        &json!({"startsAt": "2026-01-01", "quantities": {MESSAGING: 1}}),
    )
    .await;
    assert_eq!((status, error_code(&body)), (409, 9042), "{body}");
    let (_, again) = get(&server, &format!("{base}/subscriptions")).await;
    assert_eq!(again, subs);

    // Shrink the new one to what it has assigned: the next user is short
    // and goes to error with the reason; the others are untouched.
    let (status, body) = admin(
        &server,
        "PUT",
        &format!("{base}/subscriptions/sub-new"),
        &json!({"startsAt": "2026-06-01T00:00:00Z", "quantities": {CALLING: 1, MESSAGING: 5}}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    send(
        &server,
        &d,
        &[add_user("e@lic.example", "lic", Some("e@lic.example"))],
    )
    .await;
    let e = wait_status(&server, "e@lic.example", "error").await;
    let err = &e["subscriber"]["errors"][0];
    assert_eq!(err["errorCode"], 9041, "{e}");
    assert!(
        err["description"].as_str().unwrap_or("").contains(CALLING),
        "{e}"
    );
    assert_eq!(e["licenses"], json!([]), "all or nothing: {e}");
    let shortage_feed = get(&server, "/admin/v1/licenses/ledger?after=0&limit=100")
        .await
        .1;

    // The ledger: every grant with its time, organization and
    // subscription; the cursor moves past them.
    let (status, feed) = get(&server, "/admin/v1/licenses/ledger?after=0&limit=100").await;
    assert_eq!(status, 200, "{feed}");
    let events = feed["events"].as_array().expect("events");
    assert_eq!(events.len(), 6, "3 users × 2 licenses: {feed}");
    assert!(events.iter().all(|e| e["action"] == "grant"
        && e["organizationId"] == org.as_str()
        && e["at"].as_str().is_some_and(|t| t.ends_with('Z'))));
    let next = feed["next"].as_i64().expect("next");
    assert_eq!(next, events[5]["id"].as_i64().unwrap());

    // b leaves: two removals, from the subscription they counted against.
    let delete = "<DeleteUser><userId>b@lic.example</userId></DeleteUser>".to_string();
    send(&server, &d, &[delete]).await;
    let later = eventually(
        "b's removals in the ledger",
        Duration::from_secs(15),
        || async {
            let (_, v) = get(&server, &format!("/admin/v1/licenses/ledger?after={next}")).await;
            match v["events"].as_array() {
                Some(e) if e.len() == 2 => Ok(v),
                _ => Err(v),
            }
        },
    )
    .await;
    for e in later["events"].as_array().unwrap() {
        assert_eq!(e["action"], "revoke");
        assert_eq!(e["subscriptionId"], "sub-old");
    }
    let (status, ct, csv) = get_csv(&server, "/admin/v1/licenses/ledger?after=0").await;
    assert_eq!(status, 200);
    assert!(ct.starts_with("text/csv"));
    assert_eq!(csv.lines().count(), 1 + 8, "{csv}");

    // b's licenses are free again, and the operator retries e: it is
    // provisioned from the subscription with room (the old one).
    assert_eq!(shortage_feed["events"].as_array().map(Vec::len), Some(6));
    let (status, body) = server
        .admin_json(
            "POST",
            "/admin/v1/subscribers/e@lic.example/activation",
            "{}",
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let e = wait_status(&server, "e@lic.example", "provisioned").await;
    assert!(
        e["licenseEvents"]
            .as_array()
            .unwrap()
            .iter()
            .all(|x| x["subscriptionId"] == "sub-old"),
        "{e}"
    );

    // Refusals: unknown organization, bad document, bad date, wrong method.
    let (status, body) = get(&server, "/admin/v1/organizations/ghost/subscriptions").await;
    assert_eq!((status, error_code(&body)), (404, 9015), "{body}");
    let (status, body) = admin(
        &server,
        "PUT",
        &format!("{base}/subscriptions/s2"),
        &json!({"quantities": {CALLING: 1}}),
    )
    .await;
    assert_eq!((status, error_code(&body)), (400, 9017), "{body}");
    let (status, body) = admin(
        &server,
        "PUT",
        &format!("{base}/subscriptions/s2"),
        &json!({"startsAt": "June", "quantities": {}}),
    )
    .await;
    assert_eq!((status, error_code(&body)), (400, 9017), "{body}");
    let (status, body) = get(&server, "/admin/v1/licenses/ledger?after=-1").await;
    assert_eq!((status, error_code(&body)), (400, 9017), "{body}");
    let (status, _) = admin(&server, "POST", &format!("{base}/licenses"), &json!({})).await;
    assert_eq!(status, 405);
    // Nothing above added a subscription.
    let (_, after) = get(&server, &format!("{base}/subscriptions")).await;
    assert_eq!(after["subscriptions"].as_array().map(Vec::len), Some(2));
    // The subscriber read-back shows the ledger entries with subscriptions.
    let (_, c) = subscriber(&server, "c@lic.example").await;
    assert!(
        c["licenseEvents"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["subscriptionId"] == "sub-new"),
        "{c}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn templates_license_new_users_and_existing_ones_when_asked() {
    let server = Server::start();
    let d = demo(&server);
    let org = first_user_org(&server, &d, "a@tpl.example", "tpl").await;
    let base = format!("/admin/v1/organizations/{org}/license-templates");

    let (status, body) = admin(
        &server,
        "PUT",
        &format!("{base}/organization"),
        &json!({"licenses": ["webex-meetings-basic"]}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    // The demo's AddUsers are in group grp1.
    let (status, body) = admin(
        &server,
        "PUT",
        &format!("{base}/groups/grp1"),
        &json!({"licenses": ["meetings-host:acme.webex.com"]}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let (status, t) = get(&server, &base).await;
    assert_eq!(status, 200, "{t}");
    assert_eq!(t["organizationTemplate"], json!(["webex-meetings-basic"]));
    assert_eq!(
        t["groupTemplates"]["grp1"],
        json!(["meetings-host:acme.webex.com"])
    );

    // A new user gets the templates' licenses; the existing one does not.
    send(
        &server,
        &d,
        &[add_user("b@tpl.example", "tpl", Some("b@tpl.example"))],
    )
    .await;
    let b = wait_status(&server, "b@tpl.example", "provisioned").await;
    let has = |v: &Value, l: &str| v["licenses"].as_array().unwrap().iter().any(|x| x == l);
    assert!(
        has(&b, "webex-meetings-basic") && has(&b, "meetings-host:acme.webex.com"),
        "{b}"
    );
    let (_, a) = subscriber(&server, "a@tpl.example").await;
    assert!(!has(&a, "webex-meetings-basic"), "{a}");

    // Applied to existing users (empty body: preserve).
    let (status, _, body) = admin_http_with_head(
        server.admin,
        "POST",
        &format!("{base}/apply"),
        &[
            ("Authorization", &format!("Bearer {}", server.ops_token())),
            ("Content-Type", "application/json"),
        ],
        "",
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let report: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        (
            report["users"].as_u64(),
            report["changed"].as_u64(),
            report["preserveLicenses"].as_bool()
        ),
        (Some(2), Some(1), Some(true)),
        "{report}"
    );
    let (_, a) = subscriber(&server, "a@tpl.example").await;
    assert!(
        has(&a, "webex-meetings-basic") && has(&a, "meetings-host:acme.webex.com"),
        "{a}"
    );
    let (_, csv) = server
        .admin_get(&format!(
            "/admin/v1/organizations/{org}/licenses?format=csv"
        ))
        .await;
    assert!(
        csv.lines().any(
            |l| l.contains(",a@tpl.example,meetings-host:acme.webex.com,,template,group:grp1,")
        ),
        "{csv}"
    );

    // Refusals change nothing.
    let (status, body) = admin(
        &server,
        "PUT",
        &format!("{base}/organization"),
        &json!({"licences": []}),
    )
    .await;
    assert_eq!((status, error_code(&body)), (400, 9017), "{body}");
    let (status, body) = admin(
        &server,
        "PUT",
        &format!("{base}/organization"),
        &json!({"licenses": ["no spaces"]}),
    )
    .await;
    assert_eq!((status, error_code(&body)), (400, 9017), "{body}");
    let (status, body) = admin(
        &server,
        "POST",
        "/admin/v1/organizations/ghost/license-templates/apply",
        &json!({}),
    )
    .await;
    assert_eq!((status, error_code(&body)), (404, 9015), "{body}");
    let (_, after) = get(&server, &base).await;
    assert_eq!(after, t);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_csv_moves_users_between_subscriptions_all_or_nothing_each() {
    let server = Server::start();
    let d = demo(&server);
    let org = first_user_org(&server, &d, "a@mv.example", "mv").await;
    let base = format!("/admin/v1/organizations/{org}/subscriptions");
    for (id, starts, calling) in [("s-old", "2026-01-01", 5), ("s-new", "2026-02-01", 1)] {
        let (status, body) = admin(
            &server,
            "PUT",
            &format!("{base}/{id}"),
            &json!({"startsAt": starts, "quantities": {CALLING: calling, MESSAGING: 5}}),
        )
        .await;
        assert_eq!(status, 201, "{body}");
    }
    send(
        &server,
        &d,
        &[
            add_user("b@mv.example", "mv", Some("b@mv.example")),
            add_user("c@mv.example", "mv", Some("c@mv.example")),
        ],
    )
    .await;
    wait_status(&server, "b@mv.example", "provisioned").await;
    wait_status(&server, "c@mv.example", "provisioned").await;

    // b and c to s-new, which has room for one calling license: b moves,
    // c stays whole; a (unmetered) holds nothing from s-old.
    let csv =
        "user_id,to_subscription\nb@mv.example,s-new\nc@mv.example,s-new\na@mv.example,s-new\n";
    let (status, _, body) = admin_http_with_head(
        server.admin,
        "POST",
        &format!("{base}/s-old/move"),
        &[
            ("Authorization", &format!("Bearer {}", server.ops_token())),
            ("Content-Type", "text/csv"),
        ],
        csv,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let report: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        report["moved"],
        json!([{"userId": "b@mv.example", "licenses": 2}]),
        "{report}"
    );
    let short: Vec<&str> = report["short"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["userId"].as_str().unwrap())
        .collect();
    assert_eq!(short, ["c@mv.example", "a@mv.example"], "{report}");
    let (_, holders) = server
        .admin_get(&format!(
            "/admin/v1/organizations/{org}/licenses?format=csv"
        ))
        .await;
    for (user, sub) in [("b@mv.example", "s-new"), ("c@mv.example", "s-old")] {
        assert!(
            holders
                .lines()
                .filter(|l| l.contains(&format!(",{user},")))
                .all(|l| l.contains(&format!(",{sub},package,basic,"))),
            "{user} on {sub}: {holders}"
        );
    }
    // A bad CSV or an unknown target changes nothing.
    let (status, _, body) = admin_http_with_head(
        server.admin,
        "POST",
        &format!("{base}/s-old/move"),
        &[
            ("Authorization", &format!("Bearer {}", server.ops_token())),
            ("Content-Type", "text/csv"),
        ],
        "user,to\nb@mv.example,s-old\n",
    )
    .await;
    assert_eq!(status, 400, "{body}");
    let (status, body) = admin(
        &server,
        "POST",
        &format!("{base}/s-new/move"),
        &json!({"to": "ghost"}),
    )
    .await;
    assert_eq!((status, error_code(&body)), (404, 9015), "{body}");
    let (_, after) = server
        .admin_get(&format!(
            "/admin/v1/organizations/{org}/licenses?format=csv"
        ))
        .await;
    assert_eq!(after, holders);
}
