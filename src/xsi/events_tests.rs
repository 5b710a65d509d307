//! Tests of the Xsi-Events documents (`events.rs`): the real and spec
//! samples in `tests/support/xsi-samples/events-*`, writer → parse →
//! reader round trips, and refusals.

use super::*;
use crate::xsi::document::{parse, parse_str, XsiLimits};

/// A sample's text without its first line (the source comment).
fn sample_text(name: &str) -> String {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/support/xsi-samples")
        .join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{name}: {e}"));
    let (comment, body) = text.split_once('\n').unwrap_or_default();
    assert!(comment.starts_with("<!--"), "{name}");
    body.trim().to_owned()
}

fn sample(name: &str) -> Element {
    parse_str(&sample_text(name), &XsiLimits::default()).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn doc(xml: &str) -> Element {
    parse_str(xml, &XsiLimits::default()).unwrap_or_else(|e| panic!("{e}: {xml}"))
}

/// `to_chunk` → parse: the tree must come back unchanged.
fn reparsed(el: &Element) -> Element {
    let chunk = to_chunk(el);
    let again = parse(
        &chunk,
        Some("text/xml;charset=UTF-8"),
        &XsiLimits::default(),
    )
    .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&chunk)));
    assert_eq!(&again, el, "{}", String::from_utf8_lossy(&chunk));
    again
}

fn chunk_text(el: &Element) -> String {
    String::from_utf8(to_chunk(el).to_vec()).unwrap()
}

// ------------------------------------------------------------- samples

#[test]
fn channel_add_request_sample_reads_and_rewrites() {
    let s = sample("events-channel-add-request.real-trace.xml");
    let r = read_channel(&s).unwrap();
    assert_eq!(
        r,
        ChannelRequest {
            channel_set_id: "KIWI-040D0D020D06040A0902080E010B0A0C".into(),
            priority: 1,
            weight: 50,
            expires: 3600,
        }
    );
    assert_eq!(channel_request(&r), s);
    // The request body as the client sent it (its trace shows the
    // declaration and element on one line).
    assert_eq!(
        chunk_text(&channel_request(&r)).replace('\n', ""),
        format!(
            "{XML_DECLARATION}{}",
            sample_text("events-channel-add-request.real-trace.xml")
        )
    );
}

#[test]
fn channel_first_chunk_is_byte_for_byte_the_real_one() {
    let s = sample("events-channel-add-response-chunk.real-trace.xml");
    let ours = channel("64eddc79-b707-4827-aacd-487fb5cb8427", 86400);
    assert_eq!(ours, s);
    let chunk = to_chunk(&ours);
    assert_eq!(
        chunk_text(&ours),
        format!(
            "{XML_DECLARATION}\n{}",
            sample_text("events-channel-add-response-chunk.real-trace.xml")
        )
    );
    assert_eq!(chunk.len(), 0xb5, "the trace's chunk size");
    reparsed(&ours);
}

#[test]
fn heartbeat_chunk_is_byte_for_byte_what_clients_match() {
    let s = sample("events-channelheartbeat-chunk.xml");
    assert_eq!(channel_heartbeat(), s);
    let chunk = to_chunk(&channel_heartbeat());
    assert_eq!(
        chunk_text(&channel_heartbeat()),
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?><ChannelHeartBeat xmlns=\"http://schema.broadsoft.com/xsi\"/>"
    );
    assert_eq!(chunk.len(), 0x61, "spec Figure 7's chunk size");
}

#[test]
fn refresh_put_samples_read_and_rewrite() {
    let ch = sample("events-channel-refresh-put-request.client.xml");
    assert_eq!(read_expires(&ch, "Channel"), Ok(7200));
    assert_eq!(expires_request("Channel", 7200), ch);
    let sub = sample("events-subscription-refresh-put-request.client.xml");
    assert_eq!(read_expires(&sub, "Subscription"), Ok(7200));
    assert_eq!(expires_request("Subscription", 7200), sub);
    // Each reader wants its own root.
    assert_eq!(
        read_expires(&ch, "Subscription").map_err(|r| r.code),
        Err(ErrorCode::InvalidParameterValue)
    );
}

#[test]
fn channel_set_matches_the_spec_sample() {
    let s = sample("events-channelset-get-response.r21-spec.xml");
    let view = |id: &str, priority, expires| ChannelView {
        channel_id: id.into(),
        channel_set_id: "channelSetOne".into(),
        priority,
        weight: 50,
        expires,
    };
    let ours = channel_set(
        "channelSetOne",
        &[view("channelIdOne", 1, 3700), view("channelIdTwo", 2, 3600)],
    );
    assert_eq!(ours, s);
    reparsed(&ours);
    assert_eq!(
        channel_set("none", &[]).to_xml(),
        "<ChannelSet xmlns=\"http://schema.broadsoft.com/xsi\"/>"
    );
}

#[test]
fn event_response_sample_reads_and_rewrites() {
    let s = sample("events-eventresponse-request.client.xml");
    let r = read_event_response(&s).unwrap();
    assert_eq!(
        r,
        EventResponse {
            // A template slot in the client's source, read as any id.
            event_id: "{event_id}".into(),
            status_code: 200,
            reason: "OK".into(),
        }
    );
    assert_eq!(event_response(&r), s);
}

#[test]
fn subscription_request_samples_read_and_rewrite() {
    let basic = sample("events-subscription-request-basic-call.real-trace.xml");
    let r = read_subscription(&basic).unwrap();
    assert_eq!(
        r,
        SubscriptionRequest {
            event: "Basic Call".into(),
            expires: 120,
            delivery: SubscriptionDelivery::Channel {
                channel_set_id: "KIWI-040D0D020D06040A0902080E010B0A0C".into()
            },
            application_id: Some("KIWI-XSIEvents responsetime checker 1.0.3".into()),
        }
    );
    assert_eq!(subscription_request(&r), basic);

    let contact = sample("events-subscription-request-httpcontact.r21-spec.xml");
    let r = read_subscription(&contact).unwrap();
    assert_eq!(
        r,
        SubscriptionRequest {
            event: "Advanced Call".into(),
            expires: 3600,
            delivery: SubscriptionDelivery::HttpContact {
                // No scheme in the spec's example: kept as written.
                uri: "172.16.25.114:8800/MyApplication/eventConsumer".into()
            },
            application_id: Some("CommPilotApplication".into()),
        }
    );
    assert_eq!(subscription_request(&r), contact);
    assert_eq!(
        http_contact_url("172.16.25.114:8800/MyApplication/eventConsumer"),
        "http://172.16.25.114:8800/MyApplication/eventConsumer"
    );
    assert_eq!(
        http_contact_url("HTTPS://hook.example/x"),
        "HTTPS://hook.example/x"
    );
}

#[test]
fn subscription_response_matches_the_real_one() {
    let s = sample("events-subscription-response.real-trace.xml");
    let ours = subscription_response("98ed3939-c113-419c-8012-092556b85c66", 86400);
    assert_eq!(ours, s);
    assert_eq!(
        ours.to_xml(),
        sample_text("events-subscription-response.real-trace.xml")
    );
}

#[test]
fn subscription_terminated_samples_read_back_and_rewrite() {
    for (name, destination, seq, user, app, sub, target) in [
        (
            "events-subscriptionterminated-channel.r21-spec.xml",
            EventDestinationOwned::Channel("726bfd81-799c-473a-9e32-ed7063ef0b2f".into()),
            2,
            "asouth@mtlasdev87.net@mtlasdev87.net",
            "apId1",
            "f39acc1f-1349-4293-a940-018dcd1b17dc",
            "south03@mtlasdev87.net",
        ),
        (
            "events-subscriptionterminated-httpcontact.real-fixture.xml",
            EventDestinationOwned::HttpContact(
                "ec2-54-205-41-129.compute-1.amazonaws.com:8080/CallCenterManager/webservices/agentSubscriptionCallback".into(),
            ),
            18,
            "Admin_Joseph@voip.tnltd.net",
            "CallCenterDashboard",
            "26b8fe58-77e3-42b0-aa0a-7b0ac2ce91f0",
            "6234456528@voip.tnltd.net",
        ),
    ] {
        let s = sample(name);
        let (env, event) = read_event(&s).unwrap_or_else(|r| panic!("{name}: {r:?}"));
        assert_eq!(event, None, "{name}");
        assert_eq!(env.event_type, EventType::SubscriptionTerminated);
        assert!(env.needs_response());
        assert_eq!(env.sequence_number, seq, "{name}");
        assert_eq!(env.user_id, user);
        assert_eq!(env.external_application_id.as_deref(), Some(app));
        assert_eq!(env.subscription_id, sub);
        assert_eq!(env.destination, destination);
        assert_eq!(env.target_id.as_deref(), Some(target));
        let ours = subscription_terminated(&env.as_envelope());
        assert_eq!(ours, s, "{name}");
        reparsed(&ours);
    }
    // The RIIS fixture's bytes, but for the order of the root's
    // attributes: bwgate writes them as the CHK wire trace does (xmlns:xsi,
    // xmlns:xsi1, xsi1:type), the fixture has xsi1:type first.
    let name = "events-subscriptionterminated-httpcontact.real-fixture.xml";
    let (env, _) = read_event(&sample(name)).unwrap();
    let riis_order = sample_text(name).replace(
        "<xsi:Event xsi1:type=\"xsi:SubscriptionEvent\" xmlns:xsi=\"http://schema.broadsoft.com/xsi\" xmlns:xsi1=\"http://www.w3.org/2001/XMLSchema-instance\">",
        "<xsi:Event xmlns:xsi=\"http://schema.broadsoft.com/xsi\" xmlns:xsi1=\"http://www.w3.org/2001/XMLSchema-instance\" xsi1:type=\"xsi:SubscriptionEvent\">",
    );
    assert_eq!(
        chunk_text(&subscription_terminated(&env.as_envelope())),
        format!("{XML_DECLARATION}{riis_order}")
    );
}

#[test]
fn channel_terminated_matches_the_spec_sample() {
    let s = sample("events-channelterminated.r21-spec.xml");
    let (env, event) = read_event(&s).unwrap();
    assert_eq!(event, None);
    assert_eq!(
        env.event_type,
        EventType::ChannelTerminated {
            reason: "MaxChannelsReached".into()
        }
    );
    assert!(!env.needs_response(), "never acknowledged");
    assert_eq!(
        env.destination,
        EventDestinationOwned::Channel("726bfd81-799c-473a-9e32-ed7063ef0b2f".into())
    );
    assert_eq!(env.event_id, "");
    let ours = channel_terminated("726bfd81-799c-473a-9e32-ed7063ef0b2f", "MaxChannelsReached");
    assert_eq!(ours, s);
    assert_eq!(
        chunk_text(&ours),
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?><xsi:Event xmlns:xsi=\"http://schema.broadsoft.com/xsi\" xmlns:xsi1=\"http://www.w3.org/2001/XMLSchema-instance\" xsi1:type=\"xsi:ChannelTerminatedEvent\"><xsi:channelId>726bfd81-799c-473a-9e32-ed7063ef0b2f</xsi:channelId><xsi:reason>MaxChannelsReached</xsi:reason></xsi:Event>"
    );
    reparsed(&ours);
}

#[test]
fn event_xml_writes_a_real_event_byte_for_byte() {
    // Another package's event (Basic Call), but the same serializer: the
    // CHK chunk comes out exactly, declaration included.
    let name = "events-event-callsubscription-initial.real-trace.xml";
    let tree = sample(name);
    assert_eq!(
        chunk_text(&tree),
        format!("{XML_DECLARATION}{}", sample_text(name))
    );
}

#[test]
fn other_packages_events_are_not_read_as_provisioning_events() {
    for name in [
        "events-event-callsubscription-initial.real-trace.xml",
        "events-callreceived.r21-spec.xml",
        "events-agentstate-httpcontact.real-fixture.xml",
        "events-callcentermonitoring-httpcontact.real-fixture.xml",
    ] {
        let r = read_event(&sample(name)).expect_err(name);
        assert_eq!(r.code, ErrorCode::InvalidParameterValue, "{name}");
        assert!(
            r.detail
                .as_deref()
                .unwrap_or_default()
                .contains("Provisioning"),
            "{name}: {r:?}"
        );
        // Every sample event comes back unchanged through event_xml.
        reparsed(&sample(name));
    }
}

// ---------------------------------------------------- round trips

const AT: i64 = 1_795_515_300_123; // 2026-11-24T10:15:00.123Z

fn full_event(kind: EventKind) -> ProvisioningEvent {
    ProvisioningEvent {
        seq: 0,
        kind,
        at: AT,
        provisioning_id: String::new(),
        service_provider_id: Some("sp1".into()),
        group_id: Some("g1".into()),
        user_id: Some("ann@acme.example".into()),
        subscriber_id: Some("0193a4b2-0000-7000-8000-000000000001".into()),
        status: Some("provisioning".into()),
        package: Some("standard".into()),
        organization_id: Some("org-1".into()),
        organization_name: Some("Smith & Sons <UK> \"Ltd\" 'x'".into()),
        error_code: Some(9017),
        reason: Some("bad <&\"'> value".into()),
    }
}

fn bare_event(kind: EventKind) -> ProvisioningEvent {
    ProvisioningEvent::bare(kind, AT, String::new())
}

fn full_envelope() -> EventEnvelope<'static> {
    EventEnvelope {
        event_id: "957d0482-6cdd-4189-b477-19c6793f113a",
        sequence_number: 7,
        user_id: "partner:acme",
        external_application_id: Some("load <&\"'> app"),
        subscription_id: "98ed3939-c113-419c-8012-092556b85c66",
        destination: EventDestination::Channel("64eddc79-b707-4827-aacd-487fb5cb8427"),
        target_id: Some("sp1"),
    }
}

fn bare_envelope() -> EventEnvelope<'static> {
    EventEnvelope {
        event_id: "e1",
        sequence_number: 1,
        user_id: "ann@acme.example",
        external_application_id: None,
        subscription_id: "s1",
        destination: EventDestination::HttpContact("https://hook.example/x?a=1&b=<2>"),
        target_id: None,
    }
}

#[test]
fn every_kind_round_trips_with_every_optional_field_and_with_none() {
    for kind in EventKind::ALL {
        for (env, event) in [
            (full_envelope(), full_event(kind)),
            (bare_envelope(), bare_event(kind)),
        ] {
            let written = subscription_event(&env, &event);
            let again = reparsed(&written);
            let (read_env, read) = read_event(&again).unwrap_or_else(|r| panic!("{kind:?}: {r:?}"));
            assert_eq!(read.as_ref(), Some(&event), "{kind:?}");
            assert_eq!(read_env.event_type, EventType::Provisioning(kind));
            assert_eq!(read_env.as_envelope(), env, "{kind:?}");
            assert!(read_env.needs_response());
            assert_eq!(
                again.child("eventData").unwrap().attr("type"),
                Some(format!("xsi:{}Event", kind.as_str()).as_str())
            );
        }
    }
    // Terminations round trip too.
    for env in [full_envelope(), bare_envelope()] {
        let again = reparsed(&subscription_terminated(&env));
        let (read_env, read) = read_event(&again).unwrap();
        assert_eq!((read_env.as_envelope(), read), (env, None));
    }
    let again = reparsed(&channel_terminated("c<1>", "Expired & gone"));
    let (read_env, _) = read_event(&again).unwrap();
    assert_eq!(
        read_env.event_type,
        EventType::ChannelTerminated {
            reason: "Expired & gone".into()
        }
    );
}

#[test]
fn event_elements_come_in_the_documented_order() {
    let full = subscription_event(&full_envelope(), &full_event(EventKind::SubscriberFailed));
    let names: Vec<&str> = full.children.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "eventID",
            "sequenceNumber",
            "userId",
            "externalApplicationId",
            "subscriptionId",
            "channelId",
            "targetId",
            "eventData"
        ]
    );
    let data = full.child("eventData").unwrap();
    let fields: Vec<&str> = data.children.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(fields, EVENT_DATA_FIELDS);
    assert_eq!(
        data.child_text("occurredAt"),
        Some("2026-11-24T10:15:00.123Z")
    );

    let bare = subscription_event(
        &bare_envelope(),
        &bare_event(EventKind::OrganizationAttached),
    );
    let names: Vec<&str> = bare.children.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "eventID",
            "sequenceNumber",
            "userId",
            "subscriptionId",
            "httpContact",
            "eventData"
        ]
    );
    assert_eq!(
        chunk_text(&bare),
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?><xsi:Event xmlns:xsi=\"http://schema.broadsoft.com/xsi\" \
         xmlns:xsi1=\"http://www.w3.org/2001/XMLSchema-instance\" xsi1:type=\"xsi:SubscriptionEvent\">\
         <xsi:eventID>e1</xsi:eventID><xsi:sequenceNumber>1</xsi:sequenceNumber>\
         <xsi:userId>ann@acme.example</xsi:userId><xsi:subscriptionId>s1</xsi:subscriptionId>\
         <xsi:httpContact><xsi:uri>https://hook.example/x?a=1&amp;b=&lt;2&gt;</xsi:uri></xsi:httpContact>\
         <xsi:eventData xsi1:type=\"xsi:OrganizationAttachedEvent\">\
         <xsi:occurredAt>2026-11-24T10:15:00.123Z</xsi:occurredAt></xsi:eventData></xsi:Event>"
    );
}

#[test]
fn text_is_escaped_in_events() {
    let event = subscription_event(&full_envelope(), &full_event(EventKind::SubscriberFailed));
    let text = chunk_text(&event);
    assert!(
        text.contains("<xsi:reason>bad &lt;&amp;&quot;&apos;&gt; value</xsi:reason>"),
        "{text}"
    );
    assert!(text.contains(
        "<xsi:externalApplicationId>load &lt;&amp;&quot;&apos;&gt; app</xsi:externalApplicationId>"
    ));
    assert!(!text.contains("<&"));
    let again = reparsed(&event);
    let data = again.child("eventData").unwrap();
    assert_eq!(data.child_text("reason"), Some("bad <&\"'> value"));
    assert_eq!(
        data.child_text("organizationName"),
        Some("Smith & Sons <UK> \"Ltd\" 'x'")
    );
    // A CR and a tab in a value survive too.
    let odd = channel_terminated("c", "a\r\nb\tc");
    assert!(chunk_text(&odd).contains("a&#13;\nb\tc"));
    reparsed(&odd);
    // Nil and foreign-namespace elements keep their meaning in event_xml.
    let mut mixed = channel_terminated("c", "r");
    mixed.children.push(Element {
        nil: true,
        ..xsi("gone")
    });
    mixed.children.push(Element {
        namespace: Some("urn:other".into()),
        children: vec![
            Element::new("plain"),
            Element {
                namespace: Some("urn:other".into()),
                text: "x".into(),
                ..Element::new("inner")
            },
        ],
        ..Element::new("ext")
    });
    reparsed(&mixed);
}

#[test]
fn subscription_detail_is_read_by_the_subscription_reader() {
    for view in [
        SubscriptionView {
            subscription_id: "s1".into(),
            target_id: Some("ann@acme.example".into()),
            event: "Provisioning".into(),
            expires: 3599,
            delivery: SubscriptionDelivery::Channel {
                channel_set_id: "set-1".into(),
            },
            application_id: Some("app".into()),
        },
        SubscriptionView {
            subscription_id: "s2".into(),
            target_id: None,
            event: "Provisioning".into(),
            expires: 10,
            delivery: SubscriptionDelivery::HttpContact {
                uri: "https://hook.example/events".into(),
            },
            application_id: None,
        },
    ] {
        let doc = reparsed(&subscription_detail(&view));
        let names: Vec<&str> = doc.children.iter().map(|c| c.name.as_str()).collect();
        let mut want = vec!["subscriptionId"];
        if view.target_id.is_some() {
            want.push("targetId");
        }
        want.extend(["event", "expires"]);
        want.push(match view.delivery {
            SubscriptionDelivery::Channel { .. } => "channelSetId",
            SubscriptionDelivery::HttpContact { .. } => "httpContact",
        });
        if view.application_id.is_some() {
            want.push("applicationId");
        }
        assert_eq!(names, want);
        assert_eq!(
            doc.child_text("subscriptionId"),
            Some(view.subscription_id.as_str())
        );
        assert_eq!(doc.child_text("targetId"), view.target_id.as_deref());
        let read = read_subscription(&doc).unwrap();
        assert_eq!(
            read,
            SubscriptionRequest {
                event: view.event.clone(),
                expires: view.expires,
                delivery: view.delivery.clone(),
                application_id: view.application_id.clone(),
            }
        );
        assert_eq!(subscription_request(&read).name, "Subscription");
    }
}

#[test]
fn client_documents_round_trip_through_their_readers() {
    let ch = ChannelRequest {
        channel_set_id: "set <1>".into(),
        priority: 2,
        weight: 0,
        expires: 86400,
    };
    assert_eq!(read_channel(&reparsed(&channel_request(&ch))), Ok(ch));
    let r = EventResponse {
        event_id: "e1".into(),
        status_code: 500,
        reason: "Internal & error".into(),
    };
    assert_eq!(read_event_response(&reparsed(&event_response(&r))), Ok(r));
    assert_eq!(
        read_expires(
            &reparsed(&expires_request("Subscription", 5)),
            "Subscription"
        ),
        Ok(5)
    );
}

#[test]
fn iso_times_round_trip() {
    for ms in [
        0,
        AT,
        -1,
        -86_400_001,
        253_402_300_799_999,
        -62_167_219_200_000,
    ] {
        assert_eq!(parse_iso_millis(&iso_millis(ms)), Some(ms), "{ms}");
    }
    assert_eq!(iso_millis(0), "1970-01-01T00:00:00.000Z");
    assert_eq!(iso_millis(-1), "1969-12-31T23:59:59.999Z");
    assert_eq!(iso_millis(i64::MAX), "9999-12-31T23:59:59.999Z");
    assert_eq!(iso_millis(i64::MIN), "0000-01-01T00:00:00.000Z");
    assert_eq!(parse_iso_millis("1970-01-01T00:00:01Z"), Some(1000));
    assert_eq!(parse_iso_millis("1970-01-01T00:00:01.5Z"), Some(1500));
    assert_eq!(parse_iso_millis("1970-01-01T00:00:01.123456Z"), Some(1123));
    for bad in [
        "",
        "1970-01-01",
        "1970-01-01T00:00:00",
        "1970-01-01T00:00:00+00:00",
        "1970-13-01T00:00:00Z",
        "1970-02-30T00:00:00Z",
        "1970-01-01T24:00:00Z",
        "1970-01-01T00:00:00.Z",
        "1970-01-01T00:00:00.1xZ",
        "+970-01-01T00:00:00Z",
        "1970-01-01 00:00:00Z",
    ] {
        assert_eq!(parse_iso_millis(bad), None, "{bad}");
    }
}

// ------------------------------------------------------------ refusals

fn code<T: std::fmt::Debug>(r: Result<T, Refusal>) -> ErrorCode {
    match r {
        Ok(v) => panic!("accepted: {v:?}"),
        Err(r) => {
            let detail = r.detail.clone().unwrap_or_default();
            assert!(!detail.is_empty() && !detail.contains('\n'), "{detail}");
            r.code
        }
    }
}

const MISSING: ErrorCode = ErrorCode::MissingParameter;
const INVALID: ErrorCode = ErrorCode::InvalidParameterValue;

#[test]
fn channel_refusals() {
    let ch = |inner: &str| read_channel(&doc(&format!("<Channel>{inner}</Channel>")));
    assert_eq!(code(ch("<expires>10</expires>")), MISSING);
    assert_eq!(code(ch("<channelSetId>s</channelSetId>")), MISSING);
    assert_eq!(code(ch("<channelSetId/><expires>10</expires>")), INVALID);
    let long = "x".repeat(MAX_ID_CHARS + 1);
    assert_eq!(
        code(ch(&format!(
            "<channelSetId>{long}</channelSetId><expires>10</expires>"
        ))),
        INVALID
    );
    let longest = "é".repeat(MAX_ID_CHARS);
    assert!(ch(&format!(
        "<channelSetId>{longest}</channelSetId><expires>10</expires>"
    ))
    .is_ok());
    for expires in ["0", "abc", "-1", "+5", "1.5", "18446744073709551616", ""] {
        let r = ch(&format!(
            "<channelSetId>s</channelSetId><expires>{expires}</expires>"
        ));
        assert_eq!(code(r), INVALID, "{expires:?}");
    }
    for priority in ["x", "-1", "4294967296"] {
        let r = ch(&format!(
            "<channelSetId>s</channelSetId><priority>{priority}</priority><expires>1</expires>"
        ));
        assert_eq!(code(r), INVALID, "{priority}");
    }
    let defaults = ch("<channelSetId>s</channelSetId><priority/><expires>1</expires>").unwrap();
    assert_eq!((defaults.priority, defaults.weight), (1, 1));
    let r = read_channel(&doc(
        "<Subscription><channelSetId>s</channelSetId><expires>1</expires></Subscription>",
    ))
    .unwrap_err();
    assert_eq!(r.code, INVALID);
    assert_eq!(
        r.detail.as_deref(),
        Some("the root element is <Subscription>, not <Channel>")
    );
    // Any prefix or namespace, or none.
    assert!(read_channel(&doc(
        "<x:Channel xmlns:x=\"urn:any\"><x:channelSetId>s</x:channelSetId><x:expires>1</x:expires></x:Channel>"
    ))
    .is_ok());
}

#[test]
fn expires_refusals() {
    assert_eq!(code(read_expires(&doc("<Channel/>"), "Channel")), MISSING);
    assert_eq!(
        code(read_expires(
            &doc("<Channel><expires>0</expires></Channel>"),
            "Channel"
        )),
        INVALID
    );
    assert_eq!(
        code(read_expires(
            &doc("<Channel><expires>soon</expires></Channel>"),
            "Channel"
        )),
        INVALID
    );
    assert_eq!(
        code(read_expires(
            &doc("<Channel xmlns:i=\"http://www.w3.org/2001/XMLSchema-instance\"><expires i:nil=\"true\"/></Channel>"),
            "Channel"
        )),
        INVALID
    );
    assert_eq!(
        code(read_expires(
            &doc("<Foo><expires>5</expires></Foo>"),
            "Subscription"
        )),
        INVALID
    );
}

#[test]
fn subscription_refusals() {
    let sub = |inner: &str| {
        read_subscription(&doc(&format!(
            "<Subscription><event>Provisioning</event>{inner}</Subscription>"
        )))
    };
    assert_eq!(code(sub("<expires>60</expires>")), MISSING, "no delivery");
    assert_eq!(
        code(sub(
            "<expires>60</expires><channelSetId>s</channelSetId><httpContact><uri>http://h/x</uri></httpContact>"
        )),
        INVALID,
        "both"
    );
    assert_eq!(
        code(sub("<channelSetId>s</channelSetId>")),
        MISSING,
        "no expires"
    );
    assert_eq!(
        code(read_subscription(&doc(
            "<Subscription><expires>6</expires><channelSetId>s</channelSetId></Subscription>"
        ))),
        MISSING,
        "no event"
    );
    for expires in ["0", "x"] {
        assert_eq!(
            code(sub(&format!(
                "<expires>{expires}</expires><channelSetId>s</channelSetId>"
            ))),
            INVALID
        );
    }
    assert_eq!(
        code(sub("<expires>6</expires><httpContact/>")),
        MISSING,
        "no uri"
    );
    for uri in [
        "ftp://files.example/x",
        "mailto:ops@example.com",
        "file:///etc/passwd",
        "javascript:alert(1)",
        "http://",
        "https:///path",
        "/relative/path",
        "//host/x",
        "http://host/a b",
        "",
    ] {
        let r = sub(&format!(
            "<expires>6</expires><httpContact><uri>{uri}</uri></httpContact>"
        ));
        assert_eq!(code(r), INVALID, "{uri}");
    }
    for uri in [
        "http://hook.example/x",
        "HTTPS://hook.example:8443/x?y=1",
        "localhost:8080/events",
        "hook.example/events",
        "[::1]:8080/x",
        "172.16.25.114:8800/MyApplication/eventConsumer",
    ] {
        let r = sub(&format!(
            "<expires>6</expires><httpContact><uri>{uri}</uri></httpContact>"
        ));
        assert!(r.is_ok(), "{uri}: {r:?}");
    }
    let long = format!("http://h/{}", "x".repeat(MAX_URI_CHARS));
    assert_eq!(
        code(sub(&format!(
            "<expires>6</expires><httpContact><uri>{long}</uri></httpContact>"
        ))),
        INVALID
    );
    assert_eq!(
        code(read_subscription(&doc(
            "<Channel><event>e</event></Channel>"
        ))),
        INVALID
    );
}

#[test]
fn event_response_refusals() {
    let er =
        |inner: &str| read_event_response(&doc(&format!("<EventResponse>{inner}</EventResponse>")));
    assert_eq!(code(er("<statusCode>200</statusCode>")), MISSING);
    assert_eq!(code(er("<eventID>e</eventID>")), MISSING);
    for status in ["abc", "99", "600", "-200", "70000"] {
        assert_eq!(
            code(er(&format!(
                "<eventID>e</eventID><statusCode>{status}</statusCode>"
            ))),
            INVALID,
            "{status}"
        );
    }
    let ok = er("<eventID>e</eventID><statusCode>200</statusCode>").unwrap();
    assert_eq!(ok.reason, "");
    assert_eq!(code(read_event_response(&doc("<Event/>"))), INVALID);
}

#[test]
fn read_event_refusals() {
    let good = subscription_event(&full_envelope(), &full_event(EventKind::SubscriberAccepted));
    let without = |name: &str| {
        let mut d = good.clone();
        d.children.retain(|c| c.name != name);
        d
    };
    for name in [
        "eventID",
        "sequenceNumber",
        "userId",
        "subscriptionId",
        "channelId",
        "eventData",
    ] {
        assert_eq!(code(read_event(&without(name))), MISSING, "{name}");
    }
    let with_data = |f: &dyn Fn(&mut Element)| {
        let mut d = good.clone();
        f(d.children
            .iter_mut()
            .find(|c| c.name == "eventData")
            .unwrap());
        d
    };
    assert_eq!(
        code(read_event(&with_data(&|e| e.attributes.clear()))),
        MISSING
    );
    assert_eq!(
        code(read_event(&with_data(
            &|e| e.attributes[0].1 = "xsi:HookStatusEvent".into()
        ))),
        INVALID
    );
    assert_eq!(
        code(read_event(&with_data(&|e| e
            .children
            .retain(|c| c.name != "occurredAt")))),
        MISSING
    );
    assert_eq!(
        code(read_event(&with_data(&|e| {
            for c in &mut e.children {
                if c.name == "occurredAt" {
                    c.text = "yesterday".into();
                }
            }
        }))),
        INVALID
    );
    assert_eq!(
        code(read_event(&with_data(&|e| {
            for c in &mut e.children {
                if c.name == "errorCode" {
                    c.text = "E1".into();
                }
            }
        }))),
        INVALID
    );
    let mut bad_seq = good.clone();
    bad_seq.children[1].text = "one".into();
    assert_eq!(code(read_event(&bad_seq)), INVALID);
    let mut both = good.clone();
    both.children
        .push(parent("httpContact", vec![text("uri", "h/x")]));
    assert_eq!(code(read_event(&both)), INVALID);
    let mut odd_type = good.clone();
    odd_type.attributes[0].1 = "xsi:SomethingElse".into();
    assert_eq!(code(read_event(&odd_type)), INVALID);
    assert_eq!(code(read_event(&doc("<Channel/>"))), INVALID);
    // No root type: read as a SubscriptionEvent.
    let mut untyped = good.clone();
    untyped.attributes.clear();
    assert!(read_event(&untyped).is_ok());
    // A ChannelTerminatedEvent needs its channel and reason.
    assert_eq!(
        code(read_event(&typed(
            "Event",
            "ChannelTerminatedEvent",
            vec![text("channelId", "c")]
        ))),
        MISSING
    );
}
