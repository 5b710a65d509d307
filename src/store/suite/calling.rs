//! Webex Calling on any store: a Calling license only with an E.164 number
//! pre-provisioned in one of the organization's locations and free;
//! otherwise the user is provisioned without it and 9043 says why; an
//! entitled user keeps its number; the inventory's admin rules.

use super::*;
use crate::commands::{Command, CommandEnvelope};
use crate::domain::calling::{CallingLocation, NumberHolder};
use crate::domain::phone::DirectoryNumber;
use crate::domain::{ErrorCode, Package};
use crate::license::admin::{LicenseAdmin, LicenseAdminError, Place};
use crate::license::calling_admin::NumberEntry;
use crate::license::{Granted, LicenseCore, LicenseError, LicensePolicy, LocalLicenseCore};

const CALLING: &str = "webex-calling-basic";
const MESSAGING: &str = "webex-messaging";

fn admin(fx: &Fixture) -> LicenseAdmin {
    LicenseAdmin::new(fx.store.clone(), LicensePolicy::default(), Place::Gateway)
}

fn core(fx: &Fixture) -> std::sync::Arc<LocalLicenseCore> {
    LocalLicenseCore::new(fx.store.clone(), LicensePolicy::default())
}

/// Users of one enterprise, each provisioned with its own number: the
/// organization's id and the `ProvisionSubscriber` commands, in order.
async fn org_with_numbers(
    fx: &Fixture,
    service_provider: &str,
    users: &[(&str, Option<&str>)],
) -> (String, Vec<CommandEnvelope>) {
    let t = template(fx, "tpl", true, true).await;
    let ops = users
        .iter()
        .map(|(u, _)| add(u, service_provider, "G1", Some(u)))
        .collect();
    accept(fx, &t, &format!("T-{service_provider}"), ops).await;
    let mut commands: Vec<CommandEnvelope> = outbox(fx)
        .await
        .into_iter()
        .map(|e| e.envelope)
        .filter(|e| matches!(&e.command, Command::ProvisionSubscriber { user_id, .. } if users.iter().any(|(u, _)| *u == user_id.as_str())))
        .collect();
    assert_eq!(commands.len(), users.len());
    let mut org = String::new();
    for (env, (_, number)) in commands.iter_mut().zip(users) {
        let Command::ProvisionSubscriber {
            phone_number,
            org_id,
            ..
        } = &mut env.command
        else {
            unreachable!()
        };
        *phone_number = number.map(|n| DirectoryNumber::parse(n).expect("number"));
        org = org_id.clone();
    }
    (org, commands)
}

/// A command about the subscriber `provision` provisioned.
fn about(
    provision: &CommandEnvelope,
    key: &str,
    command: impl FnOnce(String, String) -> Command,
) -> CommandEnvelope {
    let Command::ProvisionSubscriber {
        subscriber_id,
        org_id,
        ..
    } = &provision.command
    else {
        panic!("not a provision");
    };
    CommandEnvelope {
        idempotency_key: key.into(),
        command: command(subscriber_id.clone(), org_id.clone()),
        ..provision.clone()
    }
}

fn update(provision: &CommandEnvelope, key: &str, number: &str) -> CommandEnvelope {
    about(provision, key, |subscriber_id, org_id| {
        Command::UpdateSubscriber {
            subscriber_id,
            org_id,
            email: None,
            first_name: "Alice".into(),
            last_name: "Smith".into(),
            phone_number: DirectoryNumber::parse(number).ok(),
            extension: None,
            mobile_phone_number: None,
            language: None,
            time_zone: None,
            subscriber_version: 2,
            group_id: None,
        }
    })
}

fn package(
    provision: &CommandEnvelope,
    key: &str,
    package: Package,
    number: Option<&str>,
) -> CommandEnvelope {
    about(provision, key, |subscriber_id, org_id| {
        Command::ChangePackage {
            subscriber_id,
            org_id,
            package,
            subscriber_version: 3,
            user_id: None,
            group_id: None,
            // None: a command from before the field (the number last seen).
            phone_number: number.map(|n| DirectoryNumber::parse(n).ok()),
        }
    })
}

fn remove(provision: &CommandEnvelope, key: &str) -> CommandEnvelope {
    about(provision, key, |subscriber_id, org_id| {
        Command::RemoveSubscriber {
            subscriber_id,
            org_id,
            subscriber_version: 4,
        }
    })
}

/// Per command: the notice's code (`Some(9043)`: Calling withheld), or
/// `None` when applied without one. A refusal fails the test.
fn notices(results: &[Result<Granted, LicenseError>]) -> Vec<Option<u32>> {
    results
        .iter()
        .map(|r| match r {
            Ok(g) => g.notice.as_ref().map(|n| n.code.code()),
            Err(e) => panic!("unexpected {e}"),
        })
        .collect()
}

fn reason(result: &Result<Granted, LicenseError>) -> String {
    match result {
        Ok(Granted {
            notice: Some(n), ..
        }) => n.message().to_string(),
        other => panic!("no notice: {other:?}"),
    }
}

/// The user's licenses, sorted.
async fn licenses_of(fx: &Fixture, org: &str, user: &str) -> Vec<String> {
    let mut out: Vec<String> = fx
        .license_holders(org)
        .await
        .expect("holders")
        .into_iter()
        .filter(|r| r.user_id == user)
        .map(|r| r.holding.license)
        .collect();
    out.sort();
    out
}

async fn holder_of(admin: &LicenseAdmin, org: &str, number: &str) -> Option<NumberHolder> {
    admin
        .numbers(org)
        .await
        .expect("numbers")
        .into_iter()
        .find(|n| n.number.as_str() == number)
        .expect("number listed")
        .holder
}

fn entry(number: &str, service: Option<&str>) -> NumberEntry {
    NumberEntry {
        number: number.into(),
        service: service.map(str::to_string),
    }
}

async fn inventory(admin: &LicenseAdmin, org: &str) {
    let hq = CallingLocation {
        id: "hq".into(),
        name: "Head office".into(),
        country: "us".into(),
    };
    assert!(admin.put_location(org, hq, NOW).await.expect("location"));
    let added = admin
        .add_numbers(
            org,
            "hq",
            vec![
                entry("+1 240 555 0001", None),
                entry("+12405550002", None),
                entry("+12405550003", Some("Main auto attendant")),
            ],
            NOW,
        )
        .await
        .expect("numbers");
    assert_eq!((added.added, added.unchanged), (3, 0));
}

fn user_holder(user: &str) -> impl Fn(&Option<NumberHolder>) -> bool + '_ {
    move |h| matches!(h, Some(NumberHolder::User { user_id, .. }) if user_id == user)
}

pub(crate) async fn calling_needs_a_free_number_of_the_organizations_locations(
    factory: &dyn StoreFactory,
) {
    let fx = fixture(factory).await;
    let (org, commands) = org_with_numbers(
        &fx,
        "SP1",
        &[
            ("a@acme.example", Some("+12405550001")),
            ("b@acme.example", Some("+12405550001")),
            ("c@acme.example", Some("240-555-0002")),
            ("d@acme.example", Some("+12405550003")),
            ("e@acme.example", Some("+12405559999")),
            ("f@acme.example", None),
        ],
    )
    .await;
    let admin = admin(&fx);
    inventory(&admin, &org).await;
    let core = core(&fx);

    let results = core.apply_in_order(&commands).await;
    let withheld = Some(ErrorCode::CallingWithheld.code());
    assert_eq!(
        notices(&results),
        [None, withheld, withheld, withheld, withheld, withheld]
    );
    for (i, words) in [
        (1, "assigned to another user (a@acme.example)"),
        (2, "'2405550002' is not E.164"),
        (3, "assigned to the service 'Main auto attendant'"),
        (4, "is not a number of any of organization"),
        (5, "has no phone number"),
    ] {
        assert!(
            reason(&results[i]).contains(words),
            "{i}: {}",
            reason(&results[i])
        );
    }
    // Provisioned all the same, with everything but Calling.
    assert_eq!(
        licenses_of(&fx, &org, "a@acme.example").await,
        [CALLING, MESSAGING]
    );
    for u in ["b", "c", "d", "e", "f"] {
        assert_eq!(
            licenses_of(&fx, &org, &format!("{u}@acme.example")).await,
            [MESSAGING],
            "{u}"
        );
    }
    assert!(user_holder("a@acme.example")(
        &holder_of(&admin, &org, "+12405550001").await
    ));
    assert_eq!(holder_of(&admin, &org, "+12405550002").await, None);

    // A redelivery answers the same and changes nothing.
    let before = snapshot(&fx).await;
    assert_eq!(
        notices(&core.apply_in_order(&commands).await),
        notices(&results)
    );
    assert_eq!(snapshot(&fx).await, before);

    let report = admin.calling_report(&org).await.expect("report");
    let entitled: Vec<(&str, Option<&str>)> = report
        .entitled
        .iter()
        .map(|u| (u.user_id.as_str(), u.number.as_ref().map(|n| n.as_str())))
        .collect();
    assert_eq!(entitled, [("a@acme.example", Some("+12405550001"))]);
    let withheld_users: Vec<&str> = report.withheld.iter().map(|w| w.user_id.as_str()).collect();
    assert_eq!(
        withheld_users,
        [
            "b@acme.example",
            "c@acme.example",
            "d@acme.example",
            "e@acme.example",
            "f@acme.example"
        ]
    );
    assert_eq!(
        report.withheld[1].directory_number.as_deref(),
        Some("2405550002")
    );

    // c's number fixed in BroadWorks: entitled now, with it.
    let fixed = core
        .apply_in_order(&[update(&commands[2], "c-upd", "+1 240 555 0002")])
        .await;
    assert_eq!(notices(&fixed), [None]);
    assert_eq!(
        licenses_of(&fx, &org, "c@acme.example").await,
        [CALLING, MESSAGING]
    );
    assert!(user_holder("c@acme.example")(
        &holder_of(&admin, &org, "+12405550002").await
    ));
    // An entitled user is not provisioned again when its number changes:
    // a keeps +12405550001.
    let moved = core
        .apply_in_order(&[update(&commands[0], "a-upd", "+12405559999")])
        .await;
    assert_eq!(notices(&moved), [None]);
    assert!(user_holder("a@acme.example")(
        &holder_of(&admin, &org, "+12405550001").await
    ));
    // A package change decides again for b: still a's number.
    let standard = core
        .apply_in_order(&[package(
            &commands[1],
            "b-std",
            Package::Standard,
            Some("+12405550001"),
        )])
        .await;
    assert_eq!(notices(&standard), [withheld]);
    assert_eq!(
        licenses_of(&fx, &org, "b@acme.example").await,
        ["webex-meetings-basic", MESSAGING]
    );
    // a removed: its number is free, and b's next package change (no
    // number in the command: the one last seen) takes it.
    assert_eq!(
        notices(&core.apply_in_order(&[remove(&commands[0], "a-rm")]).await),
        [None]
    );
    assert_eq!(holder_of(&admin, &org, "+12405550001").await, None);
    let basic = core
        .apply_in_order(&[package(&commands[1], "b-basic", Package::Basic, None)])
        .await;
    assert_eq!(notices(&basic), [None]);
    assert_eq!(
        licenses_of(&fx, &org, "b@acme.example").await,
        [CALLING, MESSAGING]
    );
    assert!(user_holder("b@acme.example")(
        &holder_of(&admin, &org, "+12405550001").await
    ));
    let report = admin.calling_report(&org).await.expect("report");
    let withheld_users: Vec<&str> = report.withheld.iter().map(|w| w.user_id.as_str()).collect();
    assert_eq!(
        withheld_users,
        ["d@acme.example", "e@acme.example", "f@acme.example"]
    );
    // e's number is added to the inventory, but BroadWorks removed it
    // from e meanwhile (an extension only): no number, no Calling.
    admin
        .add_numbers(&org, "hq", vec![entry("+12405559999", None)], NOW)
        .await
        .expect("e's number");
    let cleared = about(&commands[4], "e-upd", |subscriber_id, org_id| {
        Command::UpdateSubscriber {
            subscriber_id,
            org_id,
            email: None,
            first_name: "Alice".into(),
            last_name: "Smith".into(),
            phone_number: None,
            extension: Some("1212".into()),
            mobile_phone_number: None,
            language: None,
            time_zone: None,
            subscriber_version: 2,
            group_id: None,
        }
    });
    let still = core.apply_in_order(&[cleared]).await;
    assert!(
        reason(&still[0]).contains("has no phone number"),
        "{still:?}"
    );
    assert_eq!(licenses_of(&fx, &org, "e@acme.example").await, [MESSAGING]);
}

pub(crate) async fn an_organization_without_locations_needs_only_an_e164_number(
    factory: &dyn StoreFactory,
) {
    let fx = fixture(factory).await;
    let (org, commands) = org_with_numbers(
        &fx,
        "SP1",
        &[
            ("a@acme.example", Some("+12405550001")),
            ("b@acme.example", Some("+12405550001")),
            ("c@acme.example", Some("2405550002")),
        ],
    )
    .await;
    let results = core(&fx).apply_in_order(&commands).await;
    // Numbers kept elsewhere: not checked against anything here.
    assert_eq!(
        notices(&results),
        [None, None, Some(ErrorCode::CallingWithheld.code())]
    );
    assert_eq!(
        licenses_of(&fx, &org, "b@acme.example").await,
        [CALLING, MESSAGING]
    );
    assert_eq!(licenses_of(&fx, &org, "c@acme.example").await, [MESSAGING]);
    let report = admin(&fx).calling_report(&org).await.expect("report");
    assert_eq!(report.entitled.len(), 2);
    assert!(report.entitled.iter().all(|u| u.number.is_none()));
    assert_eq!(report.withheld.len(), 1);
}

pub(crate) async fn numbers_are_added_all_or_nothing_to_one_organizations_location(
    factory: &dyn StoreFactory,
) {
    let fx = fixture(factory).await;
    let (org, commands) =
        org_with_numbers(&fx, "SP1", &[("a@acme.example", Some("+12405550001"))]).await;
    let (other, _) = org_with_numbers(&fx, "SP2", &[("z@acme.example", None)]).await;
    assert_ne!(org, other);
    let admin = admin(&fx);
    inventory(&admin, &org).await;
    core(&fx).apply_in_order(&commands).await;
    let branch = CallingLocation {
        id: "branch".into(),
        name: "Branch".into(),
        country: "GB".into(),
    };
    assert!(admin
        .put_location(&org, branch.clone(), NOW)
        .await
        .expect("branch"));
    assert!(
        !admin.put_location(&org, branch, NOW).await.expect("again"),
        "renamed, not added"
    );
    let z_hq = CallingLocation {
        id: "hq".into(),
        name: "Z".into(),
        country: "DE".into(),
    };
    admin
        .put_location(&other, z_hq, NOW)
        .await
        .expect("other's");

    fn code<T: std::fmt::Debug>(r: Result<T, LicenseAdminError>) -> (ErrorCode, String) {
        match r {
            Err(LicenseAdminError::Refused(r)) => (r.code, r.message().to_string()),
            other => panic!("not refused: {other:?}"),
        }
    }
    let before = snapshot(&fx).await;
    for (org_id, location, entries, want) in [
        (
            &org,
            "branch",
            vec![entry("+442079460001", None), entry("07946 0002", None)],
            ErrorCode::InvalidPhoneNumber,
        ),
        (
            &org,
            "branch",
            vec![
                entry("+442079460001", None),
                entry("+44 20 7946 0001", None),
            ],
            ErrorCode::InvalidParameterValue,
        ),
        (
            &org,
            "nowhere",
            vec![entry("+442079460001", None)],
            ErrorCode::NotFound,
        ),
        // In hq already.
        (
            &org,
            "branch",
            vec![entry("+442079460001", None), entry("+12405550002", None)],
            ErrorCode::NumberAlreadyAssigned,
        ),
        // Another organization's.
        (
            &other,
            "hq",
            vec![entry("+12405550002", None)],
            ErrorCode::NumberAlreadyAssigned,
        ),
        // a's number cannot be a service's.
        (
            &org,
            "hq",
            vec![entry("+12405550001", Some("Hunt group"))],
            ErrorCode::NumberAlreadyAssigned,
        ),
        (&org, "hq", vec![], ErrorCode::MissingParameter),
    ] {
        let (got, why) = code(admin.add_numbers(org_id, location, entries, NOW).await);
        assert_eq!(got, want, "{location}: {why}");
    }
    assert_eq!(
        snapshot(&fx).await,
        before,
        "a refused request changes nothing"
    );
    let bad_country = CallingLocation {
        id: "x".into(),
        name: "X".into(),
        country: "USA".into(),
    };
    assert_eq!(
        code(admin.put_location(&org, bad_country, NOW).await).0,
        ErrorCode::InvalidParameterValue
    );

    // Listed again as they are: unchanged; a free one given to a service.
    let again = admin
        .add_numbers(
            &org,
            "hq",
            vec![
                entry("+12405550001", None),
                entry("+12405550003", Some("Main auto attendant")),
                entry("+12405550002", Some("Hunt group")),
            ],
            NOW,
        )
        .await
        .expect("again");
    assert_eq!((again.added, again.unchanged), (1, 2));
    assert_eq!(
        holder_of(&admin, &org, "+12405550002").await,
        Some(NumberHolder::Service {
            name: "Hunt group".into()
        })
    );
    let locations = admin.locations(&org).await.expect("locations");
    let counts: Vec<(&str, &str, usize, usize)> = locations
        .iter()
        .map(|l| {
            (
                l.location.id.as_str(),
                l.location.country.as_str(),
                l.numbers,
                l.free,
            )
        })
        .collect();
    assert_eq!(counts, [("branch", "GB", 0, 0), ("hq", "US", 3, 0)]);
}

pub(crate) async fn two_cores_never_give_one_number_to_two_users(factory: &dyn StoreFactory) {
    let fx = fixture(factory).await;
    let users: Vec<String> = (0..8).map(|i| format!("u{i}@acme.example")).collect();
    let with_numbers: Vec<(&str, Option<&str>)> = users
        .iter()
        .map(|u| (u.as_str(), Some("+12405550002")))
        .collect();
    let (org, commands) = org_with_numbers(&fx, "SP1", &with_numbers).await;
    let admin = admin(&fx);
    inventory(&admin, &org).await;
    let mut tasks = Vec::new();
    for half in 0..2 {
        let mine: Vec<CommandEnvelope> = commands.iter().skip(half).step_by(2).cloned().collect();
        let core = core(&fx);
        tasks.push(tokio::spawn(async move {
            let mut out = Vec::new();
            for env in mine {
                out.extend(core.apply_in_order(std::slice::from_ref(&env)).await);
            }
            notices(&out)
        }));
    }
    let mut entitled = 0;
    for t in tasks {
        entitled += t
            .await
            .expect("task")
            .iter()
            .filter(|n| n.is_none())
            .count();
    }
    assert_eq!(entitled, 1, "one number, one user");
    let report = admin.calling_report(&org).await.expect("report");
    assert_eq!(report.entitled.len(), 1);
    assert_eq!(report.withheld.len(), 7);
    let holder = holder_of(&admin, &org, "+12405550002").await;
    assert!(user_holder(&report.entitled[0].user_id)(&holder));
}

fn device(provision: &CommandEnvelope, key: &str, device_type: &str) -> CommandEnvelope {
    let Command::ProvisionSubscriber { user_id, .. } = &provision.command else {
        panic!("not a provision");
    };
    let user_id = user_id.clone();
    about(provision, key, |subscriber_id, org_id| {
        Command::IssueActivationCode {
            subscriber_id,
            org_id: Some(org_id),
            user_id,
            device_type: Some(device_type.into()),
            mac_address: None,
        }
    })
}

pub(crate) async fn devices_need_calling_and_webex_go_needs_professional_in_the_us_or_uk(
    factory: &dyn StoreFactory,
) {
    use crate::domain::device::{DEVICE_CODE_DAYS, WEBEX_GO_CODE_DAYS};
    let fx = fixture(factory).await;
    let (org, commands) = org_with_numbers(
        &fx,
        "SP1",
        &[
            ("basic@acme.example", Some("+12405550001")),
            ("us@acme.example", Some("+12405550002")),
            ("uk@acme.example", Some("+442079460001")),
            ("de@acme.example", Some("+493012345601")),
            ("none@acme.example", Some("2405550009")),
        ],
    )
    .await;
    let admin = admin(&fx);
    inventory(&admin, &org).await;
    for (id, country, number) in [
        ("london", "GB", "+442079460001"),
        ("berlin", "DE", "+493012345601"),
    ] {
        let location = CallingLocation {
            id: id.into(),
            name: id.into(),
            country: country.into(),
        };
        admin
            .put_location(&org, location, NOW)
            .await
            .expect("location");
        admin
            .add_numbers(&org, id, vec![entry(number, None)], NOW)
            .await
            .expect("number");
    }
    let core = core(&fx);
    core.apply_in_order(&commands).await;
    let upgrades: Vec<CommandEnvelope> = [
        (1, Package::Standard),
        (2, Package::Premium),
        (3, Package::Standard),
    ]
    .iter()
    .map(|(i, p)| package(&commands[*i], &format!("up-{i}"), *p, None))
    .collect();
    assert_eq!(
        notices(&core.apply_in_order(&upgrades).await),
        [None, None, None]
    );

    let asks = [
        device(&commands[0], "d-basic-go", "Webex Go"),
        device(&commands[1], "d-us-go", "webex-go"),
        device(&commands[2], "d-uk-go", "WEBEX_GO"),
        device(&commands[3], "d-de-go", "Webex Go"),
        device(&commands[4], "d-none-phone", "Cisco 8845"),
        device(&commands[0], "d-basic-phone", "Cisco 8845"),
    ];
    let results = core.apply_in_order(&asks).await;
    let outcome = |r: &Result<Granted, LicenseError>| match r {
        Ok(g) => Ok(g.device.as_ref().expect("device").expires_at),
        Err(LicenseError::Rejected(r)) => Err((r.code, r.message().to_string())),
        Err(e) => panic!("{e}"),
    };
    let day = 24 * 60 * 60 * 1000;
    let refused = |i: usize, words: &str| match outcome(&results[i]) {
        Err((code, why)) => {
            assert_eq!(code, ErrorCode::DeviceNotAllowed, "{i}");
            assert!(why.contains(words), "{i}: {why}");
        }
        Ok(_) => panic!("{i} allowed"),
    };
    refused(0, "Webex Calling Professional");
    refused(3, "is in 'DE'");
    refused(4, "holds no Webex Calling license");
    let go_us = outcome(&results[1]).expect("us");
    let go_uk = outcome(&results[2]).expect("uk");
    let phone = outcome(&results[5]).expect("phone");
    // One run, one clock: Webex Go's codes last 90 days, the phone's 7.
    assert_eq!(go_uk, go_us);
    assert_eq!(go_us - phone, (WEBEX_GO_CODE_DAYS - DEVICE_CODE_DAYS) * day);

    // Sent again: the same answers (the same expiry), nothing new.
    let before = snapshot(&fx).await;
    let again = core.apply_in_order(&asks).await;
    assert_eq!(
        again.iter().map(outcome).collect::<Vec<_>>(),
        results.iter().map(outcome).collect::<Vec<_>>()
    );
    assert_eq!(snapshot(&fx).await, before);
    let activations = admin.device_activations(&org).await.expect("devices");
    for d in &activations {
        let days = if d.device_type.as_deref() == Some("Cisco 8845") {
            DEVICE_CODE_DAYS
        } else {
            WEBEX_GO_CODE_DAYS
        };
        assert_eq!(d.expires_at - d.issued_at, days * day, "{d:?}");
    }
    let listed: Vec<(String, Option<String>)> = activations
        .into_iter()
        .map(|d| (d.user_id, d.device_type))
        .collect();
    assert_eq!(
        listed,
        [
            (
                "basic@acme.example".to_string(),
                Some("Cisco 8845".to_string())
            ),
            ("uk@acme.example".to_string(), Some("WEBEX_GO".to_string())),
            ("us@acme.example".to_string(), Some("webex-go".to_string())),
        ]
    );
}

pub(crate) async fn a_bulk_device_request_is_all_or_nothing(factory: &dyn StoreFactory) {
    use crate::provision::devices::{request, DeviceCodeRequest};
    let fx = fixture(factory).await;
    let (org, _) = org_with_numbers(&fx, "SP1", &[("a@acme.example", Some("+12405550001"))]).await;
    let ask = |user: &str| DeviceCodeRequest {
        user_id: uid(user),
        device_type: Some("Webex Go".into()),
        mac_address: None,
    };
    let requests = vec![ask("a@acme.example"), ask("ghost@acme.example")];
    let (o, r) = (org.clone(), requests);
    let refused = crate::store::transact(fx.store.as_ref(), move |tx| {
        request(tx, &o, &r, "T-dev1", NOW)
    })
    .await
    .expect("unit of work");
    assert_eq!(refused.expect_err("ghost").code, ErrorCode::NotFound);
    let issued = outbox(&fx)
        .await
        .iter()
        .filter(|e| e.envelope.command.kind() == "IssueActivationCode")
        .count();
    assert_eq!(issued, 0, "a's command was not written either");
    let (o, r) = (org.clone(), vec![ask("a@acme.example")]);
    let sent = crate::store::transact(fx.store.as_ref(), move |tx| {
        request(tx, &o, &r, "T-dev2", NOW)
    })
    .await
    .expect("unit of work");
    assert_eq!(sent, Ok(1));
    let issued = outbox(&fx)
        .await
        .iter()
        .filter(|e| e.envelope.command.kind() == "IssueActivationCode")
        .count();
    assert_eq!(issued, 1);
}
