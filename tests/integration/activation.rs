//! The activation portal end to end: the real binary with an untrusted and
//! a trusted template, AddUser over mTLS, emails delivered through a real
//! SMTP receiver (aiosmtpd) on loopback, links and codes read from the
//! received mail, and the portal's pages over real HTTPS.

use std::time::Duration;

use base64::Engine;
use serde_json::Value;

use crate::email::{admin_post, header, wait_messages, Receiver, Relay};
use crate::flowthrough::{add_user, document, post, subscriber, wait_status};
use crate::harness::Server;

const AUTH: &str = "Basic YWN0OmFjdC1wdy0x"; // act:act-pw-1

fn config(relay_smtp: &str) -> String {
    format!(
        "{relay_smtp}\n[activation]\nmax_code_attempts = 3\n\n\
[[partners]]\nid = \"sp\"\nname = \"SP\"\nadmin_email = \"admin@sp.example\"\n\n\
[[templates]]\nprovisioning_id = \"untrusted\"\npartner = \"sp\"\nname = \"Untrusted\"\n\
provisioning_username = \"act\"\nprovisioning_password = \"act-pw-1\"\n\
[templates.settings]\ntrusted_emails = false\n\n\
[[templates]]\nprovisioning_id = \"trusted\"\npartner = \"sp\"\nname = \"Trusted\"\n\
provisioning_username = \"act\"\nprovisioning_password = \"act-pw-1\"\n"
    )
}

/// A server with the activation config and a real SMTP receiver (the
/// relay lives as long as the returned value).
fn started() -> (Relay, Receiver, Server) {
    let relay = Relay::new();
    let receiver = relay.start(0, false);
    let server = Server::start_with(Some(&config(&relay.smtp_config(receiver.port, false))), &[]);
    (relay, receiver, server)
}

async fn add(server: &Server, template: &str, user: &str, sp: &str, email: Option<&str>) {
    let resp = post(
        server,
        &format!("/uc-one/v1/provisioning/{template}"),
        Some(AUTH),
        document(None, &[add_user(user, sp, email)]),
        "application/xml",
    )
    .await;
    assert_eq!(resp.status, 200, "{}", resp.text());
}

/// Every text the message holds: raw, quoted-printable and base64 parts
/// decoded.
fn texts(data: &str) -> Vec<String> {
    let mut out = vec![data
        .replace("=\r\n", "")
        .replace("=\n", "")
        .replace("=3D", "=")];
    for block in data.split("\r\n\r\n") {
        let joined: String = block.lines().map(str::trim).collect();
        if let Ok(bytes) = base64::engine::general_purpose::STANDARD.decode(joined.as_bytes()) {
            out.push(String::from_utf8_lossy(&bytes).into_owned());
        }
    }
    out
}

/// The token of the first `{page}?token=` link in the message.
fn token_in(data: &str, page: &str) -> String {
    let needle = format!("{page}?token=");
    for text in texts(data) {
        if let Some(i) = text.find(&needle) {
            return text[i + needle.len()..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
                .collect();
        }
    }
    panic!("no {page} link in {data}");
}

/// The 6-digit code in the subject.
fn code_in(data: &str) -> String {
    let subject = header(data, "Subject").expect("subject");
    let code: String = subject.chars().filter(char::is_ascii_digit).collect();
    assert_eq!(code.len(), 6, "{subject}");
    code
}

async fn message_to(receiver: &Receiver, n: usize, to: &str) -> String {
    let got = wait_messages(receiver, n, Duration::from_secs(20)).await;
    let m = &got[n - 1];
    assert_eq!(m["rcpt_tos"], serde_json::json!([to]), "{m}");
    m["data"].as_str().unwrap().to_string()
}

async fn status_of(server: &Server, user: &str) -> Value {
    let (code, v) = subscriber(server, user).await;
    assert_eq!(code, 200, "{v}");
    v
}

#[tokio::test]
async fn untrusted_user_activates_through_the_portal_with_an_emailed_code() {
    let (_relay, receiver, server) = started();

    add(
        &server,
        "untrusted",
        "ann@acme.example",
        "acme",
        Some("ann@bw.example"),
    )
    .await;
    let v = status_of(&server, "ann@acme.example").await;
    assert_eq!(v["subscriber"]["status"], "pending_email_input");
    assert_eq!(v["activation"]["activation"]["purpose"], "email_input");
    let link = v["activation"]["activationUrl"]
        .as_str()
        .unwrap()
        .to_string();

    // The activation link arrives at the address BroadWorks gave.
    let mail = message_to(&receiver, 1, "ann@bw.example").await;
    assert_eq!(
        header(&mail, "X-Bwgate-Kind").as_deref(),
        Some("activation_link")
    );
    let token = token_in(&mail, "/activate");
    assert!(link.ends_with(&token), "read-back shows the same link");

    let (status, page) = server.portal_get(&format!("/activate?token={token}")).await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("Step 1"), "{page}");
    assert!(
        page.contains("ann@acme.example"),
        "names the BroadWorks user"
    );
    assert!(page.contains("value=\"ann@bw.example\""), "prefilled");

    // A bad address is refused on the page and changes nothing.
    let (status, _, page) = server
        .portal_form(
            "/activate/email",
            &[("token", &token), ("email", "not an email")],
        )
        .await;
    assert_eq!(status, 400, "{page}");
    assert!(page.contains("error 9001"), "{page}");
    assert!(page.contains("aria-invalid=\"true\" aria-describedby=\"form-error\""));
    assert!(
        page.contains("value=\"not an email\""),
        "what the user typed is shown again: {page}"
    );
    assert_eq!(
        status_of(&server, "ann@acme.example").await["subscriber"]["status"],
        "pending_email_input"
    );

    let (status, _, page) = server
        .portal_form(
            "/activate/email",
            &[("token", &token), ("email", "Ann.Lee@Home.example")],
        )
        .await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("Step 2"), "{page}");
    assert_eq!(
        status_of(&server, "ann@acme.example").await["subscriber"]["status"],
        "pending_email_validation"
    );
    let mail = message_to(&receiver, 2, "Ann.Lee@home.example").await;
    let code = code_in(&mail);
    // The emailed link opens a confirmation page (a GET changes nothing).
    let verify_token = token_in(&mail, "/activate/verify");
    assert_eq!(verify_token, token);
    let (status, page) = server
        .portal_get(&format!("/activate/verify?token={token}&code={code}"))
        .await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("Confirm and activate"), "{page}");

    // A wrong code is refused and counted; a malformed one just refused.
    let wrong = if code == "000000" { "000001" } else { "000000" };
    let (status, _, page) = server
        .portal_form("/activate/verify", &[("token", &token), ("code", wrong)])
        .await;
    assert_eq!(status, 400, "{page}");
    assert!(
        page.contains("error 9026") && page.contains("2 attempts left"),
        "{page}"
    );
    let (status, _, page) = server
        .portal_form("/activate/verify", &[("token", &token), ("code", "12ab")])
        .await;
    assert_eq!(status, 400, "{page}");
    assert!(page.contains("6 digits"), "{page}");
    assert_eq!(
        status_of(&server, "ann@acme.example").await["activation"]["activation"]["codeAttempts"],
        1
    );

    let (status, _, page) = server
        .portal_form("/activate/verify", &[("token", &token), ("code", &code)])
        .await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("Account activated"), "{page}");
    let v = wait_status(&server, "ann@acme.example", "provisioned").await;
    assert_eq!(v["subscriber"]["email"], "Ann.Lee@home.example");
    let kinds: Vec<&str> = v["commands"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["type"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["ProvisionSubscriber"]);

    // The link is used up; a forged one is refused.
    let (status, page) = server.portal_get(&format!("/activate?token={token}")).await;
    assert_eq!(status, 400, "{page}");
    assert!(
        page.contains("already used") && page.contains("error 9025"),
        "{page}"
    );
    let (status, page) = server.portal_get("/activate?token=eyJ4Ijo.AAAA").await;
    assert_eq!(status, 400, "{page}");
    assert!(page.contains("error 9025"), "{page}");
}

#[tokio::test]
async fn wrong_codes_lock_and_an_admin_retry_sends_a_new_link() {
    let (_relay, receiver, server) = started();
    add(&server, "untrusted", "bo@acme.example", "acme", None).await;
    let v = status_of(&server, "bo@acme.example").await;
    let link = v["activation"]["activationUrl"].as_str().unwrap();
    let token = link.split_once("token=").unwrap().1.to_string();

    let (status, _, _) = server
        .portal_form(
            "/activate/email",
            &[("token", &token), ("email", "bo@home.example")],
        )
        .await;
    assert_eq!(status, 200);
    let code = code_in(&message_to(&receiver, 1, "bo@home.example").await);
    let wrong = if code == "000000" { "000001" } else { "000000" };
    for _ in 0..2 {
        let (status, _, _) = server
            .portal_form("/activate/verify", &[("token", &token), ("code", wrong)])
            .await;
        assert_eq!(status, 400);
    }
    let (status, _, page) = server
        .portal_form("/activate/verify", &[("token", &token), ("code", wrong)])
        .await;
    assert_eq!(status, 429, "{page}");
    assert!(
        page.contains("error 9027") && page.contains("locked"),
        "{page}"
    );
    let (status, _, page) = server
        .portal_form("/activate/verify", &[("token", &token), ("code", &code)])
        .await;
    assert_eq!(
        status, 429,
        "the right code is refused while locked: {page}"
    );
    assert_eq!(
        status_of(&server, "bo@acme.example").await["subscriber"]["status"],
        "pending_email_validation"
    );

    // The partner admin retries the activation with an email: a new link
    // goes there and the old one stops working.
    let (status, body) = admin_post(
        &server,
        "/admin/v1/subscribers/bo@acme.example/activation",
        r#"{"email": "bo.lee@home.example"}"#,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let renewed: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(renewed["emailQueued"], true);
    assert_eq!(renewed["status"], "pending_email_input");
    let mail = message_to(&receiver, 2, "bo.lee@home.example").await;
    let new_token = token_in(&mail, "/activate");
    assert_ne!(new_token, token);
    let (status, page) = server.portal_get(&format!("/activate?token={token}")).await;
    assert_eq!(status, 400, "{page}");
    assert!(
        page.contains("error 9025") && page.contains("newer link"),
        "{page}"
    );
    let (status, page) = server
        .portal_get(&format!("/activate?token={new_token}"))
        .await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("value=\"bo.lee@home.example\""), "{page}");

    // Bad admin input changes nothing.
    let (status, body) = admin_post(
        &server,
        "/admin/v1/subscribers/bo@acme.example/activation",
        r#"{"email": "nope"}"#,
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("9001"), "{body}");
    let (status, body) = admin_post(
        &server,
        "/admin/v1/subscribers/nobody@acme.example/activation",
        "",
    )
    .await;
    assert_eq!(status, 404, "{body}");
}

#[tokio::test]
async fn trusted_email_of_another_account_waits_for_consent_then_moves() {
    let (_relay, receiver, server) = started();
    add(
        &server,
        "trusted",
        "old@acme.example",
        "acme",
        Some("pat@acme.example"),
    )
    .await;
    wait_status(&server, "old@acme.example", "provisioned").await;
    // beta's organization exists already (its first user has its own
    // address): a later user with an address another account holds waits.
    add(
        &server,
        "trusted",
        "first@beta.example",
        "beta",
        Some("first@beta.example"),
    )
    .await;
    add(
        &server,
        "trusted",
        "new@beta.example",
        "beta",
        Some("pat@acme.example"),
    )
    .await;
    let v = status_of(&server, "new@beta.example").await;
    assert_eq!(v["subscriber"]["status"], "pending_user_migration");

    let mail = message_to(&receiver, 1, "pat@acme.example").await;
    assert_eq!(
        header(&mail, "X-Bwgate-Kind").as_deref(),
        Some("consent_migration")
    );
    let token = token_in(&mail, "/consent");
    let (status, page) = server.portal_get(&format!("/consent?token={token}")).await;
    assert_eq!(status, 200, "{page}");
    assert!(
        page.contains("Activate account") && page.contains("pat@acme.example"),
        "{page}"
    );
    // Resend consent (admin): the same kind of email again, a new link.
    let (status, body) = admin_post(
        &server,
        "/admin/v1/subscribers/new@beta.example/activation",
        "",
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let mail = message_to(&receiver, 2, "pat@acme.example").await;
    let token2 = token_in(&mail, "/consent");
    assert_ne!(token2, token);
    let (status, _, _) = server.portal_form("/consent", &[("token", &token)]).await;
    assert_eq!(status, 400, "the first link died with the resend");

    let (status, _, page) = server.portal_form("/consent", &[("token", &token2)]).await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("Account activated"), "{page}");
    let v = wait_status(&server, "new@beta.example", "provisioned").await;
    assert_eq!(v["subscriber"]["email"], "pat@acme.example");
    // The old account is gone (its BroadWorks mapping removed, licenses revoked).
    let (code, old) = subscriber(&server, "old@acme.example").await;
    assert_eq!(code, 404, "partial deletion drops the user id: {old}");
}

/// The ProvisionSubscriber commands written for a subscriber (read-back).
fn provisions(v: &serde_json::Value) -> Vec<serde_json::Value> {
    v["commands"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|c| c["type"] == "ProvisionSubscriber")
        .map(|c| c["envelope"]["command"].clone())
        .collect()
}

#[tokio::test]
async fn the_first_user_of_a_new_organization_takes_an_address_in_use_at_once_as_its_admin() {
    let (_relay, _receiver, server) = started();
    add(
        &server,
        "trusted",
        "old@acme.example",
        "acme",
        Some("kim@acme.example"),
    )
    .await;
    wait_status(&server, "old@acme.example", "provisioned").await;
    // gamma has no organization yet: its first user, whose address another
    // account (acme's user) holds, is moved at once, no consent wait.
    add(
        &server,
        "trusted",
        "kim@gamma.example",
        "gamma",
        Some("kim@acme.example"),
    )
    .await;
    let v = wait_status(&server, "kim@gamma.example", "provisioned").await;
    assert_eq!(v["subscriber"]["email"], "kim@acme.example");
    let sent = provisions(&v);
    assert_eq!(sent.len(), 1, "{v}");
    assert_eq!(
        sent[0]["orgAdmin"], true,
        "the first user is the admin: {v}"
    );
    let (code, old) = subscriber(&server, "old@acme.example").await;
    assert_eq!(code, 404, "the old account moved (partial deletion): {old}");
    assert!(
        v["activation"].is_null(),
        "no consent asked of a first user: {v}"
    );
    // gamma's second user is not the admin.
    add(
        &server,
        "trusted",
        "lee@gamma.example",
        "gamma",
        Some("lee@gamma.example"),
    )
    .await;
    let v = wait_status(&server, "lee@gamma.example", "provisioned").await;
    assert_eq!(provisions(&v)[0]["orgAdmin"], false, "{v}");
}

/// The token of a subscriber's current activation link (read-back).
async fn link_token(server: &Server, user: &str) -> String {
    let v = status_of(server, user).await;
    let url = v["activation"]["activationUrl"]
        .as_str()
        .unwrap_or_default();
    url.split_once("token=")
        .map(|(_, t)| t.to_string())
        .unwrap_or_else(|| panic!("{user} has an activation link: {v}"))
}

/// Enters `address` on the portal and confirms the code mailed to it (the
/// `n`-th message); the page after the code.
async fn enter_and_confirm(
    server: &Server,
    receiver: &Receiver,
    token: &str,
    address: &str,
    n: usize,
) -> String {
    let (status, _, page) = server
        .portal_form("/activate/email", &[("token", token), ("email", address)])
        .await;
    assert_eq!(status, 200, "{page}");
    let code = code_in(&message_to(receiver, n, address).await);
    let (status, _, page) = server
        .portal_form("/activate/verify", &[("token", token), ("code", &code)])
        .await;
    assert_eq!(status, 200, "{page}");
    page
}

#[tokio::test]
async fn an_untrusted_user_proving_an_address_in_use_is_asked_to_consent_not_refused() {
    let (_relay, receiver, server) = started();
    // Another account holds kim@home.example.
    add(
        &server,
        "trusted",
        "old@acme.example",
        "acme",
        Some("kim@home.example"),
    )
    .await;
    wait_status(&server, "old@acme.example", "provisioned").await;
    // beta's first user settles its organization (and is its admin).
    add(&server, "untrusted", "one@beta.example", "beta", None).await;
    add(&server, "untrusted", "two@beta.example", "beta", None).await;
    let one = link_token(&server, "one@beta.example").await;
    let page = enter_and_confirm(&server, &receiver, &one, "one@home.example", 1).await;
    assert!(page.contains("Account activated"), "{page}");
    wait_status(&server, "one@beta.example", "provisioned").await;

    // two proves kim@home.example: not refused (no 9001), the move waits
    // for consent, asked at that address.
    let two = link_token(&server, "two@beta.example").await;
    let page = enter_and_confirm(&server, &receiver, &two, "kim@home.example", 2).await;
    assert!(page.contains("Confirm the move"), "{page}");
    assert!(!page.contains("9001"), "{page}");
    let v = status_of(&server, "two@beta.example").await;
    assert_eq!(v["subscriber"]["status"], "pending_user_migration", "{v}");
    let mail = message_to(&receiver, 3, "kim@home.example").await;
    assert_eq!(
        header(&mail, "X-Bwgate-Kind").as_deref(),
        Some("consent_migration")
    );
    let consent = token_in(&mail, "/consent");
    let (status, _, page) = server.portal_form("/consent", &[("token", &consent)]).await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("Account activated"), "{page}");
    let v = wait_status(&server, "two@beta.example", "provisioned").await;
    assert_eq!(v["subscriber"]["email"], "kim@home.example");
    let (code, old) = subscriber(&server, "old@acme.example").await;
    assert_eq!(code, 404, "the old account moved: {old}");
}

async fn put_org(server: &Server, id: &str, users: &[&str], suppress: bool) {
    let body = serde_json::json!({
        "id": id,
        "name": format!("Existing {id}"),
        "userCount": 5,
        "users": users.iter().map(|u| serde_json::json!({"email": u})).collect::<Vec<_>>(),
        "emailSuppression": suppress,
    });
    let (status, text) = server
        .admin_send(
            "PUT",
            &format!("/admin/v1/organizations/{id}"),
            Some("application/json"),
            &body.to_string(),
        )
        .await;
    assert_eq!(status, 200, "{text}");
}

async fn org_report(server: &Server, id: &str) -> Value {
    let (status, body) = server
        .admin_get(&format!("/admin/v1/organizations/{id}"))
        .await;
    assert_eq!(status, 200, "{body}");
    serde_json::from_str(&body).unwrap_or(Value::Null)
}

#[tokio::test]
async fn existing_organizations_are_decided_on_verified_addresses_and_their_users_consent_to_move()
{
    let (_relay, receiver, server) = started();
    put_org(
        &server,
        "small",
        &["boss@small.example", "pat@small.example"],
        false,
    )
    .await;

    // Untrusted: the address BroadWorks sent is the small organization's,
    // but unverified it attaches nothing.
    add(
        &server,
        "untrusted",
        "u1@gamma.example",
        "gamma",
        Some("boss@small.example"),
    )
    .await;
    assert!(
        org_report(&server, "small").await["link"].is_null(),
        "nothing attached before the address is verified"
    );
    let token = token_in(
        &message_to(&receiver, 1, "boss@small.example").await,
        "/activate",
    );
    let page = enter_and_confirm(&server, &receiver, &token, "boss@small.example", 2).await;
    assert!(page.contains("Account activated"), "{page}");
    let v = wait_status(&server, "u1@gamma.example", "provisioned").await;
    assert_eq!(
        v["subscriber"]["orgId"], "small",
        "attached once verified: {v}"
    );
    let report = org_report(&server, "small").await;
    assert!(!report["link"].is_null(), "{report}");

    // Trusted: a later user of an enterprise that has its organization,
    // with the address of an existing organization's user (not a
    // subscriber here), waits for consent instead of being provisioned in
    // a second organization; the consent takes the account out of it.
    add(
        &server,
        "trusted",
        "first@delta.example",
        "delta",
        Some("first@delta.example"),
    )
    .await;
    add(
        &server,
        "trusted",
        "pat@delta.example",
        "delta",
        Some("pat@small.example"),
    )
    .await;
    let v = status_of(&server, "pat@delta.example").await;
    assert_eq!(v["subscriber"]["status"], "pending_user_migration", "{v}");
    let mail = message_to(&receiver, 3, "pat@small.example").await;
    let consent = token_in(&mail, "/consent");
    let (status, _, page) = server.portal_form("/consent", &[("token", &consent)]).await;
    assert_eq!(status, 200, "{page}");
    let v = wait_status(&server, "pat@delta.example", "provisioned").await;
    let kinds: Vec<&str> = v["commands"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|c| c["type"].as_str())
        .collect();
    assert_eq!(kinds, ["MoveAccount", "ProvisionSubscriber"], "{v}");
    let users: Vec<String> = org_report(&server, "small").await["organization"]["users"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|u| u["email"].as_str().map(str::to_string))
        .collect();
    assert_eq!(users, ["boss@small.example"], "pat left small");
}

#[tokio::test]
async fn a_new_email_for_an_active_untrusted_user_is_confirmed_by_a_code_before_it_is_used() {
    let (_relay, receiver, server) = started();
    add(&server, "untrusted", "ann@acme.example", "acme", None).await;
    let token = link_token(&server, "ann@acme.example").await;
    enter_and_confirm(&server, &receiver, &token, "ann@home.example", 1).await;
    wait_status(&server, "ann@acme.example", "provisioned").await;

    let modify =
        "<ModifyUser><userId>ann@acme.example</userId><serviceProviderId>acme</serviceProviderId>\
<groupId>grp1</groupId><emailAddress>ann@new.example</emailAddress></ModifyUser>"
            .to_string();
    let resp = post(
        &server,
        "/uc-one/v1/provisioning/untrusted",
        Some(AUTH),
        document(None, &[modify]),
        "application/xml",
    )
    .await;
    assert_eq!(resp.status, 200, "{}", resp.text());
    let v = status_of(&server, "ann@acme.example").await;
    assert_eq!(
        v["subscriber"]["email"], "ann@home.example",
        "not before the code: {v}"
    );
    assert_eq!(
        v["activation"]["activation"]["purpose"], "email_change",
        "{v}"
    );

    // The code goes to the new address, with a link that fills it in.
    let mail = message_to(&receiver, 2, "ann@new.example").await;
    let code = code_in(&mail);
    let token = token_in(&mail, "/activate/verify");
    let (status, page) = server.portal_get(&format!("/activate?token={token}")).await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("Confirm your new email address"), "{page}");
    let (status, _, page) = server
        .portal_form("/activate/verify", &[("token", &token), ("code", &code)])
        .await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("Email address changed"), "{page}");
    let v = wait_status(&server, "ann@acme.example", "provisioned").await;
    assert_eq!(v["subscriber"]["email"], "ann@new.example");
    let kinds: Vec<&str> = v["commands"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|c| c["type"].as_str())
        .collect();
    assert_eq!(kinds.last(), Some(&"UpdateSubscriber"), "{v}");
}

/// The emails of `kind` queued for a subscriber (operator read-back).
async fn emails_of(server: &Server, subscriber_id: &str, kind: &str) -> Vec<Value> {
    let (status, body) = server
        .admin_get(&format!(
            "/admin/v1/emails?subscriber={subscriber_id}&kind={kind}"
        ))
        .await;
    assert_eq!(status, 200, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
    v["emails"].as_array().cloned().unwrap_or_default()
}

#[tokio::test]
async fn an_organization_with_email_suppression_gets_no_activation_emails() {
    let (_relay, receiver, server) = started();
    put_org(&server, "quiet", &["boss@quiet.example"], true).await;
    add(
        &server,
        "trusted",
        "boss@q.example",
        "qent",
        Some("boss@quiet.example"),
    )
    .await;
    let v = wait_status(&server, "boss@q.example", "provisioned").await;
    assert_eq!(v["subscriber"]["orgId"], "quiet", "{v}");

    // A new untrusted user of the quiet organization: no activation email,
    // the link is still there for an admin to hand over.
    add(
        &server,
        "untrusted",
        "u1@q.example",
        "qent",
        Some("u1@home.example"),
    )
    .await;
    let quiet = status_of(&server, "u1@q.example").await;
    let quiet_id = quiet["subscriber"]["id"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(quiet["activation"]["activationUrl"].is_string(), "{quiet}");
    // The same user elsewhere gets one (and it is the only mail sent).
    add(
        &server,
        "untrusted",
        "u2@l.example",
        "lent",
        Some("u2@home.example"),
    )
    .await;
    let mail = message_to(&receiver, 1, "u2@home.example").await;
    assert_eq!(
        header(&mail, "X-Bwgate-Kind").as_deref(),
        Some("activation_link")
    );
    assert!(emails_of(&server, &quiet_id, "activation_link")
        .await
        .is_empty());
    // An admin's retry does not mail it either, but returns the link.
    let (status, body) =
        admin_post(&server, "/admin/v1/subscribers/u1@q.example/activation", "").await;
    assert_eq!(status, 200, "{body}");
    let answer: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
    assert_eq!(answer["emailQueued"], false, "{answer}");
    assert!(answer["activationUrl"].is_string(), "{answer}");
    assert!(emails_of(&server, &quiet_id, "activation_link")
        .await
        .is_empty());
}

#[tokio::test]
async fn the_admin_first_holds_the_others_until_it_is_deleted_then_the_next_user_is_admin() {
    let (_relay, receiver, server) = started();
    // "Provision admin first" (the default): ann, given the service first,
    // is the admin-to-be; bob cannot finish before her.
    add(&server, "untrusted", "ann@e.example", "ent", None).await;
    add(&server, "untrusted", "bob@e.example", "ent", None).await;
    let bob = link_token(&server, "bob@e.example").await;
    let (status, _, page) = server
        .portal_form(
            "/activate/email",
            &[("token", &bob), ("email", "bob@home.example")],
        )
        .await;
    assert_eq!(status, 200, "{page}");
    let code = code_in(&message_to(&receiver, 1, "bob@home.example").await);
    let (status, _, page) = server
        .portal_form("/activate/verify", &[("token", &bob), ("code", &code)])
        .await;
    assert_eq!(status, 409, "{page}");
    assert!(page.contains("error 9028"), "{page}");

    // ann is deleted before she activated: she holds nobody any more.
    let delete = "<DeleteUser><userId>ann@e.example</userId></DeleteUser>".to_string();
    let resp = post(
        &server,
        "/uc-one/v1/provisioning/untrusted",
        Some(AUTH),
        document(None, &[delete]),
        "application/xml",
    )
    .await;
    assert_eq!(resp.status, 200, "{}", resp.text());
    let (status, _, page) = server
        .portal_form("/activate/verify", &[("token", &bob), ("code", &code)])
        .await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("Account activated"), "{page}");
    let v = wait_status(&server, "bob@e.example", "provisioned").await;
    let provision = v["commands"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|c| c["type"] == "ProvisionSubscriber")
        .cloned()
        .unwrap_or_default();
    assert_eq!(
        provision["envelope"]["command"]["orgAdmin"], true,
        "bob is the admin now, and the core is told: {v}"
    );
}
