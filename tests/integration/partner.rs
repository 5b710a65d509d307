//! Subscriber status for partner admins end to end: the real binary with
//! two partners (each with an admin token hash in the config), subscribers
//! added over the flow-through face, the JSON API (`/partner/v1/…`, Bearer
//! token) and the status page (`/partner/status`, session cookie and CSRF
//! tokens) over real HTTPS on the portal listener.

use std::time::Duration;

use base64::Engine;
use bwgate::client::ClientResponse;
use serde_json::Value;

use crate::flowthrough::{add_user, document, post, subscriber, wait_status};
use crate::harness::{eventually, Server};

pub(crate) const SP_TOKEN: &str = "sp-admin-token-0123456789";
pub(crate) const OTHER_TOKEN: &str = "other-admin-token-0123456789";

pub(crate) fn config() -> String {
    let hash = |t: &str| bwgate::domain::credentials::hash_password(t).expect("hash");
    format!(
        "[[partners]]\nid = \"sp\"\nname = \"SP <One>\"\nadmin_token_hash = \"{}\"\n\n\
[[partners]]\nid = \"other\"\nname = \"Other SP\"\nadmin_token_hash = \"{}\"\n\n\
[[partners]]\nid = \"none\"\nname = \"No admin\"\n\n\
[[templates]]\nprovisioning_id = \"sp-trusted\"\npartner = \"sp\"\nname = \"Trusted & Co\"\n\
provisioning_username = \"prov\"\nprovisioning_password = \"pw-1\"\n\n\
[[templates]]\nprovisioning_id = \"sp-untrusted\"\npartner = \"sp\"\nname = \"Untrusted\"\n\
provisioning_username = \"prov\"\nprovisioning_password = \"pw-1\"\n\
[templates.settings]\ntrusted_emails = false\n\n\
[[templates]]\nprovisioning_id = \"other-t\"\npartner = \"other\"\nname = \"Other\"\n\
provisioning_username = \"prov\"\nprovisioning_password = \"pw-1\"\n",
        hash(SP_TOKEN),
        hash(OTHER_TOKEN)
    )
}

pub(crate) fn basic() -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode("prov:pw-1")
    )
}

async fn add(server: &Server, template: &str, ops: &[String]) {
    let resp = post(
        server,
        &format!("/uc-one/v1/provisioning/{template}"),
        Some(&basic()),
        document(None, ops),
        "application/xml",
    )
    .await;
    assert_eq!(resp.status, 200, "{}", resp.text());
    assert!(!resp.text().contains("errorCode"), "{}", resp.text());
}

/// An AddUser with chosen (XML-escaped) names.
fn add_named(user: &str, first: &str, last: &str) -> String {
    format!(
        "<AddUser><userId>{user}</userId><serviceProviderId>acme</serviceProviderId><groupId>g</groupId>\
<firstName>{first}</firstName><lastName>{last}</lastName><emailAddress>{user}</emailAddress>\
<phoneNumber>+1-240-555-0100</phoneNumber></AddUser>"
    )
}

/// A request on the portal listener with optional Bearer token, cookie and
/// body.
pub(crate) async fn portal(
    server: &Server,
    method: &str,
    path: &str,
    token: Option<&str>,
    cookie: Option<&str>,
    body: Option<(&str, &str)>,
) -> ClientResponse {
    let (content_type, payload) = body.unwrap_or(("", ""));
    let mut req = bwgate::client::request(
        method,
        path,
        payload.to_string().into(),
        (!content_type.is_empty()).then_some(content_type),
    );
    if let Some(t) = token {
        req.headers_mut()
            .insert("authorization", format!("Bearer {t}").parse().unwrap());
    }
    if let Some(c) = cookie {
        req.headers_mut().insert("cookie", c.parse().unwrap());
    }
    server
        .portal_client()
        .request(req)
        .await
        .expect("portal request")
}

pub(crate) async fn api(
    server: &Server,
    method: &str,
    path: &str,
    token: &str,
    json: Option<&str>,
) -> (u16, Value) {
    let r = portal(
        server,
        method,
        path,
        Some(token),
        None,
        json.map(|j| ("application/json", j)),
    )
    .await;
    let v = serde_json::from_slice(&r.body).unwrap_or(Value::Null);
    (r.status.as_u16(), v)
}

pub(crate) fn code(v: &Value) -> u64 {
    v["errors"][0]["errorCode"].as_u64().unwrap_or(0)
}

fn user_ids(v: &Value) -> Vec<String> {
    let mut out: Vec<String> = v["items"]
        .as_array()
        .unwrap_or(&Vec::new())
        .iter()
        .map(|s| s["userId"].as_str().unwrap_or("(removed)").to_string())
        .collect();
    out.sort();
    out
}

async fn id_of(server: &Server, user: &str) -> String {
    let (status, v) = subscriber(server, user).await;
    assert_eq!(status, 200, "{v}");
    v["subscriber"]["id"].as_str().unwrap().to_string()
}

/// Puts a provisioned subscriber in `error` as a rejected delivery would,
/// with an error text full of CSV and HTML metacharacters.
fn fail(server: &Server, user: &str) {
    let conn = rusqlite::Connection::open(server.path("data/bwgate.db")).unwrap();
    conn.busy_timeout(Duration::from_secs(5)).unwrap();
    let errors = serde_json::json!([{
        "errorCode": 9008,
        "description": "=cmd|' /C calc'!A0 <b>number</b>, \"taken\"",
    }])
    .to_string();
    let n = conn
        .execute(
            "UPDATE subscribers SET status = 'error', errors_json = ?1 WHERE user_id = ?2",
            rusqlite::params![errors, user],
        )
        .unwrap();
    assert_eq!(n, 1);
}

/// sp: `ann` provisioned, `bob` (names to escape) provisioned, `cy`
/// failed, `dee` waiting for its email (untrusted); other: `oz`.
pub(crate) async fn population(server: &Server) {
    add(
        server,
        "sp-trusted",
        &[
            add_user("ann@acme.example", "acme", Some("ann@acme.example")),
            add_named(
                "bob@acme.example",
                "=HYPERLINK(\"http://x\")",
                "O\"Neil, &lt;Jr&gt;",
            ),
            add_user("cy@acme.example", "acme", Some("cy@acme.example")),
        ],
    )
    .await;
    add(
        server,
        "sp-untrusted",
        &[add_user("dee@acme.example", "acme", None)],
    )
    .await;
    add(
        server,
        "other-t",
        &[add_user("oz@other.example", "oz", Some("oz@other.example"))],
    )
    .await;
    for u in [
        "ann@acme.example",
        "bob@acme.example",
        "cy@acme.example",
        "oz@other.example",
    ] {
        wait_status(server, u, "provisioned").await;
    }
    fail(server, "cy@acme.example");
}

#[tokio::test]
async fn partner_api_needs_the_partners_own_admin_token() {
    let server = Server::start_with(Some(&config()), &[]);
    population(&server).await;
    let list = "/partner/v1/subscribers";

    // No token, a wrong one, another scheme: 401 with a Bearer challenge.
    let r = portal(&server, "GET", list, None, None, None).await;
    assert_eq!(r.status, 401, "{}", r.text());
    assert_eq!(
        r.header("www-authenticate"),
        Some("Bearer realm=\"bwgate partner admin\"")
    );
    let v: Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(code(&v), 9004, "{v}");
    assert!(v["trackingId"].as_str().is_some());
    assert_eq!(r.header("content-type"), Some("application/json"));
    let (status, v) = api(&server, "GET", list, "not-the-token", None).await;
    assert_eq!((status, code(&v)), (401, 9004), "{v}");
    let mut req = bwgate::client::get(list);
    req.headers_mut()
        .insert("authorization", basic().parse().unwrap());
    let r = server.portal_client().request(req).await.unwrap();
    assert_eq!(r.status, 401);

    // Each partner sees only its own subscribers.
    let (status, v) = api(&server, "GET", list, SP_TOKEN, None).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(
        user_ids(&v),
        [
            "ann@acme.example",
            "bob@acme.example",
            "cy@acme.example",
            "dee@acme.example"
        ]
    );
    let (status, v) = api(&server, "GET", list, OTHER_TOKEN, None).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(user_ids(&v), ["oz@other.example"]);

    // Another partner's subscriber does not exist for sp: every action
    // answers 404 and changes nothing.
    let oz = id_of(&server, "oz@other.example").await;
    let before = subscriber(&server, "oz@other.example").await.1;
    let one = format!("{list}/{oz}");
    for (method, path, body) in [
        ("GET", one.clone(), None),
        ("DELETE", one.clone(), None),
        (
            "PUT",
            format!("{one}/package"),
            Some(r#"{"package":"premium"}"#),
        ),
        (
            "POST",
            format!("{one}/activation"),
            Some(r#"{"email":"x@y.example"}"#),
        ),
    ] {
        let (status, v) = api(&server, method, &path, SP_TOKEN, body).await;
        assert_eq!((status, code(&v)), (404, 9015), "{method} {path}: {v}");
    }
    assert_eq!(subscriber(&server, "oz@other.example").await.1, before);
    let (status, v) = api(&server, "GET", &one, OTHER_TOKEN, None).await;
    assert_eq!(
        (status, v["userId"].as_str()),
        (200, Some("oz@other.example"))
    );
    // Its template is not sp's either.
    let (status, v) = api(
        &server,
        "GET",
        &format!("{list}?provisioningId=other-t"),
        SP_TOKEN,
        None,
    )
    .await;
    assert_eq!((status, code(&v)), (404, 9003), "{v}");
    // Unknown routes and methods answer JSON too.
    let (status, v) = api(&server, "GET", "/partner/v1/nothing", SP_TOKEN, None).await;
    assert_eq!((status, code(&v)), (404, 9015), "{v}");
    let (status, v) = api(&server, "POST", list, SP_TOKEN, Some("{}")).await;
    assert_eq!((status, code(&v)), (405, 9016), "{v}");
}

#[tokio::test]
async fn partner_api_filters_pages_and_exports_csv() {
    let server = Server::start_with(Some(&config()), &[]);
    population(&server).await;
    let list = "/partner/v1/subscribers";
    let get = |q: &'static str| {
        let server = &server;
        async move {
            let (status, v) = api(server, "GET", &format!("{list}{q}"), SP_TOKEN, None).await;
            assert_eq!(status, 200, "{q}: {v}");
            v
        }
    };

    // The Subscriber object, Cisco's names.
    let v = get("?status=error").await;
    assert_eq!(user_ids(&v), ["cy@acme.example"]);
    let cy = &v["items"][0];
    assert_eq!(cy["status"], "error");
    assert_eq!(cy["package"], "basic");
    assert_eq!(cy["spEnterpriseId"], "acme");
    assert_eq!(cy["provisioningId"], "sp-trusted");
    assert_eq!(cy["primaryPhoneNumber"], "+12405550100");
    assert_eq!(cy["selfActivated"], false);
    assert_eq!(cy["errors"][0]["errorCode"], 9008);
    assert_eq!(
        cy["errors"][0]["description"],
        "=cmd|' /C calc'!A0 <b>number</b>, \"taken\""
    );
    for field in [
        "id",
        "firstName",
        "lastName",
        "email",
        "created",
        "lastStatusChange",
    ] {
        assert!(cy[field].is_string(), "{field}: {cy}");
    }
    assert!(cy["created"].as_str().unwrap().ends_with('Z'));

    assert_eq!(
        user_ids(&get("?excludeProvisioned=true").await),
        ["cy@acme.example", "dee@acme.example"]
    );
    assert_eq!(
        user_ids(&get("?status=provisioned,pending_email_input").await),
        ["ann@acme.example", "bob@acme.example", "dee@acme.example"]
    );
    assert_eq!(
        user_ids(&get("?status=provisioned&excludeProvisioned=true").await),
        Vec::<String>::new()
    );
    assert_eq!(
        user_ids(&get("?provisioningId=sp-untrusted").await),
        ["dee@acme.example"]
    );
    for (q, want) in [
        ("?status=done", 9017),
        ("?excludeProvisioned=maybe", 9017),
        ("?max=0", 9017),
        ("?max=abc", 9017),
    ] {
        let (status, v) = api(&server, "GET", &format!("{list}{q}"), SP_TOKEN, None).await;
        assert_eq!((status, code(&v)), (400, want), "{q}: {v}");
    }

    // Keyset pages of two, by nextAfter and by the Link header.
    let all: Vec<String> = get("").await["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(all.len(), 4);
    let mut seen = Vec::new();
    let mut path = format!("{list}?max=2");
    loop {
        let r = portal(&server, "GET", &path, Some(SP_TOKEN), None, None).await;
        assert_eq!(r.status, 200);
        let v: Value = serde_json::from_slice(&r.body).unwrap();
        let items = v["items"].as_array().unwrap();
        assert!(items.len() <= 2);
        seen.extend(items.iter().map(|s| s["id"].as_str().unwrap().to_string()));
        match r.header("link") {
            Some(link) => {
                let next = v["nextAfter"].as_str().expect("nextAfter with a Link");
                assert_eq!(Some(next), items.last().and_then(|s| s["id"].as_str()));
                path = link
                    .trim_start_matches('<')
                    .split_once('>')
                    .unwrap()
                    .0
                    .to_string();
                assert!(path.contains(&format!("after={next}")), "{path}");
            }
            None => {
                assert!(v.get("nextAfter").is_none(), "{v}");
                break;
            }
        }
    }
    assert_eq!(seen, all);

    // CSV: the same filters; parsed back, cells are intact but formula-safe.
    let r = portal(
        &server,
        "GET",
        "/partner/v1/subscribers.csv?status=provisioned,error",
        Some(SP_TOKEN),
        None,
        None,
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r.header("content-type").unwrap().starts_with("text/csv"));
    assert!(r
        .header("content-disposition")
        .unwrap()
        .starts_with("attachment"));
    let text = r.text();
    assert!(text.ends_with("\r\n"), "CRLF line ends");
    let rows = parse_csv(&text);
    assert_eq!(rows[0][0], "id");
    assert_eq!(rows[0].len(), 16);
    assert_eq!(rows.len(), 1 + 3, "{text}");
    let col = |name: &str| rows[0].iter().position(|h| h == name).unwrap();
    let row = |user: &str| {
        rows.iter()
            .find(|r| r[col("userId")] == user)
            .unwrap_or_else(|| panic!("{user} in {text}"))
            .clone()
    };
    let bob = row("bob@acme.example");
    assert_eq!(bob[col("firstName")], "'=HYPERLINK(\"http://x\")");
    assert_eq!(bob[col("lastName")], "O\"Neil, <Jr>");
    assert_eq!(bob[col("primaryPhoneNumber")], "'+12405550100");
    assert_eq!(bob[col("status")], "provisioned");
    let cy = row("cy@acme.example");
    assert_eq!(
        cy[col("errors")],
        "9008: =cmd|' /C calc'!A0 <b>number</b>, \"taken\""
    );
    assert!(rows.iter().all(|r| r.len() == 16));
    for r in &rows[1..] {
        for cell in r {
            assert!(
                !cell.starts_with(['=', '+', '-', '@']),
                "{cell} could run as a formula"
            );
        }
    }
    let r = portal(
        &server,
        "GET",
        "/partner/v1/subscribers.csv?excludeProvisioned=true",
        Some(SP_TOKEN),
        None,
        None,
    )
    .await;
    let rows = parse_csv(&r.text());
    let users: Vec<&str> = rows[1..].iter().map(|r| r[1].as_str()).collect();
    assert_eq!(rows.len(), 3, "{users:?}");
    assert!(!users.contains(&"ann@acme.example"));
    let r = portal(
        &server,
        "GET",
        "/partner/v1/subscribers.csv",
        Some("wrong"),
        None,
        None,
    )
    .await;
    assert_eq!(r.status, 401);
}

/// RFC 4180: CRLF records, quoted fields with doubled quotes.
fn parse_csv(text: &str) -> Vec<Vec<String>> {
    let mut rows = Vec::new();
    let mut row = Vec::new();
    let mut cell = String::new();
    let mut quoted = false;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                chars.next();
                cell.push('"');
            }
            (true, '"') => quoted = false,
            (true, c) => cell.push(c),
            (false, '"') if cell.is_empty() => quoted = true,
            (false, ',') => row.push(std::mem::take(&mut cell)),
            (false, '\r') if chars.peek() == Some(&'\n') => {
                chars.next();
                row.push(std::mem::take(&mut cell));
                rows.push(std::mem::take(&mut row));
            }
            (false, c) => cell.push(c),
        }
    }
    assert!(cell.is_empty() && row.is_empty(), "unterminated record");
    rows
}

fn command_types(v: &Value) -> Vec<String> {
    v["commands"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["type"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn partner_api_actions_go_through_the_outbox() {
    let server = Server::start_with(Some(&config()), &[]);
    population(&server).await;
    let base = "/partner/v1/subscribers";

    // Change package: provisioned → updating, ChangePackage delivered,
    // licenses follow, then provisioned again.
    let ann = id_of(&server, "ann@acme.example").await;
    let before = subscriber(&server, "ann@acme.example").await.1;
    for (body, want) in [
        (r#"{"package":"gold"}"#, 9017),
        (r#"{}"#, 1001),
        ("", 1001),
        (r#"{"package":"premium","x":1}"#, 9017),
        ("not json", 9017),
    ] {
        let (status, v) = api(
            &server,
            "PUT",
            &format!("{base}/{ann}/package"),
            SP_TOKEN,
            Some(body),
        )
        .await;
        assert_eq!((status, code(&v)), (400, want), "{body}: {v}");
    }
    assert_eq!(
        subscriber(&server, "ann@acme.example").await.1,
        before,
        "refused: nothing changed"
    );
    let (status, v) = api(
        &server,
        "PUT",
        &format!("{base}/{ann}/package"),
        SP_TOKEN,
        Some(r#"{"package":"premium"}"#),
    )
    .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(
        (v["status"].as_str(), v["package"].as_str()),
        (Some("updating"), Some("premium"))
    );
    let after = wait_status(&server, "ann@acme.example", "provisioned").await;
    assert_eq!(after["subscriber"]["package"], "premium");
    assert!(command_types(&after).contains(&"ChangePackage".to_string()));
    let licenses = after["licenses"].as_array().unwrap().len();
    assert!(
        licenses > before["licenses"].as_array().unwrap().len(),
        "premium grants more: {after}"
    );

    // Retry activation of a waiting user, with an email: a new link is
    // mailed there.
    let dee = id_of(&server, "dee@acme.example").await;
    let (status, v) = api(
        &server,
        "POST",
        &format!("{base}/{dee}/activation"),
        SP_TOKEN,
        Some(r#"{"email":"not an email"}"#),
    )
    .await;
    assert_eq!((status, code(&v)), (400, 9001), "{v}");
    let (status, v) = api(
        &server,
        "POST",
        &format!("{base}/{dee}/activation"),
        SP_TOKEN,
        Some(r#"{"email":"Dee@Home.example"}"#),
    )
    .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["subscriberId"], dee.as_str());
    assert_eq!(v["emailQueued"], true);
    assert!(v["activationUrl"]
        .as_str()
        .unwrap()
        .contains("/activate?token="));
    let (status, body) = server
        .admin_get(&format!(
            "/admin/v1/emails?subscriber={dee}&kind=activation_link"
        ))
        .await;
    assert_eq!(status, 200, "{body}");
    let emails: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        emails["emails"][0]["to"],
        serde_json::json!(["Dee@home.example"])
    );
    // A provisioned subscriber waits for nobody: 409, nothing changes.
    let (status, v) = api(
        &server,
        "POST",
        &format!("{base}/{ann}/activation"),
        SP_TOKEN,
        None,
    )
    .await;
    assert_eq!((status, code(&v)), (409, 9029), "{v}");
    // A failed subscriber retries: with trusted emails it is provisioned
    // again, with the address given (no link needed).
    let cy = id_of(&server, "cy@acme.example").await;
    let (status, v) = api(
        &server,
        "POST",
        &format!("{base}/{cy}/activation"),
        SP_TOKEN,
        Some(r#"{"email":"cy.new@acme.example"}"#),
    )
    .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["status"], "provisioning", "{v}");
    assert!(v["activationUrl"].is_null(), "{v}");
    let after = wait_status(&server, "cy@acme.example", "provisioned").await;
    assert_eq!(after["subscriber"]["email"], "cy.new@acme.example");
    assert_eq!(after["subscriber"]["errors"], serde_json::json!([]));

    // Delete: partial deletion, RemoveSubscriber revokes the licenses.
    let bob = id_of(&server, "bob@acme.example").await;
    let (status, v) = api(&server, "DELETE", &format!("{base}/{bob}"), SP_TOKEN, None).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["status"], "removed");
    assert_eq!(v["userId"], Value::Null);
    assert_eq!(v["email"], "bob@acme.example");
    let r = eventually(
        "RemoveSubscriber delivered",
        Duration::from_secs(15),
        || async {
            let (_, r) = subscriber(&server, &bob).await;
            let delivered = r["commands"]
                .as_array()
                .unwrap()
                .iter()
                .any(|c| c["type"] == "RemoveSubscriber" && c["state"] == "delivered");
            if delivered {
                Ok(r)
            } else {
                Err(r)
            }
        },
    )
    .await;
    assert_eq!(r["licenses"], serde_json::json!([]), "{r}");
    let (status, v) = api(&server, "DELETE", &format!("{base}/{bob}"), SP_TOKEN, None).await;
    assert_eq!((status, code(&v)), (404, 9015), "{v}");
    let (status, v) = api(&server, "GET", base, SP_TOKEN, None).await;
    assert_eq!(status, 200);
    assert!(!user_ids(&v).contains(&"bob@acme.example".to_string()));
    let (_, v) = api(
        &server,
        "GET",
        &format!("{base}?status=removed"),
        SP_TOKEN,
        None,
    )
    .await;
    assert_eq!(user_ids(&v), ["(removed)"]);
    // The same BroadWorks user id can be provisioned again.
    add(
        &server,
        "sp-trusted",
        &[add_user(
            "bob@acme.example",
            "acme",
            Some("bob2@acme.example"),
        )],
    )
    .await;
}

/// The value of `name="…" value="…"` in a page (HTML-unescaped quotes).
fn field(page: &str, name: &str) -> String {
    let needle = format!("name=\"{name}\" value=\"");
    let start = page
        .find(&needle)
        .unwrap_or_else(|| panic!("no {name} in {page}"))
        + needle.len();
    page[start..]
        .split('"')
        .next()
        .unwrap()
        .replace("&amp;", "&")
}

#[tokio::test]
async fn partner_status_page_signs_in_filters_and_acts_with_csrf() {
    let server = Server::start_with(Some(&config()), &[]);
    population(&server).await;

    // Signed out: the sign-in form.
    let r = portal(&server, "GET", "/partner/status", None, None, None).await;
    assert_eq!(r.status, 200);
    let page = r.text();
    assert!(page.contains("action=\"/partner/session\""), "{page}");
    assert!(page.contains("<label for=\"token\">"));
    let csp = r.header("content-security-policy").unwrap().to_string();
    assert!(
        csp.contains("script-src 'sha256-") && csp.contains("default-src 'none'"),
        "{csp}"
    );

    let form = |fields: &[(&str, &str)]| {
        form_urlencoded::Serializer::new(String::new())
            .extend_pairs(fields)
            .finish()
    };
    let post_form = |path: &'static str, cookie: Option<String>, body: String| {
        let server = &server;
        async move {
            portal(
                server,
                "POST",
                path,
                None,
                cookie.as_deref(),
                Some(("application/x-www-form-urlencoded", &body)),
            )
            .await
        }
    };
    let r = post_form("/partner/session", None, form(&[("token", "wrong")])).await;
    assert_eq!(r.status, 401);
    assert!(r.text().contains("9004") && r.text().contains("role=\"alert\""));
    assert!(r.header("set-cookie").is_none());

    // Signing in sets the session cookie.
    let r = post_form("/partner/session", None, form(&[("token", SP_TOKEN)])).await;
    assert_eq!(r.status, 303, "{}", r.text());
    assert_eq!(r.header("location"), Some("/partner/status"));
    let set = r.header("set-cookie").unwrap().to_string();
    for attr in [
        "HttpOnly",
        "Secure",
        "SameSite=Strict",
        "Path=/",
        "Max-Age=28800",
    ] {
        assert!(set.contains(attr), "{attr} in {set}");
    }
    assert!(set.starts_with("__Host-bwgate-partner="), "{set}");
    let cookie = set.split(';').next().unwrap().to_string();

    let page_of = |path: String| {
        let (server, cookie) = (&server, cookie.clone());
        async move {
            let r = portal(server, "GET", &path, None, Some(&cookie), None).await;
            assert_eq!(r.status, 200, "{path}: {}", r.text());
            r.text()
        }
    };
    let page = page_of("/partner/status".into()).await;
    assert!(page.contains("SP &lt;One&gt;"), "{page}");
    for user in [
        "ann@acme.example",
        "bob@acme.example",
        "cy@acme.example",
        "dee@acme.example",
    ] {
        assert!(page.contains(user), "{user}");
    }
    assert!(!page.contains("oz@other.example"));
    // Escaped names and error text; the error text in a read-only field
    // with a copy button.
    assert!(
        page.contains("=HYPERLINK(&quot;http://x&quot;) O&quot;Neil, &lt;Jr&gt;"),
        "{page}"
    );
    assert!(!page.contains("<b>number</b>"));
    assert!(page.contains(
        "readonly rows=\"2\" aria-label=\"Error text of cy@acme.example\">9008: =cmd|&#39; /C calc&#39;!A0 &lt;b&gt;number&lt;/b&gt;, &quot;taken&quot;</textarea>"
    ), "{page}");
    assert!(page.contains("data-copy=\"err-"));
    assert!(page.contains("href=\"/partner/status.csv\""));
    let csrf = field(&page, "csrf");

    // Filters are GET parameters; the CSV link keeps them.
    let page =
        page_of("/partner/status?excludeProvisioned=true&status=&provisioningId=".into()).await;
    assert!(!page.contains(">ann@acme.example<"), "{page}");
    assert!(page.contains(">cy@acme.example<") && page.contains(">dee@acme.example<"));
    assert!(page.contains("href=\"/partner/status.csv?excludeProvisioned=true\""));
    assert!(page.contains("value=\"true\" checked"));
    let page = page_of("/partner/status?provisioningId=sp-untrusted".into()).await;
    assert!(page.contains(">dee@acme.example<") && !page.contains(">cy@acme.example<"));
    assert!(page.contains("Retry activation"));
    let r = portal(
        &server,
        "GET",
        "/partner/status.csv?excludeProvisioned=true",
        None,
        Some(&cookie),
        None,
    )
    .await;
    assert_eq!(r.status, 200);
    assert_eq!(parse_csv(&r.text()).len(), 3, "{}", r.text());
    let r = portal(&server, "GET", "/partner/status.csv", None, None, None).await;
    assert_eq!(r.status, 401, "the export needs the session");

    // An action without the CSRF token (or with another) is refused and
    // changes nothing.
    let ann = id_of(&server, "ann@acme.example").await;
    let before = subscriber(&server, "ann@acme.example").await.1;
    for bad in ["", "forged"] {
        let r = post_form(
            "/partner/status/package",
            Some(cookie.clone()),
            form(&[("csrf", bad), ("id", &ann), ("package", "premium")]),
        )
        .await;
        assert_eq!(r.status, 403, "{}", r.text());
        assert!(r.text().contains("error 9031"), "{}", r.text());
    }
    // Without the session: 401, whatever the token.
    let r = post_form(
        "/partner/status/package",
        None,
        form(&[("csrf", &csrf), ("id", &ann), ("package", "premium")]),
    )
    .await;
    assert_eq!(r.status, 401);
    assert_eq!(subscriber(&server, "ann@acme.example").await.1, before);

    // With it: done, back to the filtered table with a notice.
    let r = post_form(
        "/partner/status/package",
        Some(cookie.clone()),
        form(&[
            ("csrf", &csrf),
            ("id", &ann),
            ("package", "standard"),
            ("back", "excludeProvisioned=true"),
        ]),
    )
    .await;
    assert_eq!(r.status, 303, "{}", r.text());
    let location = r.header("location").unwrap().to_string();
    assert_eq!(
        location,
        "/partner/status?excludeProvisioned=true&done=package"
    );
    let page = page_of(location).await;
    assert!(page.contains("The package was changed."));
    let v = subscriber(&server, "ann@acme.example").await.1;
    assert_eq!(v["subscriber"]["package"], "standard");

    // Delete asks first; the confirmation's form deletes.
    let cy = id_of(&server, "cy@acme.example").await;
    let page = page_of(format!("/partner/status/delete?id={cy}")).await;
    assert!(page.contains("Delete cy@acme.example?"), "{page}");
    assert_eq!(field(&page, "csrf"), csrf);
    assert_eq!(
        subscriber(&server, &cy).await.1["subscriber"]["status"],
        "error"
    );
    let r = post_form(
        "/partner/status/delete",
        Some(cookie.clone()),
        form(&[("csrf", &csrf), ("id", &cy), ("back", "")]),
    )
    .await;
    assert_eq!(r.status, 303, "{}", r.text());
    assert_eq!(r.header("location"), Some("/partner/status?done=deleted"));
    assert_eq!(
        subscriber(&server, &cy).await.1["subscriber"]["status"],
        "removed"
    );

    // Retry activation through the form.
    let dee = id_of(&server, "dee@acme.example").await;
    let r = post_form(
        "/partner/status/activation",
        Some(cookie.clone()),
        form(&[("csrf", &csrf), ("id", &dee), ("email", "dee@new.example")]),
    )
    .await;
    assert_eq!(r.status, 303, "{}", r.text());
    let (_, body) = server
        .admin_get(&format!("/admin/v1/emails?subscriber={dee}"))
        .await;
    assert!(body.contains("dee@new.example"), "{body}");

    // Another partner's session sees none of this, and cannot act on it.
    let r = post_form("/partner/session", None, form(&[("token", OTHER_TOKEN)])).await;
    let other_cookie = r
        .header("set-cookie")
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string();
    let r = portal(
        &server,
        "GET",
        "/partner/status",
        None,
        Some(&other_cookie),
        None,
    )
    .await;
    assert!(r.text().contains("oz@other.example") && !r.text().contains("dee@acme.example"));
    let other_csrf = field(&r.text(), "csrf");
    assert_ne!(other_csrf, csrf, "CSRF tokens are bound to the session");
    let r = post_form(
        "/partner/status/package",
        Some(other_cookie.clone()),
        form(&[("csrf", &csrf), ("id", &dee), ("package", "premium")]),
    )
    .await;
    assert_eq!(r.status, 403, "another session's token");
    let r = post_form(
        "/partner/status/package",
        Some(other_cookie),
        form(&[("csrf", &other_csrf), ("id", &dee), ("package", "premium")]),
    )
    .await;
    assert_eq!(r.status, 404, "{}", r.text());

    // A forged cookie is no session.
    let r = portal(
        &server,
        "GET",
        "/partner/status",
        None,
        Some("__Host-bwgate-partner=eyJ4Ijo.AAAA"),
        None,
    )
    .await;
    assert!(r.text().contains("Your session has ended"));

    // Signing out clears the cookie.
    let r = post_form(
        "/partner/signout",
        Some(cookie.clone()),
        form(&[("csrf", &csrf)]),
    )
    .await;
    assert_eq!(r.status, 303);
    assert!(r.header("set-cookie").unwrap().contains("Max-Age=0"));
}

#[tokio::test]
async fn demo_partner_gets_an_admin_token_that_survives_a_restart() {
    let mut server = Server::start();
    let read = |server: &Server| -> Value {
        serde_json::from_str(
            &std::fs::read_to_string(server.path("data/demo-template.json")).unwrap(),
        )
        .unwrap()
    };
    let demo = read(&server);
    let token = demo["adminToken"].as_str().expect("adminToken").to_string();
    assert!(token.len() >= 32, "{demo}");
    for key in ["provisioningId", "provisioningUrl", "username", "password"] {
        assert!(demo[key].is_string(), "{key}");
    }
    assert!(
        std::fs::read_to_string(server.path("stdout.log"))
            .unwrap()
            .contains(&format!("demo partner admin token: {token}")),
        "printed at start"
    );
    let (status, v) = api(&server, "GET", "/partner/v1/subscribers", &token, None).await;
    assert_eq!((status, v["items"].clone()), (200, serde_json::json!([])));

    server.signal("TERM");
    server.wait_exit(Duration::from_secs(30));
    server.spawn();
    assert_eq!(read(&server)["adminToken"], token.as_str(), "kept");
    let (status, _) = api(&server, "GET", "/partner/v1/subscribers", &token, None).await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn a_partner_admin_names_an_organizations_admin_and_the_core_is_told() {
    let server = Server::start_with(Some(&config()), &[]);
    population(&server).await;
    let base = "/partner/v1/subscribers";
    let (ann, bob, cy, dee) = (
        id_of(&server, "ann@acme.example").await,
        id_of(&server, "bob@acme.example").await,
        id_of(&server, "cy@acme.example").await,
        id_of(&server, "dee@acme.example").await,
    );
    // ann, acme's first user, was provisioned as its admin.
    let v = subscriber(&server, &ann).await.1;
    let provision = v["commands"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|c| c["type"] == "ProvisionSubscriber")
        .cloned()
        .unwrap_or_default();
    assert_eq!(provision["envelope"]["command"]["orgAdmin"], true, "{v}");

    let (status, v) = api(
        &server,
        "POST",
        &format!("{base}/{bob}/admin"),
        SP_TOKEN,
        None,
    )
    .await;
    assert_eq!(status, 200, "{v}");
    let admin_commands = |v: &Value| -> Vec<Value> {
        v["commands"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|c| c["type"] == "SetOrganizationAdmin")
            .map(|c| c["envelope"]["command"].clone())
            .collect()
    };
    let sent = admin_commands(&subscriber(&server, &bob).await.1);
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0]["replaces"], ann.as_str(), "{sent:?}");
    // Again: nothing new.
    let (status, _) = api(
        &server,
        "POST",
        &format!("{base}/{bob}/admin"),
        SP_TOKEN,
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(admin_commands(&subscriber(&server, &bob).await.1).len(), 1);
    // Only provisioned users: a failed or waiting one is refused, nothing
    // written.
    for id in [&cy, &dee] {
        let (status, v) = api(
            &server,
            "POST",
            &format!("{base}/{id}/admin"),
            SP_TOKEN,
            None,
        )
        .await;
        assert_eq!((status, code(&v)), (409, 9029), "{v}");
        assert!(admin_commands(&subscriber(&server, id).await.1).is_empty());
    }
    // Another partner's token does not see the subscriber.
    let (status, v) = api(
        &server,
        "POST",
        &format!("{base}/{bob}/admin"),
        OTHER_TOKEN,
        None,
    )
    .await;
    assert_eq!((status, code(&v)), (404, 9015), "{v}");
}

#[tokio::test]
async fn a_partner_admin_reads_its_organizations_subscriptions_and_license_holders() {
    let server = Server::start_with(Some(&config()), &[]);
    population(&server).await;
    let org_of = |user: &'static str| {
        let server = &server;
        async move {
            let v = subscriber(server, user).await.1;
            v["organization"]["id"].as_str().expect("org").to_string()
        }
    };
    let (acme, other) = (
        org_of("ann@acme.example").await,
        org_of("oz@other.example").await,
    );
    // The operator adds a subscription to acme's organization.
    let (status, body) = server
        .admin_json(
            "PUT",
            &format!("/admin/v1/organizations/{acme}/subscriptions/acme-2026"),
            r#"{"startsAt":"2026-01-01","quantities":{"webex-calling-basic":10,"webex-messaging":10}}"#,
        )
        .await;
    assert_eq!(status, 201, "{body}");

    let base = format!("/partner/v1/organizations/{acme}");
    let (status, v) = api(
        &server,
        "GET",
        &format!("{base}/subscriptions"),
        SP_TOKEN,
        None,
    )
    .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["subscriptions"][0]["id"], "acme-2026");
    assert_eq!(
        v["subscriptions"][0]["quantities"]["webex-calling-basic"],
        10
    );

    // Who holds what: ann, bob and cy were licensed before the
    // subscription existed (unmetered); dee waits for its email.
    let (status, v) = api(&server, "GET", &format!("{base}/licenses"), SP_TOKEN, None).await;
    assert_eq!(status, 200, "{v}");
    let mut holders: Vec<String> = v["holders"]
        .as_array()
        .expect("holders")
        .iter()
        .map(|h| h["userId"].as_str().unwrap_or("").to_string())
        .collect();
    holders.dedup();
    assert_eq!(
        holders,
        ["ann@acme.example", "bob@acme.example", "cy@acme.example"]
    );
    let r = portal(
        &server,
        "GET",
        &format!("{base}/licenses.csv"),
        Some(SP_TOKEN),
        None,
        None,
    )
    .await;
    assert_eq!(r.status.as_u16(), 200);
    let ct = r
        .headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    assert!(ct.starts_with("text/csv"), "{ct}");
    let csv = String::from_utf8_lossy(&r.body).to_string();
    assert_eq!(csv.lines().count(), 1 + 6, "{csv}");
    assert!(
        csv.lines().skip(1).all(|l| l.contains(",package,basic,")),
        "{csv}"
    );

    // Another partner's organization, or none: 404 like unknown ids.
    for (path, token) in [
        (
            format!("/partner/v1/organizations/{other}/licenses"),
            SP_TOKEN,
        ),
        (format!("{base}/subscriptions"), OTHER_TOKEN),
        (
            "/partner/v1/organizations/ghost/licenses.csv".to_string(),
            SP_TOKEN,
        ),
    ] {
        let (status, v) = api(&server, "GET", &path, token, None).await;
        assert_eq!((status, code(&v)), (404, 9015), "{path}: {v}");
    }
    // Read only, and a token is needed.
    let (status, _) = api(
        &server,
        "PUT",
        &format!("{base}/subscriptions"),
        SP_TOKEN,
        Some("{}"),
    )
    .await;
    assert_eq!(status, 405);
    let r = portal(
        &server,
        "GET",
        &format!("{base}/licenses"),
        None,
        None,
        None,
    )
    .await;
    assert_eq!(r.status.as_u16(), 401);
}
