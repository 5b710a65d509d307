//! The flow-through face end to end: a BroadWorks AS (our mTLS client)
//! posts documents to the demo template; background delivery provisions.

use std::time::Duration;

use base64::Engine;
use bwgate::client::ClientResponse;

use crate::harness::{eventually, Server};

pub struct Demo {
    pub path: String,
    pub auth: String,
}

pub fn demo(server: &Server) -> Demo {
    let v: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(server.path("data/demo-template.json")).unwrap(),
    )
    .unwrap();
    let user = v["username"].as_str().unwrap();
    let pw = v["password"].as_str().unwrap();
    Demo {
        path: format!(
            "/uc-one/v1/provisioning/{}",
            v["provisioningId"].as_str().unwrap()
        ),
        auth: format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pw}"))
        ),
    }
}

pub fn add_user(user: &str, sp: &str, email: Option<&str>) -> String {
    format!(
        "<AddUser><userId>{user}</userId><serviceProviderId>{sp}</serviceProviderId><groupId>grp1</groupId>\
         <firstName>Ann</firstName><lastName>Lee</lastName>{}<phoneNumber>+1-240-555-0100</phoneNumber></AddUser>",
        email.map(|e| format!("<emailAddress>{e}</emailAddress>")).unwrap_or_default()
    )
}

pub fn document(request_id: Option<&str>, ops: &[String]) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?><ProvisioningRequest xmlns=\"urn:bwgate:flowthrough:1\"{}>{}</ProvisioningRequest>",
        request_id.map(|r| format!(" requestId=\"{r}\"")).unwrap_or_default(),
        ops.concat()
    )
}

pub async fn post(
    server: &Server,
    path: &str,
    auth: Option<&str>,
    body: impl Into<bytes::Bytes>,
    ct: &str,
) -> ClientResponse {
    let mut req = bwgate::client::request("POST", path, body.into(), Some(ct));
    if let Some(a) = auth {
        req.headers_mut()
            .insert("authorization", a.parse().unwrap());
    }
    server.client().request(req).await.expect("request")
}

pub async fn subscriber(server: &Server, key: &str) -> (u16, serde_json::Value) {
    let (status, body) = server
        .admin_get(&format!("/admin/v1/subscribers/{key}"))
        .await;
    (
        status,
        serde_json::from_str(&body).unwrap_or(serde_json::Value::Null),
    )
}

/// The response with its (per-request) trackingId attribute removed.
pub fn without_tracking_id(xml: &str) -> String {
    match xml.find(" trackingId=\"") {
        Some(start) => {
            let rest = &xml[start + 13..];
            let end = rest
                .find('"')
                .map(|i| start + 13 + i + 1)
                .unwrap_or(xml.len());
            format!("{}{}", &xml[..start], &xml[end..])
        }
        None => xml.to_string(),
    }
}

/// Polls the read-back until the subscriber reaches `status`.
pub async fn wait_status(server: &Server, key: &str, status: &str) -> serde_json::Value {
    eventually(
        format!("{key} to reach {status}"),
        Duration::from_secs(15),
        || async {
            let (code, v) = subscriber(server, key).await;
            if code == 200 && v["subscriber"]["status"] == status {
                Ok(v)
            } else {
                Err(v)
            }
        },
    )
    .await
}

#[tokio::test]
async fn add_user_is_accepted_then_provisioned_with_licenses() {
    let server = Server::start();
    let d = demo(&server);
    let resp = post(
        &server,
        &d.path,
        Some(&d.auth),
        document(
            Some("r-1"),
            &[add_user(
                "ann@acme.example",
                "acme",
                Some("ann@acme.example"),
            )],
        ),
        "application/xml",
    )
    .await;
    assert_eq!(resp.status, 200, "{}", resp.text());
    let xml = resp.text();
    assert!(xml.contains("operation=\"AddUser\""), "{xml}");
    assert!(xml.contains("userId=\"ann@acme.example\""), "{xml}");
    assert!(xml.contains("status=\"provisioning\""), "{xml}");
    assert!(xml.contains("requestId=\"r-1\""), "{xml}");
    let v = wait_status(&server, "ann@acme.example", "provisioned").await;
    assert_eq!(
        v["subscriber"]["phoneNumber"], "+12405550100",
        "E.164 normalized"
    );
    assert_eq!(
        v["subscriber"]["enterpriseKey"], "acme",
        "demo template is in enterprise mode"
    );
    let licenses: Vec<&str> = v["licenses"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l.as_str().unwrap())
        .collect();
    assert!(licenses.contains(&"webex-calling-basic"), "{licenses:?}");
    let kinds: Vec<&str> = v["commands"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["type"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        vec!["ProvisionSubscriber"],
        "subscriber commands: {v}"
    );
    assert!(v["commands"][0]["state"] == "delivered");
}

#[tokio::test]
async fn the_operator_read_back_takes_a_percent_encoded_user_id() {
    // Clients that encode every path segment send `@` as `%40`.
    let server = Server::start();
    let d = demo(&server);
    let resp = post(
        &server,
        &d.path,
        Some(&d.auth),
        document(
            Some("r-pct"),
            &[add_user(
                "pat@acme.example",
                "acme",
                Some("pat@acme.example"),
            )],
        ),
        "application/xml",
    )
    .await;
    assert_eq!(resp.status, 200, "{}", resp.text());
    let (code, encoded) = subscriber(&server, "pat%40acme.example").await;
    assert_eq!(code, 200, "{encoded}");
    assert_eq!(encoded["subscriber"]["userId"], "pat@acme.example");
    let (_, plain) = subscriber(&server, "pat@acme.example").await;
    assert_eq!(encoded["subscriber"]["id"], plain["subscriber"]["id"]);
    let (code, body) = server.admin_get("/admin/v1/subscribers/pat%4").await;
    assert_eq!(code, 400, "a bad escape is refused: {body}");
    assert!(body.contains("9017"), "{body}");
}

#[tokio::test]
async fn bad_credentials_unknown_template_and_bad_documents_record_nothing() {
    let server = Server::start();
    let d = demo(&server);
    let doc = document(
        None,
        &[add_user(
            "bob@acme.example",
            "acme",
            Some("bob@acme.example"),
        )],
    );

    let wrong = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode("bwgate-demo-provisioning:wrong")
    );
    let resp = post(
        &server,
        &d.path,
        Some(&wrong),
        doc.clone(),
        "application/xml",
    )
    .await;
    assert_eq!(resp.status, 401);
    assert!(resp
        .header("www-authenticate")
        .unwrap_or("")
        .starts_with("Basic"));
    assert!(
        resp.text().contains("<errorCode>9004</errorCode>"),
        "{}",
        resp.text()
    );

    let resp = post(&server, &d.path, None, doc.clone(), "application/xml").await;
    assert_eq!(resp.status, 401);

    let resp = post(
        &server,
        "/uc-one/v1/provisioning/no-such-template",
        Some(&d.auth),
        doc.clone(),
        "application/xml",
    )
    .await;
    // An unknown provisioningId answers like wrong credentials (issue 10):
    // before authentication nobody learns which provisioningIds exist.
    assert_eq!(resp.status, 401);
    assert!(resp.text().contains("<errorCode>9004</errorCode>"));

    let resp = post(
        &server,
        &d.path,
        Some(&d.auth),
        doc.clone(),
        "application/json",
    )
    .await;
    assert_eq!(resp.status, 415);
    assert!(resp.text().contains("<errorCode>9014</errorCode>"));

    let resp = post(
        &server,
        &d.path,
        Some(&d.auth),
        "<ProvisioningRequest><AddUser>",
        "application/xml",
    )
    .await;
    assert_eq!(resp.status, 400);
    assert!(resp.text().contains("<errorCode>9011</errorCode>"));

    let xxe = "<?xml version=\"1.0\"?><!DOCTYPE r [<!ENTITY x SYSTEM \"file:///etc/passwd\">]><ProvisioningRequest><AddUser><userId>&x;</userId></AddUser></ProvisioningRequest>";
    let resp = post(&server, &d.path, Some(&d.auth), xxe, "application/xml").await;
    assert_eq!(resp.status, 400);
    assert!(resp.text().contains("<errorCode>9012</errorCode>"));

    assert_eq!(
        subscriber(&server, "bob@acme.example").await.0,
        404,
        "nothing recorded"
    );
    // A correct request still works afterwards.
    let resp = post(&server, &d.path, Some(&d.auth), doc, "text/xml").await;
    assert_eq!(resp.status, 200, "{}", resp.text());
}

#[tokio::test]
async fn per_operation_errors_do_not_fail_the_document_and_replays_answer_the_same() {
    let server = Server::start();
    let d = demo(&server);
    let bad_email = add_user("carl@acme.example", "acme", Some("not-an-email"));
    let doc = document(
        Some("batch-7"),
        &[
            add_user("dana@acme.example", "acme", Some("dana@acme.example")),
            bad_email,
            add_user("erin@acme.example", "acme", None),
        ],
    );
    let first = post(
        &server,
        &d.path,
        Some(&d.auth),
        doc.clone(),
        "application/xml",
    )
    .await;
    assert_eq!(first.status, 200);
    let xml = first.text();
    assert!(xml.contains("errorCode=\"9001\""), "invalid email: {xml}");
    assert!(
        xml.contains("errorCode=\"1001\""),
        "no email on a template that trusts emails: {xml}"
    );
    wait_status(&server, "dana@acme.example", "provisioned").await;
    assert_eq!(subscriber(&server, "carl@acme.example").await.0, 404);
    assert_eq!(subscriber(&server, "erin@acme.example").await.0, 404);

    let again = post(&server, &d.path, Some(&d.auth), doc, "application/xml").await;
    assert_eq!(again.status, 200);
    assert_eq!(
        without_tracking_id(&again.text()),
        without_tracking_id(&xml),
        "replay answers like the first time"
    );
    let v = subscriber(&server, "dana@acme.example").await.1;
    assert_eq!(
        v["commands"].as_array().unwrap().len(),
        1,
        "no second command on replay: {v}"
    );
}

#[tokio::test]
async fn modify_and_delete_follow_the_lifecycle() {
    let server = Server::start();
    let d = demo(&server);
    post(
        &server,
        &d.path,
        Some(&d.auth),
        document(
            None,
            &[add_user(
                "fay@acme.example",
                "acme",
                Some("fay@acme.example"),
            )],
        ),
        "application/xml",
    )
    .await;
    wait_status(&server, "fay@acme.example", "provisioned").await;

    let modify = "<ModifyUser><userId>fay@acme.example</userId><serviceProviderId>acme</serviceProviderId><groupId>grp1</groupId><package>premium</package><mobilePhoneNumber>+44 20 7946 0000</mobilePhoneNumber></ModifyUser>".to_string();
    let resp = post(
        &server,
        &d.path,
        Some(&d.auth),
        document(None, &[modify]),
        "application/xml",
    )
    .await;
    assert!(
        resp.text().contains("status=\"updating\""),
        "{}",
        resp.text()
    );
    let v = wait_status(&server, "fay@acme.example", "provisioned").await;
    assert_eq!(v["subscriber"]["package"], "premium");
    assert_eq!(v["subscriber"]["mobilePhoneNumber"], "+442079460000");
    assert!(
        v["licenses"]
            .as_array()
            .unwrap()
            .iter()
            .any(|l| l == "webex-meetings-premium"),
        "{v}"
    );
    let id = v["subscriber"]["id"].as_str().unwrap().to_string();

    let delete = "<DeleteUser><userId>fay@acme.example</userId></DeleteUser>".to_string();
    let resp = post(
        &server,
        &d.path,
        Some(&d.auth),
        document(None, std::slice::from_ref(&delete)),
        "application/xml",
    )
    .await;
    assert!(
        resp.text().contains("status=\"removed\""),
        "{}",
        resp.text()
    );
    // Partial deletion: the record stays without BroadWorks identifiers.
    let v = eventually("licenses revoked", Duration::from_secs(15), || async {
        let v = subscriber(&server, &id).await.1;
        if v["licenses"]
            .as_array()
            .map(|l| l.is_empty())
            .unwrap_or(false)
        {
            Ok(v)
        } else {
            Err(v)
        }
    })
    .await;
    assert!(v["subscriber"]["userId"].is_null());
    assert!(v["subscriber"]["phoneNumber"].is_null());
    assert_eq!(v["subscriber"]["email"], "fay@acme.example");
    assert_eq!(v["subscriber"]["firstName"], "Ann");
    // Deleting again is idempotent.
    let resp = post(
        &server,
        &d.path,
        Some(&d.auth),
        document(None, &[delete]),
        "application/xml",
    )
    .await;
    assert!(resp.text().contains("status=\"removed\""));
}

#[tokio::test]
async fn latin1_documents_decode() {
    let server = Server::start();
    let d = demo(&server);
    let mut body = b"<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?><ProvisioningRequest><AddUser><userId>jm@acme.example</userId><serviceProviderId>acme</serviceProviderId><groupId>g</groupId><firstName>J".to_vec();
    body.push(0xFC); // ü
    body.extend_from_slice(b"rgen</firstName><lastName>M");
    body.push(0xFC);
    body.extend_from_slice(
        b"ller</lastName><emailAddress>jm@acme.example</emailAddress><extension>1234</extension></AddUser></ProvisioningRequest>",
    );
    let resp = post(
        &server,
        &d.path,
        Some(&d.auth),
        body,
        "text/xml; charset=ISO-8859-1",
    )
    .await;
    assert_eq!(resp.status, 200, "{}", resp.text());
    let (_, v) = subscriber(&server, "jm@acme.example").await;
    assert_eq!(v["subscriber"]["firstName"], "Jürgen");
    assert_eq!(v["subscriber"]["lastName"], "Müller");
}

#[tokio::test]
async fn concurrent_first_adds_create_one_organization() {
    let server = Server::start();
    let d = demo(&server);
    let mut tasks = Vec::new();
    for i in 0..20 {
        let client = server.client();
        let path = d.path.clone();
        let auth = d.auth.clone();
        tasks.push(tokio::spawn(async move {
            let mut req = bwgate::client::request(
                "POST",
                &path,
                document(
                    None,
                    &[add_user(
                        &format!("u{i}@newco.example"),
                        "newco",
                        Some(&format!("u{i}@newco.example")),
                    )],
                )
                .into(),
                Some("application/xml"),
            );
            req.headers_mut()
                .insert("authorization", auth.parse().unwrap());
            client.request(req).await.unwrap().status
        }));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap(), 200);
    }
    let mut orgs = std::collections::HashSet::new();
    for i in 0..20 {
        let v = wait_status(&server, &format!("u{i}@newco.example"), "provisioned").await;
        orgs.insert(v["subscriber"]["orgId"].as_str().unwrap().to_string());
    }
    assert_eq!(orgs.len(), 1, "one enterprise, one organization: {orgs:?}");
}

/// kill -9 right after acknowledgements: after a restart every acknowledged
/// subscriber is there and reaches `provisioned`, and no license is granted
/// twice, whatever the worker had done when it died.
#[tokio::test]
async fn acknowledged_operations_survive_sigkill_and_complete_once() {
    let mut server = Server::start();
    let d = demo(&server);
    let mut acknowledged = Vec::new();
    for batch in 0..4 {
        let ops: Vec<String> = (0..25)
            .map(|i| {
                let user = format!("k{batch}-{i}@crash.example");
                add_user(&user, "crashco", Some(&user))
            })
            .collect();
        let resp = post(
            &server,
            &d.path,
            Some(&d.auth),
            document(None, &ops),
            "application/xml",
        )
        .await;
        assert_eq!(resp.status, 200, "{}", resp.text());
        for i in 0..25 {
            acknowledged.push(format!("k{batch}-{i}@crash.example"));
        }
    }
    // No graceful anything: the process dies with deliveries in flight.
    server.signal("KILL");
    let status = server.wait_exit(Duration::from_secs(10));
    assert!(!status.success());
    server.spawn();

    for user in &acknowledged {
        let v = wait_status(&server, user, "provisioned").await;
        let grants: Vec<&str> = v["licenseEvents"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["action"] == "grant")
            .map(|e| e["license"].as_str().unwrap())
            .collect();
        let mut unique = grants.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(
            grants.len(),
            unique.len(),
            "{user}: a license granted twice: {v}"
        );
        assert_eq!(grants.len(), 2, "{user}: basic grants two licenses: {v}");
        let commands = v["commands"].as_array().unwrap();
        assert_eq!(commands.len(), 1, "{user}: {v}");
        assert_eq!(commands[0]["state"], "delivered");
    }
}

#[tokio::test]
async fn answers_echo_the_user_id_as_sent() {
    let server = Server::start();
    let d = demo(&server);
    let resp = post(
        &server,
        &d.path,
        Some(&d.auth),
        document(
            None,
            &[add_user(
                "Mixed.Case@Acme.EXAMPLE",
                "acme",
                Some("mixed.case@acme.example"),
            )],
        ),
        "application/xml",
    )
    .await;
    assert!(
        resp.text().contains("userId=\"Mixed.Case@Acme.EXAMPLE\""),
        "{}",
        resp.text()
    );
    // Stored canonically: the domain is case-insensitive.
    assert_eq!(subscriber(&server, "Mixed.Case@acme.example").await.0, 200);
}

#[tokio::test]
async fn oversized_http1_uploads_read_the_413_instead_of_a_reset() {
    let server = Server::start_with(Some("[limits]\nmax_body_bytes = 65536\n"), &[]);
    let d = demo(&server);
    let certs = server.certs();
    let tls = bwgate::tls::client_config(
        &certs.join("ca.crt"),
        Some(&certs.join("client.crt")),
        Some(&certs.join("client.key")),
        false,
    )
    .unwrap();
    let client = bwgate::client::HttpsClient::new(server.https, "localhost", tls).unwrap();
    for _ in 0..10 {
        let mut req = bwgate::client::request(
            "POST",
            &d.path,
            vec![b' '; 200_000].into(),
            Some("application/xml"),
        );
        req.headers_mut()
            .insert("authorization", d.auth.parse().unwrap());
        let resp = client.request(req).await.expect("a 413, not a reset");
        assert_eq!(resp.status, 413);
        assert!(resp.text().contains("<errorCode>9010</errorCode>"));
    }
}

#[tokio::test]
async fn a_new_organization_is_named_after_the_enterprise_name_broadworks_sends() {
    let server = Server::start();
    let d = demo(&server);
    let named = |user: &str, sp: &str, names: &str| {
        add_user(user, sp, Some(&user.replace('@', ".mail@")))
            .replace("</AddUser>", &format!("{names}</AddUser>"))
    };
    let resp = post(
        &server,
        &d.path,
        Some(&d.auth),
        document(
            None,
            &[
                named(
                    "n1@bw.example",
                    "ent-named",
                    "<serviceProviderName>Acme Holdings, Inc.</serviceProviderName>\
                     <groupName>Head office</groupName>",
                ),
                named("n2@bw.example", "ent-bare", ""),
            ],
        ),
        "application/xml",
    )
    .await;
    assert_eq!(resp.status, 200, "{}", resp.text());
    // The demo template is in enterprise mode: the enterprise's name.
    let (code, v) = subscriber(&server, "n1@bw.example").await;
    assert_eq!(code, 200, "{v}");
    assert_eq!(v["organization"]["name"], "Acme Holdings, Inc.", "{v}");
    assert_eq!(v["organization"]["enterpriseKey"], "ent-named", "{v}");
    assert_eq!(v["organization"]["origin"], "created", "{v}");
    assert_eq!(v["organization"]["id"], v["subscriber"]["orgId"], "{v}");
    // Without a name: the enterprise key.
    let (_, v) = subscriber(&server, "n2@bw.example").await;
    assert_eq!(v["organization"]["name"], "ent-bare", "{v}");
}
