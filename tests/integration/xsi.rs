//! The XSI face against the real binary: Xsi-Actions with Basic (checked
//! at a stand-in XSP), the auth service's bearer JWT and single-use login
//! tokens, ErrorInfo errors, BadgerFish JSON, the enterprise directory,
//! and removing the service through the flow-through's use case.

use base64::Engine;
use bytes::Bytes;
use http_body_util::Full;
use hyper::{Method, Request};
use serde_json::Value;

use crate::email::Relay;
use crate::flowthrough::{document, post, subscriber};
use crate::harness::Server;
use crate::signin::{config, Xsp, AUTH};

const ACTIONS: &str = "/com.broadsoft.xsi-actions/v2.0";

pub fn basic(user: &str, password: &str) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
    )
}

async fn call(
    server: &Server,
    method: Method,
    path: &str,
    auth: Option<&str>,
    extra: &[(&str, &str)],
    body: &str,
) -> bwgate::client::ClientResponse {
    let mut b = Request::builder().method(method).uri(path);
    if let Some(a) = auth {
        b = b.header("authorization", a);
    }
    for (k, v) in extra {
        b = b.header(*k, *v);
    }
    let req = b.body(Full::new(Bytes::from(body.to_string()))).unwrap();
    server.client().request(req).await.expect("request")
}

fn add(user: &str, first: &str, last: &str, group: &str) -> String {
    format!(
        "<AddUser><userId>{user}</userId><serviceProviderId>globex</serviceProviderId>\
<groupId>{group}</groupId><firstName>{first}</firstName><lastName>{last}</lastName>\
<phoneNumber>+1-240-555-01{n:02}</phoneNumber></AddUser>",
        n = user.len()
    )
}

/// The signin tests' server (templates with a cluster whose XSP is the
/// stand-in) with its relay, receiver, stub directory and stub.
fn started() -> (
    Relay,
    crate::email::Receiver,
    tempfile::TempDir,
    Xsp,
    Server,
) {
    let relay = Relay::new();
    let receiver = relay.start(0, false);
    let dir = tempfile::tempdir().unwrap();
    let xsp = Xsp::start(&relay, dir.path());
    let server = Server::start_with(Some(&config(&relay, receiver.port, xsp.port)), &[]);
    (relay, receiver, dir, xsp, server)
}

pub fn error_code(xml: &str) -> String {
    let start = xml.find("<errorCode>").map(|i| i + 11).unwrap_or(0);
    let end = xml.find("</errorCode>").unwrap_or(start);
    xml[start..end].to_string()
}

#[tokio::test]
async fn xsi_actions_answer_basic_bearer_and_login_tokens_for_the_user_itself() {
    let (_relay, _receiver, _dir, xsp, server) = started();
    let resp = post(
        &server,
        "/uc-one/v1/provisioning/noself",
        Some(AUTH),
        document(
            None,
            &[
                add("kim@bw.example", "Kim", "Ito", "sales"),
                add("lee@bw.example", "Lee", "Park", "ops"),
                add("zed@bw.example", "Zed", "Parker", "ops"),
            ],
        ),
        "application/xml",
    )
    .await;
    assert_eq!(resp.status, 200, "{}", resp.text());
    let profile = format!("{ACTIONS}/user/kim%40bw.example/profile");

    // No credentials: 401 with a Basic challenge, unless asked not to.
    let r = call(&server, Method::GET, &profile, None, &[], "").await;
    assert_eq!(r.status, 401, "{}", r.text());
    assert_eq!(
        r.header("www-authenticate"),
        Some("Basic realm=\"BroadWorks\"")
    );
    assert!(r
        .text()
        .contains("<ErrorInfo xmlns=\"http://schema.broadsoft.com/xsi\">"));
    assert_eq!(error_code(&r.text()), "9004");
    let r = call(
        &server,
        Method::GET,
        &profile,
        None,
        &[("X-BroadWorks-No-AuthChallenge", "true")],
        "",
    )
    .await;
    assert_eq!(r.status, 401);
    assert!(r.header("www-authenticate").is_none());
    // A wrong password is refused at the XSP.
    let r = call(
        &server,
        Method::GET,
        &profile,
        Some(&basic("kim@bw.example", "nope")),
        &[],
        "",
    )
    .await;
    assert_eq!(r.status, 401, "{}", r.text());

    // The right one: the profile, with bwgate's provisioning block.
    let kim = basic("kim@bw.example", "Kim-secret-1");
    let r = call(&server, Method::GET, &profile, Some(&kim), &[], "").await;
    assert_eq!(r.status, 200, "{}", r.text());
    let xml = r.text();
    assert!(xml.contains("<userId>kim@bw.example</userId>"), "{xml}");
    assert!(xml.contains("<firstName>Kim</firstName>"), "{xml}");
    assert!(
        xml.contains("<status>pending_email_input</status>"),
        "{xml}"
    );
    let asked = xsp.requests().len();
    // Trusted for a while: the XSP is not asked again.
    let r = call(
        &server,
        Method::GET,
        &format!("{profile}?format=json"),
        Some(&kim),
        &[],
        "",
    )
    .await;
    assert_eq!(r.status, 200);
    assert_eq!(xsp.requests().len(), asked, "the Basic cache answered");
    let v: Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(
        v["Profile"]["details"]["userId"]["$"], "kim@bw.example",
        "{v}"
    );
    assert_eq!(
        v["Profile"]["@xmlns"]["$"],
        "http://schema.broadsoft.com/xsi"
    );
    // Another user's resources: 403, 9038.
    let r = call(
        &server,
        Method::GET,
        &format!("{ACTIONS}/user/lee@bw.example/profile"),
        Some(&kim),
        &[],
        "",
    )
    .await;
    assert_eq!(r.status, 403, "{}", r.text());
    assert_eq!(error_code(&r.text()), "9038");

    // The auth service: a bearer JWT for the password, accepted everywhere.
    let r = call(
        &server,
        Method::GET,
        "/authService/token/kim@bw.example",
        Some(&kim),
        &[],
        "",
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let v: Value = serde_json::from_slice(&r.body).unwrap();
    let jwt = v["token"]["bearer"].as_str().unwrap().to_string();
    let claims: Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(jwt.split('.').nth(1).unwrap())
            .unwrap(),
    )
    .unwrap();
    assert_eq!(claims["sub"], "kim@bw.example");
    assert_eq!(claims["iss"], "BroadWorks");
    let bearer = format!("Bearer {jwt}");
    let r = call(&server, Method::GET, &profile, Some(&bearer), &[], "").await;
    assert_eq!(r.status, 200, "{}", r.text());
    // A token does not buy another token.
    let r = call(
        &server,
        Method::GET,
        "/authService/token/kim@bw.example",
        Some(&bearer),
        &[],
        "",
    )
    .await;
    assert_eq!(r.status, 401);
    let r = call(&server, Method::GET, "/authService/jwks", None, &[], "").await;
    assert_eq!(r.status, 200);
    let jwks: Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(jwks["keys"][0]["crv"], "P-256", "{jwks}");
    assert!(jwks["keys"][0]["d"].is_null());

    // A login token: 201, then usable once.
    let r = call(
        &server,
        Method::POST,
        &format!("{ACTIONS}/user/kim@bw.example/profile/LoginToken"),
        Some(&bearer),
        &[],
        "",
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.text());
    let xml = r.text();
    let token = xml
        .split("<token>")
        .nth(1)
        .and_then(|t| t.split("</token>").next())
        .unwrap()
        .to_string();
    let sso = format!("BroadWorksSSO {token}");
    let r = call(&server, Method::GET, &profile, Some(&sso), &[], "").await;
    assert_eq!(r.status, 200, "{}", r.text());
    let r = call(&server, Method::GET, &profile, Some(&sso), &[], "").await;
    assert_eq!(r.status, 401, "used once");

    // Services and the Integrated IM&P service.
    let r = call(
        &server,
        Method::GET,
        &format!("{ACTIONS}/user/kim@bw.example/services"),
        Some(&bearer),
        &[],
        "",
    )
    .await;
    assert!(
        r.text().contains("/services/IntegratedIMP</uri>"),
        "{}",
        r.text()
    );
    let imp = format!("{ACTIONS}/user/kim@bw.example/services/IntegratedIMP");
    let r = call(&server, Method::GET, &imp, Some(&bearer), &[], "").await;
    assert!(r.text().contains("<active>true</active>"), "{}", r.text());

    // The enterprise directory: paging, sorting, search.
    let dir_path = format!("{ACTIONS}/user/kim@bw.example/directories/Enterprise");
    let r = call(
        &server,
        Method::GET,
        &format!("{dir_path}?results=2&sortColumn=firstName"),
        Some(&bearer),
        &[],
        "",
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let xml = r.text();
    assert!(xml.contains("<startIndex>1</startIndex>"), "{xml}");
    assert!(
        xml.contains("<numberOfRecords>2</numberOfRecords>"),
        "{xml}"
    );
    assert!(
        xml.contains("<totalAvailableRecords>3</totalAvailableRecords>"),
        "{xml}"
    );
    let kim_at = xml.find("kim@bw.example").unwrap();
    let lee_at = xml.find("lee@bw.example").unwrap();
    assert!(kim_at < lee_at && !xml.contains("zed@bw.example"), "{xml}");
    let r = call(
        &server,
        Method::GET,
        &format!("{dir_path}?lastName=park*/i&format=json"),
        Some(&bearer),
        &[],
        "",
    )
    .await;
    let v: Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(v["Enterprise"]["totalAvailableRecords"]["$"], "2", "{v}");
    let r = call(
        &server,
        Method::GET,
        &format!("{dir_path}?results=0"),
        Some(&bearer),
        &[],
        "",
    )
    .await;
    assert_eq!(r.status, 400);
    assert_eq!(error_code(&r.text()), "9017");

    // Unknown resources and methods.
    let r = call(
        &server,
        Method::GET,
        &format!("{ACTIONS}/user/kim@bw.example/calls"),
        Some(&bearer),
        &[],
        "",
    )
    .await;
    assert_eq!(
        (r.status.as_u16(), error_code(&r.text())),
        (404, "9015".to_string())
    );
    let r = call(&server, Method::DELETE, &profile, Some(&bearer), &[], "").await;
    assert_eq!(r.status, 405);
    assert_eq!(r.header("allow"), Some("GET, HEAD"));
    let r = call(
        &server,
        Method::GET,
        &format!("{ACTIONS}/versions"),
        None,
        &[],
        "",
    )
    .await;
    assert!(r.text().contains("<version>v2.0</version>"), "{}", r.text());

    // Removing the service removes the subscriber (a DeleteUser): its
    // tokens stop working.
    let r = call(&server, Method::PUT, &imp, Some(&bearer), &[("content-type", "application/xml")], "<IntegratedIMP xmlns=\"http://schema.broadsoft.com/xsi\"><active>maybe</active></IntegratedIMP>").await;
    assert_eq!(r.status, 400, "{}", r.text());
    assert_eq!(
        subscriber(&server, "kim@bw.example").await.0,
        200,
        "bad input changes nothing"
    );
    let r = call(&server, Method::PUT, &imp, Some(&bearer), &[("content-type", "application/xml")], "<IntegratedIMP xmlns=\"http://schema.broadsoft.com/xsi\"><active>false</active></IntegratedIMP>").await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        subscriber(&server, "kim@bw.example").await.0,
        404,
        "partial deletion"
    );
    let r = call(&server, Method::GET, &profile, Some(&bearer), &[], "").await;
    assert_eq!(r.status, 401, "the token died with the subscriber");
}

#[tokio::test]
async fn bwgate_load_drives_the_profile_get_with_a_bearer_token() {
    let (_relay, _receiver, _dir, _xsp, server) = started();
    let resp = post(
        &server,
        "/uc-one/v1/provisioning/noself",
        Some(AUTH),
        document(None, &[add("kim@bw.example", "Kim", "Ito", "sales")]),
        "application/xml",
    )
    .await;
    assert_eq!(resp.status, 200, "{}", resp.text());
    let r = call(
        &server,
        Method::GET,
        "/authService/token/kim@bw.example",
        Some(&basic("kim@bw.example", "Kim-secret-1")),
        &[],
        "",
    )
    .await;
    let v: Value = serde_json::from_slice(&r.body).unwrap();
    let jwt = v["token"]["bearer"].as_str().unwrap().to_string();
    let certs = server.certs();
    let url = format!(
        "https://localhost:{}{ACTIONS}/user/kim@bw.example/profile",
        server.https.port()
    );
    let out = std::process::Command::new(crate::harness::BIN)
        .args(["load", "--url", &url, "--method", "get", "--requests", "60"])
        .args(["--connections", "2", "--timeout", "20s", "--json"])
        .arg("--cacert")
        .arg(certs.join("ca.crt"))
        .arg("--cert")
        .arg(certs.join("client.crt"))
        .arg("--key")
        .arg(certs.join("client.key"))
        .env("BWGATE_LOAD_BEARER", &jwt)
        .output()
        .expect("run bwgate load");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["ok"], 60, "{report}");
    assert_eq!(report["status"], serde_json::json!({"200": 60}), "{report}");
}

#[tokio::test]
async fn the_xsi_conformance_cases_pass_against_the_real_server() {
    let (_relay, _receiver, _dir, _xsp, server) = started();
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/conformance/xsi");
    let user = std::fs::read_to_string(format!("{dir}/user.xml"))
        .unwrap()
        .replace("{{user}}", "kim@bw.example");
    let resp = post(
        &server,
        "/uc-one/v1/provisioning/noself",
        Some(AUTH),
        user,
        "application/xml",
    )
    .await;
    assert_eq!(resp.status, 200, "{}", resp.text());
    let certs = server.certs();
    for _ in 0..2 {
        let out = std::process::Command::new(crate::harness::BIN)
            .args(["replay", "--xsi", dir])
            .args([
                "--url",
                &format!("https://localhost:{}", server.https.port()),
            ])
            .args(["--user", "kim@bw.example", "--password", "Kim-secret-1"])
            .arg("--cacert")
            .arg(certs.join("ca.crt"))
            .arg("--cert")
            .arg(certs.join("client.crt"))
            .arg("--key")
            .arg(certs.join("client.key"))
            .output()
            .expect("run bwgate replay --xsi");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        // Every case directory ran and passed (Actions and Events alike).
        let cases = std::fs::read_dir(dir)
            .unwrap()
            .filter(|e| e.as_ref().is_ok_and(|e| e.path().is_dir()))
            .count();
        assert!(cases >= 26, "{cases} cases");
        assert!(
            stdout.contains(&format!("{cases} passed, 0 failed")),
            "{stdout}"
        );
    }
}
