//! A partner admin manages its organizations' licenses with its admin
//! token, as the operator does: subscriptions, grants by hand, moves,
//! templates, the Webex Calling inventory and device codes; another
//! partner's organization answers 404 and changes nothing.

use serde_json::Value;

use crate::flowthrough::subscriber;
use crate::harness::Server;
use crate::partner::{api, code, config, population, portal, OTHER_TOKEN, SP_TOKEN};

async fn org_of(server: &Server, user: &str) -> String {
    let v = subscriber(server, user).await.1;
    v["organization"]["id"].as_str().expect("org").to_string()
}

/// `(status, JSON)` of a CSV upload with the partner's token.
async fn upload_csv(server: &Server, path: &str, csv: &str) -> (u16, Value) {
    let r = portal(
        server,
        "POST",
        path,
        Some(SP_TOKEN),
        None,
        Some(("text/csv", csv)),
    )
    .await;
    (
        r.status.as_u16(),
        serde_json::from_slice(&r.body).unwrap_or(Value::Null),
    )
}

/// The (source, sourceRef, subscriptionId) of `user`'s `license`.
fn holding(v: &Value, user: &str, license: &str) -> Option<(String, String, String)> {
    v["holders"].as_array()?.iter().find_map(|h| {
        (h["userId"] == user && h["license"] == license).then(|| {
            let s = |k: &str| h[k].as_str().unwrap_or("").to_string();
            (s("source"), s("sourceRef"), s("subscriptionId"))
        })
    })
}

#[tokio::test]
async fn a_partner_admin_manages_its_organizations_licenses_and_no_one_elses() {
    let server = Server::start_with(Some(&config()), &[]);
    population(&server).await;
    let acme = org_of(&server, "ann@acme.example").await;
    let other = org_of(&server, "oz@other.example").await;
    let base = format!("/partner/v1/organizations/{acme}");

    // Subscriptions are the operator's (the commercial side): a partner
    // reads them but may not add or change one (9045, nothing stored).
    let (status, v) = api(
        &server,
        "PUT",
        &format!("{base}/subscriptions/acme-3"),
        SP_TOKEN,
        Some(r#"{"startsAt":"2026-01-01","quantities":{"webex-meetings-basic":500}}"#),
    )
    .await;
    assert_eq!((status, code(&v)), (403, 9045), "{v}");
    // With room for the package licenses the users hold: the organization
    // is metered from now on.
    for (id, start) in [("acme-1", "2026-01-01"), ("acme-2", "2026-06-01")] {
        let (status, body) = server
            .admin_json(
                "PUT",
                &format!("/admin/v1/organizations/{acme}/subscriptions/{id}"),
                &format!(
                    r#"{{"startsAt":"{start}","quantities":{{"webex-meetings-basic":5,"webex-calling-basic":5,"webex-messaging":5}}}}"#
                ),
            )
            .await;
        assert_eq!(status, 201, "{body}");
    }

    // A license by hand: the record names the partner, whatever `by` says.
    let (status, v) = api(
        &server,
        "POST",
        &format!("{base}/licenses/grant"),
        SP_TOKEN,
        Some(r#"{"users":["ann@acme.example"],"licenses":["webex-meetings-basic"],"by":"pat"}"#),
    )
    .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["changed"], serde_json::json!(["ann@acme.example"]), "{v}");
    let (_, holders) = api(&server, "GET", &format!("{base}/licenses"), SP_TOKEN, None).await;
    assert_eq!(
        holding(&holders, "ann@acme.example", "webex-meetings-basic"),
        Some(("admin".into(), "partner:sp:pat".into(), "acme-1".into())),
        "{holders}"
    );

    // A move by CSV, to the newer subscription.
    let (status, v) = upload_csv(
        &server,
        &format!("{base}/subscriptions/acme-1/move"),
        "user_id,to_subscription\nann@acme.example,acme-2\n",
    )
    .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["moved"][0]["userId"], "ann@acme.example", "{v}");
    let (_, v) = api(
        &server,
        "GET",
        &format!("{base}/subscriptions"),
        SP_TOKEN,
        None,
    )
    .await;
    let assigned = |id: &str| {
        v["subscriptions"]
            .as_array()
            .and_then(|l| l.iter().find(|s| s["id"] == id))
            .map(|s| s["assigned"]["webex-meetings-basic"].as_u64().unwrap_or(0))
    };
    assert_eq!(
        (assigned("acme-1"), assigned("acme-2")),
        (Some(0), Some(1)),
        "{v}"
    );
    assert!(assigned("acme-3").is_none(), "the partner's: {v}");

    // A bad document: 9017, and nothing stored.
    let (status, v) = api(
        &server,
        "PUT",
        &format!("{base}/license-templates/organization"),
        SP_TOKEN,
        Some(r#"{"licenses":["no such license!"]}"#),
    )
    .await;
    assert_eq!((status, code(&v)), (400, 9017), "{v}");
    // The organization's template, applied to existing users.
    let (status, v) = api(
        &server,
        "PUT",
        &format!("{base}/license-templates/organization"),
        SP_TOKEN,
        Some(r#"{"licenses":["webex-meetings-basic"]}"#),
    )
    .await;
    assert_eq!(status, 200, "{v}");
    let (status, v) = api(
        &server,
        "POST",
        &format!("{base}/license-templates/apply"),
        SP_TOKEN,
        None,
    )
    .await;
    assert_eq!(status, 200, "{v}");
    assert!(v["changed"].as_u64().unwrap_or(0) >= 1, "{v}");
    let (_, holders) = api(&server, "GET", &format!("{base}/licenses"), SP_TOKEN, None).await;
    assert_eq!(
        holding(&holders, "bob@acme.example", "webex-meetings-basic").map(|h| h.0),
        Some("template".into()),
        "{holders}"
    );

    // The Webex Calling inventory.
    let (status, v) = api(
        &server,
        "PUT",
        &format!("{base}/calling/locations/hq"),
        SP_TOKEN,
        Some(r#"{"name":"HQ","country":"US"}"#),
    )
    .await;
    assert_eq!(status, 201, "{v}");
    let (status, v) = upload_csv(
        &server,
        &format!("{base}/calling/locations/hq/numbers"),
        "number\n+12025550100\n+12025550101\n",
    )
    .await;
    assert_eq!((status, &v["added"]), (200, &Value::from(2)), "{v}");
    // A bulk upload larger than a form: read for the partner's token
    // only (without one, refused before the body is read).
    let many: String = std::iter::once("number".to_string())
        .chain((0..1500).map(|i| format!("+1303555{i:04}")))
        .collect::<Vec<_>>()
        .join("\n");
    assert!(many.len() > 16 * 1024);
    let r = portal(
        &server,
        "POST",
        &format!("{base}/calling/locations/hq/numbers"),
        None,
        None,
        Some(("text/csv", &many)),
    )
    .await;
    assert_eq!(r.status.as_u16(), 401);
    let (status, v) = upload_csv(
        &server,
        &format!("{base}/calling/locations/hq/numbers"),
        &many,
    )
    .await;
    assert_eq!((status, &v["added"]), (200, &Value::from(1500)), "{v}");
    let r = portal(
        &server,
        "GET",
        &format!("{base}/calling/numbers?format=csv"),
        Some(SP_TOKEN),
        None,
        None,
    )
    .await;
    let csv = String::from_utf8_lossy(&r.body).to_string();
    assert_eq!(
        (r.status.as_u16(), csv.lines().count()),
        (200, 1503),
        "{csv}"
    );
    let (status, v) = api(
        &server,
        "GET",
        &format!("{base}/calling/users"),
        SP_TOKEN,
        None,
    )
    .await;
    assert_eq!(status, 200, "{v}");
    assert!(v["entitled"].is_array() && v["withheld"].is_array(), "{v}");

    // Device codes: a bad row refuses the whole request; a good one goes
    // to the core.
    let (status, v) = upload_csv(
        &server,
        &format!("{base}/devices"),
        "user_id,device_type,mac_address\nann@acme.example,,not-a-mac\n",
    )
    .await;
    assert_eq!((status, code(&v)), (400, 9017), "{v}");
    let (status, v) = api(
        &server,
        "POST",
        &format!("{base}/devices"),
        SP_TOKEN,
        Some(r#"{"devices":[{"userId":"ann@acme.example"}]}"#),
    )
    .await;
    assert_eq!((status, &v["requested"]), (202, &Value::from(1)), "{v}");

    // Another partner's token on acme, or this partner on another's
    // organization: 404 like an unknown one, and nothing changes.
    for (method, path, token, body) in [
        (
            "PUT",
            format!("{base}/license-templates/organization"),
            OTHER_TOKEN,
            r#"{"licenses":[]}"#,
        ),
        (
            "POST",
            format!("{base}/licenses/revoke"),
            OTHER_TOKEN,
            r#"{"users":["ann@acme.example"],"licenses":["webex-meetings-basic"],"by":"x"}"#,
        ),
        (
            "PUT",
            format!("/partner/v1/organizations/{other}/license-templates/organization"),
            SP_TOKEN,
            r#"{"licenses":["webex-meetings-basic"]}"#,
        ),
        (
            "POST",
            format!("/partner/v1/organizations/{other}/devices"),
            SP_TOKEN,
            r#"{"devices":[{"userId":"oz@other.example"}]}"#,
        ),
    ] {
        let (status, v) = api(&server, method, &path, token, Some(body)).await;
        assert_eq!((status, code(&v)), (404, 9015), "{method} {path}: {v}");
    }
    let (_, v) = api(
        &server,
        "GET",
        &format!("{base}/license-templates"),
        SP_TOKEN,
        None,
    )
    .await;
    assert_eq!(
        v["organizationTemplate"],
        serde_json::json!(["webex-meetings-basic"]),
        "{v}"
    );
    let (_, holders) = api(&server, "GET", &format!("{base}/licenses"), SP_TOKEN, None).await;
    assert!(
        holding(&holders, "ann@acme.example", "webex-meetings-basic").is_some(),
        "{holders}"
    );
    let (status, body) = server
        .admin_get(&format!(
            "/admin/v1/organizations/{other}/license-templates"
        ))
        .await;
    assert_eq!(status, 200, "{body}");
    assert!(!body.contains("webex-meetings-basic"), "{body}");
}

/// `(status, JSON)` of a workspace request with `token`.
async fn workspace_call(
    server: &Server,
    method: &str,
    path: &str,
    token: &str,
    body: Option<&str>,
) -> (u16, Value) {
    api(server, method, path, token, body).await
}

async fn workspace_status(server: &Server, id: &str, want: &str) -> Value {
    crate::harness::eventually(
        format!("workspace {id} {want}"),
        std::time::Duration::from_secs(20),
        || async {
            let (status, v) = workspace_call(
                server,
                "GET",
                &format!("/v1/broadworks/workspaces/{id}"),
                SP_TOKEN,
                None,
            )
            .await;
            if status == 200 && v["status"] == want {
                Ok(v)
            } else {
                Err((status, v))
            }
        },
    )
    .await
}

#[tokio::test]
async fn workspaces_are_provisioned_at_ciscos_path_and_move_between_subscriptions() {
    let server = Server::start_with(Some(&config()), &[]);
    population(&server).await;
    let acme = org_of(&server, "ann@acme.example").await;
    let (status, body) = server
        .admin_json(
            "PUT",
            &format!("/admin/v1/organizations/{acme}/subscriptions/old"),
            r#"{"startsAt":"2026-01-01","quantities":{"webex-workspace":1,"webex-calling-basic":9,"webex-messaging":9}}"#,
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let (status, body) = server
        .admin_json(
            "PUT",
            &format!("/admin/v1/organizations/{acme}/subscriptions/new"),
            r#"{"startsAt":"2026-02-01","quantities":{"webex-workspace":3}}"#,
        )
        .await;
    assert_eq!(status, 201, "{body}");

    // Cisco's request; Cisco's answer (plus bwgate's status).
    let (status, v) = workspace_call(
        &server,
        "POST",
        "/v1/broadworks/workspaces",
        SP_TOKEN,
        Some(
            r#"{"provisioningId":"sp-trusted","userId":"room1@acme.example","spEnterpriseId":"acme",
                "displayName":"Conference Room","primaryPhoneNumber":"+1-240-555-1212","extension":"51212"}"#,
        ),
    )
    .await;
    assert_eq!(status, 200, "{v}");
    let id = v["id"].as_str().expect("id").to_string();
    assert_eq!(
        (
            &v["userId"],
            &v["spEnterpriseId"],
            &v["displayName"],
            &v["primaryPhoneNumber"],
            &v["extension"]
        ),
        (
            &Value::from("room1@acme.example"),
            &Value::from("acme"),
            &Value::from("Conference Room"),
            &Value::from("+12405551212"),
            &Value::from("51212")
        ),
        "{v}"
    );
    assert!(
        v["created"].as_str().is_some_and(|c| c.ends_with('Z')),
        "{v}"
    );
    workspace_status(&server, &id, "provisioned").await;

    // Its license, from the older subscription, in the holders report.
    let base = format!("/partner/v1/organizations/{acme}");
    let (_, holders) = api(&server, "GET", &format!("{base}/licenses"), SP_TOKEN, None).await;
    assert_eq!(
        holding(&holders, "room1@acme.example", "webex-workspace"),
        Some(("package".into(), "workspace".into(), "old".into())),
        "{holders}"
    );
    // A second room: none left on `old`, so from `new`.
    let (status, v) = workspace_call(
        &server,
        "POST",
        "/v1/broadworks/workspaces",
        SP_TOKEN,
        Some(r#"{"provisioningId":"sp-trusted","userId":"room2@acme.example","spEnterpriseId":"acme","displayName":"Lobby"}"#),
    )
    .await;
    assert_eq!(status, 200, "{v}");
    let lobby = v["id"].as_str().expect("id").to_string();
    workspace_status(&server, &lobby, "provisioned").await;
    // Its user id is not a new subscriber's.
    let resp = crate::flowthrough::post(
        &server,
        "/uc-one/v1/provisioning/sp-trusted",
        Some(&crate::partner::basic()),
        crate::flowthrough::document(
            None,
            &[crate::flowthrough::add_user(
                "room2@acme.example",
                "acme",
                Some("room2@acme.example"),
            )],
        ),
        "application/xml",
    )
    .await;
    assert!(resp.text().contains("10022"), "{}", resp.text());

    // A move by CSV takes the workspace like a user.
    let (status, v) = upload_csv(
        &server,
        &format!("{base}/subscriptions/old/move"),
        "user_id,to_subscription\nroom1@acme.example,new\n",
    )
    .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["moved"][0]["userId"], "room1@acme.example", "{v}");
    let (_, holders) = api(&server, "GET", &format!("{base}/licenses"), SP_TOKEN, None).await;
    assert_eq!(
        holding(&holders, "room1@acme.example", "webex-workspace").map(|h| h.2),
        Some("new".into()),
        "{holders}"
    );

    // Refusals: a taken user id, another partner's template, a bad
    // number, a missing name; another partner's token sees nothing.
    for (body, status, code_) in [
        (
            r#"{"provisioningId":"sp-trusted","userId":"ann@acme.example","spEnterpriseId":"acme","displayName":"X"}"#,
            409,
            10022,
        ),
        (
            r#"{"provisioningId":"other-t","userId":"room9@acme.example","spEnterpriseId":"acme","displayName":"X"}"#,
            404,
            9003,
        ),
        (
            r#"{"provisioningId":"sp-trusted","userId":"room9@acme.example","spEnterpriseId":"nope","displayName":"X"}"#,
            404,
            9015,
        ),
        (
            r#"{"provisioningId":"sp-trusted","userId":"room9@acme.example","spEnterpriseId":"acme","displayName":"X","primaryPhoneNumber":"call me"}"#,
            400,
            9002,
        ),
        (
            r#"{"provisioningId":"sp-trusted","userId":"room9@acme.example","spEnterpriseId":"acme"}"#,
            400,
            1001,
        ),
    ] {
        let (s, v) = workspace_call(
            &server,
            "POST",
            "/v1/broadworks/workspaces",
            SP_TOKEN,
            Some(body),
        )
        .await;
        assert_eq!((s, code(&v)), (status, code_), "{body}: {v}");
    }
    for method in ["GET", "DELETE"] {
        let (s, v) = workspace_call(
            &server,
            method,
            &format!("/v1/broadworks/workspaces/{id}"),
            OTHER_TOKEN,
            None,
        )
        .await;
        assert_eq!((s, code(&v)), (404, 9015), "{method}: {v}");
    }
    let (s, _) = workspace_call(
        &server,
        "PATCH",
        "/v1/broadworks/workspaces",
        SP_TOKEN,
        None,
    )
    .await;
    assert_eq!(s, 405);

    // An update (its license stays), then removal: the license goes back.
    let (status, v) = workspace_call(
        &server,
        "PUT",
        &format!("/v1/broadworks/workspaces/{id}"),
        SP_TOKEN,
        Some(r#"{"userId":"boardroom@acme.example","extension":"51213"}"#),
    )
    .await;
    assert_eq!(
        (status, &v["userId"]),
        (200, &Value::from("boardroom@acme.example")),
        "{v}"
    );
    workspace_status(&server, &id, "provisioned").await;
    let r = portal(
        &server,
        "DELETE",
        &format!("/v1/broadworks/workspaces/{id}"),
        Some(SP_TOKEN),
        None,
        None,
    )
    .await;
    assert_eq!(r.status.as_u16(), 204);
    workspace_status(&server, &id, "removed").await;
    crate::harness::eventually(
        "the workspace license freed",
        std::time::Duration::from_secs(20),
        || async {
            let (_, v) = api(
                &server,
                "GET",
                &format!("{base}/subscriptions"),
                SP_TOKEN,
                None,
            )
            .await;
            let new = v["subscriptions"]
                .as_array()
                .and_then(|l| l.iter().find(|s| s["id"] == "new"))
                .map(|s| s["assigned"]["webex-workspace"].as_u64().unwrap_or(0));
            if new == Some(1) {
                Ok(())
            } else {
                Err(v)
            }
        },
    )
    .await;
}
