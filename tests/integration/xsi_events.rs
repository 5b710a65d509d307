//! Xsi-Events against the real binary: a streaming channel read chunk by
//! chunk over real mTLS, subscriptions of a partner admin and of a user,
//! provisioning through the flow-through face showing up as events in
//! order, acknowledgements and redelivery, heartbeats and their timeout,
//! limits, HTTP-contact delivery to a local receiver, and unacknowledged
//! events that survive a crash (SIGKILL).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Method, Request, Response};
use hyper_util::rt::TokioIo;

use bwgate::domain::event::EventKind;
use bwgate::xsi::events::{read_event, EventEnvelopeOwned, EventType};

use crate::email::Relay;
use crate::flowthrough::{document, post};
use crate::harness::Server;
use crate::signin::{Xsp, AUTH};
use crate::xsi::{basic, error_code};

const EVENTS: &str = "/com.broadsoft.xsi-events/v2.0";
const ADD_CHANNEL: &str = "/com.broadsoft.async/com.broadsoft.xsi-events/v2.0/channel";
const ADMIN_TOKEN: &str = "events-admin-token-0123456789";

fn config(relay: &Relay, smtp_port: u16, xsp_port: u16, events: &str) -> String {
    let hash = bwgate::domain::credentials::hash_password(ADMIN_TOKEN).unwrap();
    format!(
        "{smtp}\n[broadworks]\nxsp_ca_file = \"{ca}\"\n\n\
[xsi.events]\n{events}\n\n\
[[partners]]\nid = \"sp\"\nname = \"SP\"\nadmin_token_hash = \"{hash}\"\n\n\
[[clusters]]\nid = \"c1\"\npartner = \"sp\"\nname = \"Cluster 1\"\nxsp_url = \"https://127.0.0.1:{xsp_port}\"\n\n\
[[templates]]\nprovisioning_id = \"trusted\"\npartner = \"sp\"\ncluster = \"c1\"\nname = \"Trusted\"\n\
provisioning_username = \"act\"\nprovisioning_password = \"act-pw-1\"\n\
[templates.settings]\ntrusted_emails = true\n",
        smtp = relay.smtp_config(smtp_port, false),
        ca = relay.cert("ca.crt").display(),
    )
}

struct Setup {
    _relay: Relay,
    _receiver: crate::email::Receiver,
    _dir: tempfile::TempDir,
    _xsp: Xsp,
    server: Server,
}

fn started(events: &str) -> Setup {
    let relay = Relay::new();
    let receiver = relay.start(0, false);
    let dir = tempfile::tempdir().unwrap();
    let xsp = Xsp::start(&relay, dir.path());
    let server = Server::start_with(Some(&config(&relay, receiver.port, xsp.port, events)), &[]);
    Setup {
        _relay: relay,
        _receiver: receiver,
        _dir: dir,
        _xsp: xsp,
        server,
    }
}

fn add(user: &str, group: &str) -> String {
    format!(
        "<AddUser><userId>{user}</userId><serviceProviderId>globex</serviceProviderId>\
<groupId>{group}</groupId><firstName>Kim</firstName><lastName>Ito</lastName>\
<emailAddress>{user}</emailAddress><extension>{ext}</extension></AddUser>",
        ext = 1000 + user.len() * 7 + group.len()
    )
}

fn delete(user: &str, group: &str) -> String {
    format!(
        "<DeleteUser><userId>{user}</userId><serviceProviderId>globex</serviceProviderId>\
<groupId>{group}</groupId></DeleteUser>"
    )
}

async fn provision(server: &Server, ops: &[String]) {
    let resp = post(
        server,
        "/uc-one/v1/provisioning/trusted",
        Some(AUTH),
        document(None, ops),
        "application/xml",
    )
    .await;
    assert_eq!(resp.status, 200, "{}", resp.text());
    assert!(!resp.text().contains("<error"), "{}", resp.text());
}

fn admin() -> String {
    format!("Bearer {ADMIN_TOKEN}")
}

async fn call(
    server: &Server,
    method: Method,
    path: &str,
    auth: &str,
    body: &str,
) -> bwgate::client::ClientResponse {
    let req = Request::builder()
        .method(method)
        .uri(path)
        .header("authorization", auth)
        .header("content-type", "application/xml")
        .body(Full::new(Bytes::from(body.to_string())))
        .unwrap();
    server.client().request(req).await.expect("request")
}

fn text_of(xml: &str, tag: &str) -> String {
    let open = format!("<{tag}>");
    let start = xml.find(&open).map(|i| i + open.len()).unwrap_or(0);
    let end = xml[start..]
        .find(&format!("</{tag}>"))
        .map_or(start, |e| start + e);
    xml[start..end].to_string()
}

/// A request that must be refused: its status and `errorCode`.
async fn refused(
    server: &Server,
    method: Method,
    path: &str,
    auth: &str,
    body: &str,
) -> (u16, String, String) {
    let r = call(server, method, path, auth, body).await;
    (r.status.as_u16(), error_code(&r.text()), r.text())
}

/// One open channel: its id and its stream, read chunk by chunk.
struct Stream {
    id: String,
    body: Incoming,
    /// Bytes read and not yet returned as a document: the client's reads
    /// need not end where the server's chunks do.
    buffered: String,
    /// The server's log files (shown when an expected chunk never comes).
    logs: std::path::PathBuf,
}

/// How XSI clients find a document's end in the stream.
const DOCUMENT_ENDS: [&str; 3] = [
    "</Channel>",
    "<ChannelHeartBeat xmlns=\"http://schema.broadsoft.com/xsi\"/>",
    "</xsi:Event>",
];

impl Stream {
    /// The next document, or `None` when the stream ended (or nothing
    /// came in `wait`). Documents are split as XSI clients split them, by
    /// their closing tags.
    async fn next(&mut self, wait: Duration) -> Option<String> {
        loop {
            let end = DOCUMENT_ENDS
                .iter()
                .filter_map(|m| self.buffered.find(m).map(|i| i + m.len()))
                .min();
            if let Some(end) = end {
                let rest = self.buffered.split_off(end);
                return Some(std::mem::replace(&mut self.buffered, rest));
            }
            let frame = tokio::time::timeout(wait, self.body.frame())
                .await
                .ok()??
                .ok()?;
            if let Ok(data) = frame.into_data() {
                self.buffered.push_str(std::str::from_utf8(&data).unwrap());
            }
        }
    }

    /// The next event chunk (heartbeats skipped), read back.
    async fn event(
        &mut self,
    ) -> (
        EventEnvelopeOwned,
        Option<bwgate::domain::event::ProvisioningEvent>,
    ) {
        loop {
            let Some(chunk) = self.next(Duration::from_secs(10)).await else {
                panic!(
                    "no event chunk on channel {}; server log:\n{}",
                    self.id,
                    std::fs::read_to_string(self.logs.join("stderr.log")).unwrap_or_default()
                );
            };
            if chunk.contains("ChannelHeartBeat") {
                continue;
            }
            let doc = bwgate::xsi::parse_str(&chunk, &Default::default()).expect("chunk is XML");
            return read_event(&doc).expect("an event");
        }
    }
}

async fn open_channel(server: &Server, auth: &str, set: &str) -> Result<Stream, (u16, String)> {
    let tls = server.raw_tls().await;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
        .await
        .unwrap();
    tokio::spawn(conn);
    let body = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Channel xmlns=\"http://schema.broadsoft.com/xsi\">\
<channelSetId>{set}</channelSetId><priority>1</priority><weight>50</weight><expires>3600</expires></Channel>"
    );
    let req = Request::builder()
        .method("POST")
        .uri(ADD_CHANNEL)
        .header("host", "localhost")
        .header("authorization", auth)
        .header("content-type", "application/xml")
        .body(Full::new(Bytes::from(body)))
        .unwrap();
    let resp: Response<Incoming> = sender.send_request(req).await.unwrap();
    let status = resp.status().as_u16();
    if status != 200 {
        let text = resp.into_body().collect().await.unwrap().to_bytes();
        return Err((status, String::from_utf8_lossy(&text).into_owned()));
    }
    assert_eq!(
        resp.headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok()),
        Some("text/xml;charset=UTF-8")
    );
    let mut stream = Stream {
        id: String::new(),
        body: resp.into_body(),
        buffered: String::new(),
        logs: server.path(""),
    };
    let first = stream
        .next(Duration::from_secs(5))
        .await
        .expect("the Channel chunk");
    assert!(
        first.starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Channel xmlns=\"http://schema.broadsoft.com/xsi\"><channelId>"),
        "{first}"
    );
    assert_eq!(text_of(&first, "expires"), "3600");
    stream.id = text_of(&first, "channelId");
    Ok(stream)
}

fn subscription(set_or_contact: &str, app: &str) -> String {
    let delivery = if set_or_contact.starts_with("http") {
        format!("<httpContact><uri>{set_or_contact}</uri></httpContact>")
    } else {
        format!("<channelSetId>{set_or_contact}</channelSetId>")
    };
    format!(
        "<Subscription xmlns=\"http://schema.broadsoft.com/xsi\"><event>Provisioning</event>\
<expires>3600</expires>{delivery}<applicationId>{app}</applicationId></Subscription>"
    )
}

async fn subscribe(server: &Server, auth: &str, target: &str, set: &str, app: &str) -> String {
    let r = call(
        server,
        Method::POST,
        &format!("{EVENTS}/{target}"),
        auth,
        &subscription(set, app),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    text_of(&r.text(), "subscriptionId")
}

async fn ack(server: &Server, auth: &str, event_id: &str) {
    let body = format!(
        "<EventResponse xmlns=\"http://schema.broadsoft.com/xsi\"><eventID>{event_id}</eventID>\
<statusCode>200</statusCode><reason>OK</reason></EventResponse>"
    );
    let r = call(
        server,
        Method::POST,
        &format!("{EVENTS}/channel/eventresponse"),
        auth,
        &body,
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
}

fn kind(
    e: &(
        EventEnvelopeOwned,
        Option<bwgate::domain::event::ProvisioningEvent>,
    ),
) -> (EventKind, Option<String>) {
    let p = e.1.as_ref().expect("a provisioning event");
    (p.kind, p.user_id.clone())
}

#[tokio::test]
async fn a_partner_admin_channel_sees_provisioning_in_order_with_acknowledgements_and_redelivery() {
    let s = started("ack_timeout_secs = 1\npoll_interval_ms = 50\n");
    let server = &s.server;
    let mut stream = open_channel(server, &admin(), "ops-set").await.unwrap();
    let sub = subscribe(
        server,
        &admin(),
        "serviceprovider/globex",
        "ops-set",
        "ops-app",
    )
    .await;

    provision(
        server,
        &[add("amy@bw.example", "sales"), add("bob@bw.example", "ops")],
    )
    .await;
    // Accepted come with the document; provisioned when the license core
    // applied them (its own pace).
    let mut seen = Vec::new();
    let mut ids = Vec::new();
    let mut take = |e: (
        EventEnvelopeOwned,
        Option<bwgate::domain::event::ProvisioningEvent>,
    ),
                    seen: &mut Vec<(EventKind, Option<String>)>| {
        assert_eq!(e.0.subscription_id, sub);
        assert_eq!(e.0.target_id.as_deref(), Some("globex"));
        assert_eq!(e.0.external_application_id.as_deref(), Some("ops-app"));
        assert_eq!(e.0.user_id, "partner:sp");
        if ids.contains(&e.0.event_id) {
            return None; // sent again before its acknowledgement: fine
        }
        ids.push(e.0.event_id.clone());
        seen.push(kind(&e));
        Some(e.0.event_id)
    };
    while seen.len() < 5 {
        let e = stream.event().await;
        if let Some(id) = take(e, &mut seen) {
            ack(server, &admin(), &id).await;
        }
    }
    // The removal after amy's provisioning.
    provision(server, &[delete("amy@bw.example", "sales")]).await;
    while seen.len() < 6 {
        let e = stream.event().await;
        if let Some(id) = take(e, &mut seen) {
            ack(server, &admin(), &id).await;
        }
    }
    let amy = Some("amy@bw.example".to_string());
    let bob = Some("bob@bw.example".to_string());
    assert_eq!(seen[0], (EventKind::OrganizationAttached, None));
    let pos = |k: (EventKind, Option<String>)| {
        seen.iter()
            .position(|x| *x == k)
            .unwrap_or_else(|| panic!("{k:?} in {seen:?}"))
    };
    assert!(
        pos((EventKind::SubscriberAccepted, amy.clone()))
            < pos((EventKind::SubscriberProvisioned, amy.clone()))
    );
    assert!(
        pos((EventKind::SubscriberProvisioned, amy.clone()))
            < pos((EventKind::SubscriberRemoved, amy.clone()))
    );
    assert!(
        pos((EventKind::SubscriberAccepted, bob.clone()))
            < pos((EventKind::SubscriberProvisioned, bob.clone()))
    );

    // Not acknowledged: the same eventID comes again after ack_timeout.
    provision(server, &[add("cat@bw.example", "ops")]).await;
    let first = stream.event().await;
    assert_eq!(
        kind(&first),
        (EventKind::SubscriberAccepted, Some("cat@bw.example".into()))
    );
    let mut again = stream.event().await;
    while again.0.event_id != first.0.event_id {
        // cat's provisioned event may come in between; leave it too.
        again = stream.event().await;
    }
    assert_eq!(
        again.0.sequence_number, first.0.sequence_number,
        "resent as it was"
    );
    ack(server, &admin(), &first.0.event_id).await;

    // A heartbeat answers on the stream; the channel set lists the channel.
    let r = call(
        server,
        Method::PUT,
        &format!("{EVENTS}/channel/{}/heartbeat", stream.id),
        &admin(),
        "",
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    loop {
        let chunk = stream
            .next(Duration::from_secs(5))
            .await
            .expect("heartbeat chunk");
        if chunk.contains("ChannelHeartBeat") {
            assert_eq!(chunk, "<?xml version=\"1.0\" encoding=\"UTF-8\"?><ChannelHeartBeat xmlns=\"http://schema.broadsoft.com/xsi\"/>");
            break;
        }
    }
    let r = call(
        server,
        Method::GET,
        &format!("{EVENTS}/channelset/ops-set"),
        &admin(),
        "",
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(
        r.text()
            .contains(&format!("<channelId>{}</channelId>", stream.id)),
        "{}",
        r.text()
    );
    let r = call(
        server,
        Method::GET,
        &format!("{EVENTS}/subscription/{sub}"),
        &admin(),
        "",
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(
        r.text().contains("<event>Provisioning</event>"),
        "{}",
        r.text()
    );
    assert!(
        r.text().contains("<channelSetId>ops-set</channelSetId>"),
        "{}",
        r.text()
    );

    // Deleting the channel: ChannelTerminatedEvent, then the stream ends.
    let r = call(
        server,
        Method::DELETE,
        &format!("{EVENTS}/channel/{}", stream.id),
        &admin(),
        "",
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let mut last = String::new();
    while let Some(chunk) = stream.next(Duration::from_secs(5)).await {
        last = chunk;
    }
    assert!(last.contains("xsi:ChannelTerminatedEvent"), "{last}");
    assert!(last.contains(&stream.id), "{last}");
    let r = call(
        server,
        Method::PUT,
        &format!("{EVENTS}/channel/{}/heartbeat", stream.id),
        &admin(),
        "",
    )
    .await;
    assert_eq!(
        (r.status.as_u16(), error_code(&r.text())),
        (404, "9015".to_string())
    );

    let metrics = crate::harness::admin_get(server.admin, "/metrics").await.1;
    assert!(
        crate::harness::metric_value(&metrics, "bwgate_xsi_events_resent_total").unwrap_or(0.0)
            >= 1.0,
        "{metrics}"
    );
}

#[tokio::test]
async fn users_see_their_own_events_only_and_limits_and_heartbeat_timeouts_hold() {
    let s =
        started("max_channels_per_owner = 2\nheartbeat_timeout_secs = 5\npoll_interval_ms = 50\n");
    let server = &s.server;
    provision(
        server,
        &[
            add("kim@bw.example", "sales"),
            add("lee@bw.example", "sales"),
        ],
    )
    .await;
    let kim = basic("kim@bw.example", "Kim-secret-1");

    // Kim may not watch Lee, nor the enterprise.
    let (status, code, text) = refused(
        server,
        Method::POST,
        &format!("{EVENTS}/user/lee@bw.example"),
        &kim,
        &subscription("k", "a"),
    )
    .await;
    assert_eq!((status, code.as_str()), (403, "9038"), "{text}");
    let (status, code, text) = refused(
        server,
        Method::POST,
        &format!("{EVENTS}/enterprise/globex"),
        &kim,
        &subscription("k", "a"),
    )
    .await;
    assert_eq!((status, code.as_str()), (403, "9040"), "{text}");
    // Another package is not served; a bad document is refused.
    let other = subscription("k", "a").replace("Provisioning", "Basic Call");
    let (status, code, text) = refused(
        server,
        Method::POST,
        &format!("{EVENTS}/user/kim@bw.example"),
        &kim,
        &other,
    )
    .await;
    assert_eq!((status, code.as_str()), (400, "9017"), "{text}");
    let r = call(
        server,
        Method::POST,
        &format!("{EVENTS}/user/kim@bw.example"),
        &kim,
        "<Subscription/>",
    )
    .await;
    assert_eq!(r.status, 400, "{}", r.text());
    // Without credentials: 401 with the XSI challenge.
    let r = call(
        server,
        Method::POST,
        &format!("{EVENTS}/user/kim@bw.example"),
        "",
        "",
    )
    .await;
    assert_eq!(r.status, 401, "{}", r.text());

    let mut a = open_channel(server, &kim, "k").await.unwrap();
    let b = open_channel(server, &kim, "k2").await.unwrap();
    let refused = open_channel(server, &kim, "k3")
        .await
        .err()
        .expect("a third is refused");
    assert_eq!(
        (refused.0, error_code(&refused.1)),
        (403, "9039".to_string()),
        "{}",
        refused.1
    );
    subscribe(server, &kim, "user/kim@bw.example", "k", "kim-app").await;
    // Another user cannot touch Kim's channel.
    let lee = basic("lee@bw.example", "Lee-secret-1");
    let r = call(
        server,
        Method::DELETE,
        &format!("{EVENTS}/channel/{}", b.id),
        &lee,
        "",
    )
    .await;
    assert_eq!(r.status, 404, "{}", r.text());

    // Lee's change is not Kim's business; Kim's removal is.
    provision(server, &[delete("lee@bw.example", "sales")]).await;
    provision(server, &[delete("kim@bw.example", "sales")]).await;
    // Kim's own events only (the provisioned one may come first).
    let e = loop {
        let e = a.event().await;
        assert_eq!(kind(&e).1.as_deref(), Some("kim@bw.example"));
        if kind(&e).0 == EventKind::SubscriberRemoved {
            break e;
        }
    };
    assert_eq!(e.0.target_id.as_deref(), Some("kim@bw.example"));

    // No heartbeat: both channels end within the timeout (plus a pass).
    let started = std::time::Instant::now();
    let mut a_end = String::new();
    while let Some(chunk) = a.next(Duration::from_secs(10)).await {
        a_end = chunk;
    }
    assert!(a_end.contains("HeartbeatTimeout"), "{a_end}");
    assert!(started.elapsed() < Duration::from_secs(9));
}

/// A local HTTP receiver of HTTP-contact POSTs (answers `status`).
async fn contact_receiver(status: u16) -> (u16, Arc<Mutex<Vec<(String, String)>>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let got: Arc<Mutex<Vec<(String, String)>>> = Arc::default();
    let sink = got.clone();
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            let sink = sink.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |req: Request<Incoming>| {
                    let sink = sink.clone();
                    async move {
                        let ct = req
                            .headers()
                            .get("content-type")
                            .and_then(|v| v.to_str().ok())
                            .unwrap_or("")
                            .to_string();
                        let body = req.into_body().collect().await.unwrap().to_bytes();
                        sink.lock()
                            .unwrap()
                            .push((ct, String::from_utf8_lossy(&body).into_owned()));
                        let mut resp = Response::new(Full::new(Bytes::new()));
                        *resp.status_mut() = hyper::StatusCode::from_u16(status).unwrap();
                        Ok::<_, std::convert::Infallible>(resp)
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(tcp), service)
                    .await;
            });
        }
    });
    (port, got)
}

#[tokio::test]
async fn http_contacts_get_each_event_once_in_order_and_unacknowledged_events_survive_a_crash() {
    let s = started("ack_timeout_secs = 1\npoll_interval_ms = 50\n");
    let mut server = s.server;
    let (port, got) = contact_receiver(200).await;
    let contact = format!("http://127.0.0.1:{port}/events");
    let sub = subscribe(
        &server,
        &admin(),
        "serviceprovider/globex/group/ops",
        &contact,
        "hook",
    )
    .await;
    provision(
        &server,
        &[add("dan@bw.example", "ops"), add("eve@bw.example", "other")],
    )
    .await;

    // dan (group ops): accepted, provisioned; eve is another group's.
    let received = crate::harness::eventually(
        server.with_logs("two events at the contact"),
        Duration::from_secs(10),
        || {
            let got = got.clone();
            async move {
                let g = got.lock().unwrap().clone();
                if g.len() >= 2 {
                    Ok(g)
                } else {
                    Err(g.len())
                }
            }
        },
    )
    .await;
    let events: Vec<_> = received
        .iter()
        .map(|(ct, body)| {
            assert_eq!(ct, "application/xml; charset=UTF-8");
            let doc = bwgate::xsi::parse_str(body, &Default::default()).unwrap();
            let e = read_event(&doc).unwrap();
            assert_eq!(e.0.subscription_id, sub);
            (kind(&e), e.0.event_id.clone())
        })
        .collect();
    assert_eq!(
        events.iter().map(|(k, _)| k.clone()).collect::<Vec<_>>(),
        vec![
            (
                EventKind::SubscriberAccepted,
                Some("dan@bw.example".to_string())
            ),
            (
                EventKind::SubscriberProvisioned,
                Some("dan@bw.example".to_string())
            ),
        ]
    );
    // Answered 200: not sent again.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(got.lock().unwrap().len(), 2);

    // A channel subscription whose events are not acknowledged before a
    // restart: they come again after it, on a new channel of the same set.
    let mut stream = open_channel(&server, &admin(), "durable").await.unwrap();
    let durable = subscribe(
        &server,
        &admin(),
        "serviceprovider/globex",
        "durable",
        "d-app",
    )
    .await;
    provision(&server, &[delete("dan@bw.example", "ops")]).await;
    let before = stream.event().await;
    assert_eq!(
        kind(&before),
        (EventKind::SubscriberRemoved, Some("dan@bw.example".into()))
    );
    drop(stream);
    // A crash, not a drain: nothing is written back on the way out.
    server.signal("KILL");
    let killed = server.wait_exit(Duration::from_secs(20));
    assert!(!killed.success(), "killed: {killed:?}");
    server.spawn();
    let mut stream = open_channel(&server, &admin(), "durable").await.unwrap();
    let after = stream.event().await;
    assert_eq!(
        after.0.event_id, before.0.event_id,
        "the same event, unacknowledged"
    );
    assert_eq!(after.0.subscription_id, durable);
    assert!(matches!(
        after.0.event_type,
        EventType::Provisioning(EventKind::SubscriberRemoved)
    ));
    ack(&server, &admin(), &after.0.event_id).await;
    // The HTTP contact got the removal too, once.
    crate::harness::eventually(
        "the removal at the contact",
        Duration::from_secs(10),
        || {
            let got = got.clone();
            async move {
                let n = got.lock().unwrap().len();
                if n >= 3 {
                    Ok(())
                } else {
                    Err(n)
                }
            }
        },
    )
    .await;
    assert!(got.lock().unwrap()[2]
        .1
        .contains("xsi:SubscriberRemovedEvent"));
}

/// `tests/support/xsi_events_client.py`, a real streaming client in
/// another process: killed if the test ends before it does.
struct PythonClient {
    child: std::process::Child,
    lines: tokio::sync::mpsc::UnboundedReceiver<String>,
    stderr: std::thread::JoinHandle<String>,
}

impl PythonClient {
    fn start(server: &Server, args: &[&str]) -> PythonClient {
        use std::io::{BufRead, Read};
        let script = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/support/xsi_events_client.py"
        );
        let mut child = std::process::Command::new("python3")
            .arg(script)
            .args(["--port", &server.https.port().to_string()])
            .arg("--certs")
            .arg(server.certs())
            .args(args)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("run python3 tests/support/xsi_events_client.py");
        let (tx, lines) = tokio::sync::mpsc::unbounded_channel();
        let stdout = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stdout).lines() {
                let Ok(line) = line else { return };
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        let mut err = child.stderr.take().unwrap();
        let stderr = std::thread::spawn(move || {
            let mut s = String::new();
            let _ = err.read_to_string(&mut s);
            s
        });
        PythonClient {
            child,
            lines,
            stderr,
        }
    }

    /// The next stdout line as JSON; `None` when stdout closed (or nothing
    /// came in `wait`).
    async fn next(&mut self, wait: Duration) -> Option<serde_json::Value> {
        let line = tokio::time::timeout(wait, self.lines.recv()).await.ok()??;
        Some(serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line:?}")))
    }

    /// Waits for the exit (at most `wait`); its status and stderr.
    fn finish(mut self, wait: Duration) -> (std::process::ExitStatus, String) {
        let deadline = std::time::Instant::now() + wait;
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            if std::time::Instant::now() >= deadline {
                let _ = self.child.kill();
                break self.child.wait().unwrap();
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let stderr = std::mem::replace(&mut self.stderr, std::thread::spawn(String::new));
        (status, stderr.join().unwrap_or_default())
    }
}

impl Drop for PythonClient {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test]
async fn a_python_streaming_client_subscribes_acknowledges_and_sees_provisioning_in_order() {
    let s = started("poll_interval_ms = 50\n");
    let server = &s.server;
    let auth = admin();
    let mut client = PythonClient::start(
        server,
        &[
            "--auth",
            &auth,
            "--target",
            "serviceprovider/globex",
            "--channel-set",
            "py-set",
            "--application-id",
            "py-app",
            "--events",
            "5",
            "--timeout",
            "12",
        ],
    );
    let mut lines = Vec::new();
    // The channel, then the subscription: only then is there something
    // to see.
    while lines.len() < 2 {
        let Some(line) = client.next(Duration::from_secs(8)).await else {
            let (status, stderr) = client.finish(Duration::from_secs(1));
            panic!(
                "the client did not subscribe ({status}): {lines:?}\n{stderr}\n{}",
                server.logs()
            );
        };
        lines.push(line);
    }
    assert_eq!(lines[0]["type"], "Channel", "{lines:?}");
    assert_eq!(lines[0]["expires"], "3600", "{lines:?}");
    let channel = lines[0]["channelId"].as_str().unwrap().to_string();
    assert_eq!(lines[1]["type"], "Subscribed", "{lines:?}");
    let sub = lines[1]["subscriptionId"].as_str().unwrap().to_string();
    assert!(!sub.is_empty());

    provision(
        server,
        &[add("amy@bw.example", "sales"), add("bob@bw.example", "ops")],
    )
    .await;
    while let Some(line) = client.next(Duration::from_secs(12)).await {
        lines.push(line);
    }
    let (status, stderr) = client.finish(Duration::from_secs(3));
    assert!(
        status.success(),
        "the client failed ({status}): {lines:#?}\n{stderr}\n{}",
        server.logs()
    );

    let types: Vec<&str> = lines.iter().map(|l| l["type"].as_str().unwrap()).collect();
    // Every event of the subscription, on this channel, acknowledged (no
    // resend: each eventID once).
    let events: Vec<&serde_json::Value> = lines
        .iter()
        .filter(|l| l["type"] == "SubscriptionEvent")
        .collect();
    for e in &events {
        assert_eq!(e["subscriptionId"], sub.as_str(), "{e}");
        assert_eq!(e["channelId"], channel.as_str(), "{e}");
        assert_eq!(e["targetId"], "globex", "{e}");
        assert_eq!(e["userId"], "partner:sp", "{e}");
    }
    let mut ids: Vec<&str> = events
        .iter()
        .map(|e| e["eventID"].as_str().unwrap())
        .collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), events.len(), "no event twice: {lines:#?}");
    let numbers: Vec<u64> = events
        .iter()
        .map(|e| e["sequenceNumber"].as_str().unwrap().parse().unwrap())
        .collect();
    assert!(numbers.windows(2).all(|w| w[0] < w[1]), "{numbers:?}");
    let seen: Vec<(String, Option<String>)> = events
        .iter()
        .map(|e| {
            (
                e["eventData"].as_str().unwrap().to_string(),
                e["eventDataUserId"].as_str().map(str::to_string),
            )
        })
        .collect();
    let amy = || Some("amy@bw.example".to_string());
    let bob = || Some("bob@bw.example".to_string());
    let pos = |kind: &str, user: Option<String>| {
        seen.iter()
            .position(|x| x.0 == kind && x.1 == user)
            .unwrap_or_else(|| panic!("{kind} {user:?} in {seen:?}"))
    };
    assert_eq!(seen.len(), 5, "{seen:?}");
    assert_eq!(seen[0], ("OrganizationAttachedEvent".to_string(), None));
    assert!(pos("SubscriberAcceptedEvent", amy()) < pos("SubscriberProvisionedEvent", amy()));
    assert!(pos("SubscriberAcceptedEvent", bob()) < pos("SubscriberProvisionedEvent", bob()));

    // The order of the whole conversation: Channel, Subscribed, the five
    // events, the heartbeat the client sent then, ChannelTerminatedEvent,
    // and the client's summary.
    let last_event = types
        .iter()
        .rposition(|t| *t == "SubscriptionEvent")
        .unwrap();
    let beat = types
        .iter()
        .position(|t| *t == "ChannelHeartBeat")
        .unwrap_or_else(|| panic!("a heartbeat in {types:?}"));
    assert!(beat > last_event, "{types:?}");
    assert_eq!(
        types[types.len() - 2..],
        ["ChannelTerminatedEvent", "Done"],
        "{types:?}"
    );
    let terminated = &lines[lines.len() - 2];
    assert_eq!(terminated["channelId"], channel.as_str(), "{terminated}");
    assert_eq!(terminated["reason"], "ChannelDeleted", "{terminated}");
    assert_eq!(lines[lines.len() - 1]["events"], 5);
    assert_eq!(
        types
            .iter()
            .filter(|t| **t != "SubscriptionEvent" && **t != "ChannelHeartBeat")
            .collect::<Vec<_>>(),
        [
            &"Channel",
            &"Subscribed",
            &"ChannelTerminatedEvent",
            &"Done"
        ],
        "{types:?}"
    );

    // The channel is gone; the subscription stays until deleted.
    let r = call(
        server,
        Method::GET,
        &format!("{EVENTS}/channelset/py-set"),
        &admin(),
        "",
    )
    .await;
    assert_eq!(r.status, 404, "{}", r.text());
    let r = call(
        server,
        Method::GET,
        &format!("{EVENTS}/subscription/{sub}"),
        &admin(),
        "",
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
}

/// Two nodes on one PostgreSQL database: a channel on node A gets the
/// events of provisioning done through node B as well as through A, each
/// user's accepted before its provisioned, every user, none lost, while
/// both nodes commit at once (sequence values can commit out of order;
/// the reader waits on the holes).
#[tokio::test]
async fn a_channel_on_one_node_sees_what_every_node_provisions() {
    use crate::pg_cluster::PgCluster;
    use std::collections::{BTreeMap, BTreeSet};

    let url = tokio::task::spawn_blocking(|| PgCluster::shared().fresh_url())
        .await
        .expect("cluster");
    let hash = bwgate::domain::credentials::hash_password(ADMIN_TOKEN).unwrap();
    let cfg = format!(
        "[xsi.events]\npoll_interval_ms = 50\n\n\
         [[partners]]\nid = \"sp\"\nname = \"SP\"\nadmin_token_hash = \"{hash}\"\n\n\
         [[templates]]\nprovisioning_id = \"trusted\"\npartner = \"sp\"\nname = \"Trusted\"\n\
         provisioning_username = \"act\"\nprovisioning_password = \"act-pw-1\"\n"
    );
    let env = [
        ("BWGATE__STORE__BACKEND", "postgres"),
        ("BWGATE__STORE__URL", url.as_str()),
        ("BWGATE__LIMITS__RATE_PER_SEC", "0"),
    ];
    let mut a = Server::unstarted(Some(&cfg), &[], &env);
    a.spawn();
    let mut b = Server::unstarted(Some(&cfg), &[], &env);
    // Nodes share the link secret (operators copy one file).
    std::fs::create_dir_all(b.path("data")).unwrap();
    std::fs::copy(a.path("data/secret.key"), b.path("data/secret.key")).unwrap();
    b.spawn();

    let mut stream = open_channel(&a, &admin(), "nodes").await.unwrap();
    subscribe(&a, &admin(), "serviceprovider/globex", "nodes", "nodes-app").await;

    // Ten one-user documents to each node, at once.
    let send = |server: &Server, node: &'static str| {
        let docs: Vec<String> = (0..10)
            .map(|i| document(None, &[add(&format!("{node}{i}@bw.example"), "ops")]))
            .collect();
        let client = server.client();
        async move {
            for doc in docs {
                let mut req = bwgate::client::request(
                    "POST",
                    "/uc-one/v1/provisioning/trusted",
                    Bytes::from(doc),
                    Some("application/xml"),
                );
                req.headers_mut()
                    .insert("authorization", AUTH.parse().unwrap());
                let r = client.request(req).await.expect("post");
                assert_eq!(r.status, 200, "{}", r.text());
                assert!(!r.text().contains("<error"), "{}", r.text());
            }
        }
    };
    tokio::join!(send(&a, "a"), send(&b, "b"));

    // Every user accepted then provisioned, whichever node took it.
    let mut seen: BTreeMap<String, Vec<EventKind>> = BTreeMap::new();
    let mut ids = BTreeSet::new();
    let done = |seen: &BTreeMap<String, Vec<EventKind>>| {
        seen.len() == 20
            && seen
                .values()
                .all(|k| k.contains(&EventKind::SubscriberProvisioned))
    };
    while !done(&seen) {
        let (env, event) = stream.event().await;
        ack(&a, &admin(), &env.event_id).await;
        if !ids.insert(env.event_id.clone()) {
            continue;
        }
        let event = event.expect("a provisioning event");
        if let Some(user) = event.user_id {
            seen.entry(user).or_default().push(event.kind);
        }
    }
    for (user, kinds) in &seen {
        assert_eq!(
            kinds,
            &vec![
                EventKind::SubscriberAccepted,
                EventKind::SubscriberProvisioned
            ],
            "{user}"
        );
    }
    let users: BTreeSet<&str> = seen.keys().map(String::as_str).collect();
    assert!(users.contains("a0@bw.example") && users.contains("b9@bw.example"));
}
