//! Webex Calling end to end: the real binary, an inventory put through the
//! operator API (a location, numbers by CSV), AddUsers over mTLS whose
//! numbers are national, free in the inventory, or a service's; a user
//! without Calling is still provisioned and its `errors[]` say why (9043);
//! a ModifyUser with a usable number entitles it; an entitled user keeps
//! its number.

use serde_json::{json, Value};

use crate::flowthrough::{add_user, demo, document, post, subscriber, wait_status, Demo};
use crate::harness::{admin_http_with_head, eventually, Server};

async fn send(server: &Server, d: &Demo, ops: &[String]) {
    let resp = post(
        server,
        &d.path,
        Some(&d.auth),
        document(None, ops),
        "application/xml",
    )
    .await;
    assert_eq!(resp.status, 200, "{}", resp.text());
    assert!(!resp.text().contains("<error"), "{}", resp.text());
}

fn add_with_number(user: &str, number: &str) -> String {
    add_user(user, "acme", Some(user)).replace("+1-240-555-0100", number)
}

fn modify_number(user: &str, number: &str) -> String {
    format!(
        "<ModifyUser><userId>{user}</userId><serviceProviderId>acme</serviceProviderId>\
         <groupId>grp1</groupId><phoneNumber>{number}</phoneNumber></ModifyUser>"
    )
}

async fn operator(server: &Server, method: &str, path: &str, ct: &str, body: &str) -> (u16, Value) {
    let (status, _, text) = admin_http_with_head(
        server.admin,
        method,
        path,
        &[
            ("Authorization", &format!("Bearer {}", server.ops_token())),
            ("Content-Type", ct),
        ],
        body,
    )
    .await;
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// The subscriber's licenses and its `errors[]` codes and descriptions,
/// once it is provisioned.
async fn provisioned(server: &Server, user: &str) -> (Vec<String>, Vec<(i64, String)>) {
    let v = wait_status(server, user, "provisioned").await;
    let licenses = v["licenses"]
        .as_array()
        .expect("licenses")
        .iter()
        .map(|l| l.as_str().expect("license").to_string())
        .collect();
    let errors = v["subscriber"]["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .map(|e| {
            (
                e["errorCode"].as_i64().unwrap_or(0),
                e["description"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    (licenses, errors)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calling_needs_a_free_inventory_number_and_the_reason_reaches_the_subscriber() {
    let server = Server::start();
    let d = demo(&server);
    // The organization's first user, before it has an inventory: its
    // E.164 number is enough.
    send(
        &server,
        &d,
        &[add_with_number("ann@acme.example", "+1-240-555-0100")],
    )
    .await;
    let v = wait_status(&server, "ann@acme.example", "provisioned").await;
    let org = v["organization"]["id"].as_str().expect("org").to_string();
    let (licenses, errors) = provisioned(&server, "ann@acme.example").await;
    assert!(
        licenses.contains(&"webex-calling-basic".to_string()),
        "{licenses:?}"
    );
    assert!(errors.is_empty(), "{errors:?}");

    let base = format!("/admin/v1/organizations/{org}/calling");
    let (status, body) = operator(
        &server,
        "PUT",
        &format!("{base}/locations/hq"),
        "application/json",
        &json!({"name": "Head office", "country": "us"}).to_string(),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let csv = "number,service\n+1 240 555 0101,\n+12405550102,Main auto attendant\n+12405550103\n";
    let (status, body) = operator(
        &server,
        "POST",
        &format!("{base}/locations/hq/numbers"),
        "text/csv",
        csv,
    )
    .await;
    assert_eq!((status, &body["added"]), (200, &json!(3)), "{body}");
    // Not E.164: refused, nothing added.
    let (status, body) = operator(
        &server,
        "POST",
        &format!("{base}/locations/hq/numbers"),
        "application/json",
        &json!({"numbers": [{"number": "+12405550104"}, {"number": "240 555 0105"}]}).to_string(),
    )
    .await;
    assert_eq!(
        (status, &body["errors"][0]["errorCode"]),
        (400, &json!(9002)),
        "{body}"
    );
    let (status, body) = operator(
        &server,
        "GET",
        &format!("{base}/locations"),
        "application/json",
        "",
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        body["locations"],
        json!([{"id": "hq", "name": "Head office", "country": "US", "numbers": 3, "free": 2}]),
    );

    // A national number (BroadWorks without the country code), a free
    // inventory number, a service's number.
    send(
        &server,
        &d,
        &[
            add_with_number("bob@acme.example", "240-555-0101"),
            add_with_number("cat@acme.example", "+1 (240) 555-0101"),
            add_with_number("dan@acme.example", "+12405550102"),
        ],
    )
    .await;
    let (bob, bob_errors) = provisioned(&server, "bob@acme.example").await;
    assert_eq!(bob, ["webex-messaging"]);
    assert_eq!(bob_errors.len(), 1, "{bob_errors:?}");
    assert_eq!(bob_errors[0].0, 9043);
    assert!(
        bob_errors[0].1.contains("'2405550101' is not E.164"),
        "{bob_errors:?}"
    );
    let (cat, cat_errors) = provisioned(&server, "cat@acme.example").await;
    assert_eq!(cat, ["webex-calling-basic", "webex-messaging"]);
    assert!(cat_errors.is_empty());
    let (_, dan_errors) = provisioned(&server, "dan@acme.example").await;
    assert!(
        dan_errors[0].1.contains("service 'Main auto attendant'"),
        "{dan_errors:?}"
    );

    // Who has Calling, who not and why, as CSV.
    let (status, _, users) = admin_http_with_head(
        server.admin,
        "GET",
        &format!("{base}/users?format=csv"),
        &[("Authorization", &format!("Bearer {}", server.ops_token()))],
        "",
    )
    .await;
    assert_eq!(status, 200);
    let line = |user: &str| {
        users
            .lines()
            .find(|l| l.starts_with(&format!("{user},")))
            .unwrap_or_else(|| panic!("{user} in {users}"))
            .to_string()
    };
    assert!(line("ann@acme.example").contains(",entitled,webex-calling-basic,,,"));
    assert!(line("cat@acme.example").contains(",entitled,webex-calling-basic,+12405550101,hq,"));
    assert!(line("bob@acme.example").contains(",withheld,,2405550101,,"));
    assert!(line("dan@acme.example").contains("Main auto attendant"));

    // bob's number fixed in BroadWorks: entitled with it; cat's number
    // changed in BroadWorks: cat keeps Calling and +12405550101.
    send(
        &server,
        &d,
        &[
            modify_number("bob@acme.example", "+12405550103"),
            modify_number("cat@acme.example", "+12405550199"),
        ],
    )
    .await;
    eventually(
        "bob entitled",
        std::time::Duration::from_secs(15),
        || async {
            let (_, v) = subscriber(&server, "bob@acme.example").await;
            let entitled = v["subscriber"]["status"] == "provisioned"
                && v["licenses"].as_array().is_some_and(|l| l.len() == 2);
            if entitled {
                Ok(v)
            } else {
                Err(v)
            }
        },
    )
    .await;
    let (_, bob_errors) = provisioned(&server, "bob@acme.example").await;
    assert!(bob_errors.is_empty(), "{bob_errors:?}");
    let (cat, _) = provisioned(&server, "cat@acme.example").await;
    assert_eq!(cat, ["webex-calling-basic", "webex-messaging"]);
    let (_, numbers) = operator(
        &server,
        "GET",
        &format!("{base}/numbers"),
        "application/json",
        "",
    )
    .await;
    let holder = |n: &str| {
        numbers["numbers"]
            .as_array()
            .expect("numbers")
            .iter()
            .find(|x| x["number"] == n)
            .map(|x| x["holder"].clone())
            .unwrap_or(Value::Null)
    };
    assert_eq!(
        holder("+12405550101")["userId"],
        "cat@acme.example",
        "{numbers}"
    );
    assert_eq!(
        holder("+12405550103")["userId"],
        "bob@acme.example",
        "{numbers}"
    );
    assert_eq!(holder("+12405550102")["name"], "Main auto attendant");
}

fn request_code(user: &str, device_type: &str) -> String {
    format!(
        "<RequestActivationCode><userId>{user}</userId><deviceType>{device_type}</deviceType>\
         </RequestActivationCode>"
    )
}

/// The 16-digit code in the message's text.
fn device_code_in(data: &str) -> String {
    let flat = data.replace("=\r\n", "").replace("=\n", "");
    let digits: Vec<String> = flat
        .split(|c: char| !c.is_ascii_digit())
        .filter(|run| run.len() == 16)
        .map(str::to_string)
        .collect();
    digits
        .first()
        .cloned()
        .unwrap_or_else(|| panic!("no code in {data}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webex_go_codes_are_emailed_to_professional_users_in_the_us_and_refused_otherwise() {
    let relay = crate::email::Relay::new();
    let receiver = relay.start(0, false);
    let server = Server::start_with(Some(&relay.smtp_config(receiver.port, false)), &[]);
    let d = demo(&server);
    // The organization's first user creates it; then its inventory.
    send(
        &server,
        &d,
        &[add_with_number("first@acme.example", "+12405550100")],
    )
    .await;
    let v = wait_status(&server, "first@acme.example", "provisioned").await;
    let org = v["organization"]["id"].as_str().expect("org").to_string();
    let base = format!("/admin/v1/organizations/{org}");
    let (status, _) = operator(
        &server,
        "PUT",
        &format!("{base}/calling/locations/hq"),
        "application/json",
        &json!({"name": "HQ", "country": "US"}).to_string(),
    )
    .await;
    assert_eq!(status, 201);
    let (status, body) = operator(
        &server,
        "POST",
        &format!("{base}/calling/locations/hq/numbers"),
        "text/csv",
        "number\n+12405550101\n+12405550102\n",
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let standard = add_with_number("ann@acme.example", "+12405550101")
        .replace("</AddUser>", "<package>standard</package></AddUser>");
    send(
        &server,
        &d,
        &[
            standard,
            add_with_number("bob@acme.example", "+12405550102"),
        ],
    )
    .await;
    wait_status(&server, "ann@acme.example", "provisioned").await;
    wait_status(&server, "bob@acme.example", "provisioned").await;

    // BroadWorks asks for ann's Webex Go code: emailed, 16 digits.
    send(&server, &d, &[request_code("ann@acme.example", "Webex Go")]).await;
    let got = crate::email::wait_messages(&receiver, 1, std::time::Duration::from_secs(20)).await;
    let mail = got[0]["data"].as_str().expect("data").to_string();
    assert_eq!(got[0]["rcpt_tos"], json!(["ann@acme.example"]));
    assert_eq!(
        crate::email::header(&mail, "X-Bwgate-Kind").as_deref(),
        Some("device_activation_code")
    );
    assert_eq!(
        crate::email::header(&mail, "Subject").as_deref(),
        Some("Your Webex Go activation code")
    );
    let code = device_code_in(&mail);

    // The operator asks for bob's (Basic: not Professional) and ann's
    // again by CSV; a user of no organization refuses the whole request.
    let (status, body) = operator(
        &server,
        "POST",
        &format!("{base}/devices"),
        "text/csv",
        "user_id,device_type,mac_address\nbob@acme.example,Webex Go,\nghost@acme.example,Webex Go,\n",
    )
    .await;
    assert_eq!(
        (status, &body["errors"][0]["errorCode"]),
        (404, &json!(9015)),
        "{body}"
    );
    let (status, body) = operator(
        &server,
        "POST",
        &format!("{base}/devices"),
        "text/csv",
        "user_id,device_type,mac_address\nbob@acme.example,Webex Go,\nann@acme.example,Webex Go,00:04:f2:aa:bb:cc\n",
    )
    .await;
    assert_eq!((status, &body["commands"]), (202, &json!(2)), "{body}");
    let bob = eventually(
        "bob's refusal",
        std::time::Duration::from_secs(15),
        || async {
            let (_, v) = subscriber(&server, "bob@acme.example").await;
            let refused = v["subscriber"]["errors"]
                .as_array()
                .is_some_and(|e| e.iter().any(|e| e["errorCode"] == 9044));
            if refused {
                Ok(v)
            } else {
                Err(v)
            }
        },
    )
    .await;
    let why = bob["subscriber"]["errors"].to_string();
    assert!(why.contains("Webex Calling Professional"), "{why}");
    assert_eq!(
        bob["subscriber"]["status"], "provisioned",
        "a device refusal leaves the user as it is"
    );
    let got = crate::email::wait_messages(&receiver, 2, std::time::Duration::from_secs(20)).await;
    assert_eq!(got.len(), 2, "bob gets no email");
    let second = device_code_in(got[1]["data"].as_str().expect("data"));
    assert_ne!(second, code, "a new request, a new code");

    let (status, _, csv) = admin_http_with_head(
        server.admin,
        "GET",
        &format!("{base}/devices?format=csv"),
        &[("Authorization", &format!("Bearer {}", server.ops_token()))],
        "",
    )
    .await;
    assert_eq!(status, 200);
    let rows: Vec<&str> = csv.lines().skip(1).collect();
    assert_eq!(rows.len(), 2, "{csv}");
    assert!(rows
        .iter()
        .all(|r| r.starts_with("ann@acme.example,") && r.contains(",Webex Go,")));
    assert!(rows.iter().any(|r| r.contains(",0004F2AABBCC,")), "{csv}");
    assert!(!csv.contains(&code), "codes are never stored");
}
