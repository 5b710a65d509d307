#!/usr/bin/env python3
"""A real Xsi-Events streaming client, as BroadWorks clients are written:
one long-lived HTTPS connection holds the channel's chunked stream, a
second one carries the subscription, the acknowledgements (eventresponse),
the heartbeat and the channel's DELETE.

  xsi_events_client.py --port P --certs DIR --auth 'Bearer TOKEN' \
      [--target serviceprovider/globex] [--events N] [--timeout SECS]

It connects over mTLS (DIR/ca.crt, DIR/client.crt, DIR/client.key; server
name `localhost`, address --address), POSTs
`/com.broadsoft.async/com.broadsoft.xsi-events/v2.0/channel` and reads the
stream incrementally (`HTTPResponse.read1`: the stream does not end until
the channel does), split into documents the way XSI clients split it
(`</Channel>`, `<ChannelHeartBeat …/>`, `</xsi:Event>`). Each document is
printed as one JSON line on stdout, flushed at once:

  {"type": "Channel", "channelId", "expires"}
  {"type": "ChannelHeartBeat"}
  {"type": "SubscriptionEvent", "eventID", "sequenceNumber", "userId",
   "subscriptionId", "channelId", "targetId", "eventData", "eventDataUserId"}
  {"type": "ChannelTerminatedEvent", "channelId", "reason"}

and what the client did on its second connection, also one line each:

  {"type": "Subscribed", "subscriptionId", "expires"}
  {"type": "Done", "events": N}

Every event with an eventID is acknowledged (POST …/channel/eventresponse,
200). After N distinct events the client sends a heartbeat (PUT
…/channel/<id>/heartbeat), waits for its ChannelHeartBeat, DELETEs its
channel, reads the ChannelTerminatedEvent and the end of the stream, and
exits 0. Exit 1 on an unexpected answer, 2 on the timeout (after
DELETEing its channel); the reason goes to stderr.

Standard library only (Python 3.11).
"""

import argparse
import http.client
import json
import os
import queue
import re
import socket
import ssl
import sys
import threading
import time
import xml.etree.ElementTree as ET

EVENTS = "/com.broadsoft.xsi-events/v2.0"
ADD_CHANNEL = "/com.broadsoft.async/com.broadsoft.xsi-events/v2.0/channel"
XSI = "{http://schema.broadsoft.com/xsi}"
XSI_TYPE = "{http://www.w3.org/2001/XMLSchema-instance}type"

# Where a document ends, as XSI clients match it (facts §3.2).
END_OF_DOCUMENT = re.compile(rb"</Channel>|<ChannelHeartBeat[^>]*/>|</xsi:Event>")


class Failed(Exception):
    """An answer the client did not expect (exit 1)."""


class TimedOut(Exception):
    """The timeout passed (exit 2)."""


class Connection(http.client.HTTPSConnection):
    """HTTPS to `address` with `server_name` for SNI and the certificate
    check (the dev certificate names `localhost`)."""

    def __init__(self, address, port, server_name, context, timeout):
        super().__init__(server_name, port, context=context, timeout=timeout)
        self._address = address

    def connect(self):
        sock = socket.create_connection((self._address, self.port), self.timeout)
        self.sock = self._context.wrap_socket(sock, server_hostname=self.host)


def emit(line):
    print(json.dumps(line, sort_keys=False), flush=True)


def log(message):
    print(f"xsi_events_client: {message}", file=sys.stderr, flush=True)


def text(el, name):
    child = el.find(XSI + name) if el is not None else None
    return child.text if child is not None else None


def xsi_type(el):
    value = el.get(XSI_TYPE) if el is not None else None
    return value.split(":", 1)[-1] if value else None


def describe(doc):
    """One stream document as a JSON-able dict."""
    root = ET.fromstring(doc)
    name = root.tag.removeprefix(XSI)
    if name == "Channel":
        return {
            "type": "Channel",
            "channelId": text(root, "channelId"),
            "expires": text(root, "expires"),
        }
    if name == "ChannelHeartBeat":
        return {"type": "ChannelHeartBeat"}
    if name == "Event":
        kind = xsi_type(root)
        if kind == "ChannelTerminatedEvent":
            return {
                "type": kind,
                "channelId": text(root, "channelId"),
                "reason": text(root, "reason"),
            }
        data = root.find(XSI + "eventData")
        return {
            "type": kind,
            "eventID": text(root, "eventID"),
            "sequenceNumber": text(root, "sequenceNumber"),
            "userId": text(root, "userId"),
            "subscriptionId": text(root, "subscriptionId"),
            "channelId": text(root, "channelId"),
            "targetId": text(root, "targetId"),
            "eventData": xsi_type(data),
            "eventDataUserId": text(data, "userId"),
        }
    return {"type": name}


def read_stream(resp, out):
    """Reads the chunked stream as it comes (`read1`, never to the end at
    once) and puts each whole document on `out`; `None` at its end."""
    buffer = b""
    try:
        while True:
            data = resp.read1(65536)
            if not data:
                break
            buffer += data
            while True:
                end = END_OF_DOCUMENT.search(buffer)
                if end is None:
                    break
                doc, buffer = buffer[: end.end()], buffer[end.end():]
                out.put(doc.strip())
    except Exception as e:  # the connection broke: the stream ended
        out.put(e)
    if buffer.strip():
        out.put(Failed(f"the stream ended inside a document: {buffer[:200]!r}"))
    out.put(None)


class Client:
    def __init__(self, args):
        self.args = args
        self.deadline = time.monotonic() + args.timeout
        ctx = ssl.create_default_context(cafile=os.path.join(args.certs, "ca.crt"))
        ctx.load_cert_chain(
            os.path.join(args.certs, "client.crt"), os.path.join(args.certs, "client.key")
        )
        self.context = ctx
        self.control = self.connect(timeout=10)
        self.docs = queue.Queue()
        self.channel_id = None

    def connect(self, timeout):
        return Connection(
            self.args.address, self.args.port, self.args.server_name, self.context, timeout
        )

    def request(self, method, path, body=None):
        """One request on the control connection (opened again once if the
        server closed it between requests); returns (status, text)."""
        headers = {"Authorization": self.args.auth}
        if body is not None:
            headers["Content-Type"] = "application/xml"
        for attempt in (1, 2):
            try:
                self.control.request(method, path, body=body, headers=headers)
                resp = self.control.getresponse()
                return resp.status, resp.read().decode("utf-8", "replace")
            except (http.client.RemoteDisconnected, ConnectionError, BrokenPipeError):
                self.control.close()
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def expect(self, status, what, method, path, body=None):
        got, answer = self.request(method, path, body)
        if got != status:
            raise Failed(f"{what}: expected {status}, got {got}: {answer}")
        return answer

    def next_doc(self):
        """The next stream document, described; `None` at the stream's end."""
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise TimedOut("timed out")
        try:
            doc = self.docs.get(timeout=left)
        except queue.Empty:
            raise TimedOut("timed out waiting for the stream") from None
        if doc is None:
            return None
        if isinstance(doc, Exception):
            raise Failed(f"reading the stream: {doc!r}")
        line = describe(doc)
        emit(line)
        return line

    def open_channel(self):
        stream = self.connect(timeout=None)
        body = (
            '<?xml version="1.0" encoding="UTF-8"?>'
            '<Channel xmlns="http://schema.broadsoft.com/xsi">'
            f"<channelSetId>{self.args.channel_set}</channelSetId>"
            "<priority>1</priority><weight>50</weight>"
            f"<expires>{self.args.expires}</expires></Channel>"
        )
        stream.request(
            "POST",
            ADD_CHANNEL,
            body=body,
            headers={"Authorization": self.args.auth, "Content-Type": "application/xml"},
        )
        resp = stream.getresponse()
        if resp.status != 200:
            raise Failed(f"channel: {resp.status} {resp.read().decode('utf-8', 'replace')}")
        if resp.getheader("Transfer-Encoding", "").lower() != "chunked":
            raise Failed(f"channel: not chunked: {resp.getheaders()}")
        threading.Thread(target=read_stream, args=(resp, self.docs), daemon=True).start()
        first = self.next_doc()
        if first is None or first["type"] != "Channel" or not first["channelId"]:
            raise Failed(f"the first document is not a Channel: {first}")
        self.channel_id = first["channelId"]

    def subscribe(self):
        body = (
            '<Subscription xmlns="http://schema.broadsoft.com/xsi">'
            f"<event>{self.args.event}</event><expires>{self.args.expires}</expires>"
            f"<channelSetId>{self.args.channel_set}</channelSetId>"
            f"<applicationId>{self.args.application_id}</applicationId></Subscription>"
        )
        answer = self.expect(200, "subscribe", "POST", f"{EVENTS}/{self.args.target}", body)
        root = ET.fromstring(answer)
        emit(
            {
                "type": "Subscribed",
                "subscriptionId": text(root, "subscriptionId"),
                "expires": text(root, "expires"),
            }
        )

    def acknowledge(self, event_id):
        body = (
            '<EventResponse xmlns="http://schema.broadsoft.com/xsi">'
            f"<eventID>{event_id}</eventID><statusCode>200</statusCode>"
            "<reason>OK</reason></EventResponse>"
        )
        self.expect(200, "eventresponse", "POST", f"{EVENTS}/channel/eventresponse", body)

    def heartbeat(self):
        self.expect(200, "heartbeat", "PUT", f"{EVENTS}/channel/{self.channel_id}/heartbeat")

    def run(self):
        self.open_channel()
        self.subscribe()
        seen = set()
        next_beat = time.monotonic() + self.args.heartbeat_interval
        while len(seen) < self.args.events:
            if time.monotonic() >= next_beat:
                self.heartbeat()
                next_beat = time.monotonic() + self.args.heartbeat_interval
            # Wake up for the periodic heartbeat, not only for documents.
            saved = self.deadline
            self.deadline = min(saved, next_beat)
            try:
                doc = self.next_doc()
            except TimedOut:
                if time.monotonic() >= saved:
                    raise
                continue
            finally:
                self.deadline = saved
            if doc is None:
                raise Failed("the stream ended before the events came")
            if doc["type"] == "ChannelTerminatedEvent":
                raise Failed(f"the channel ended: {doc}")
            if doc.get("eventID"):
                # Every event but ChannelTerminatedEvent is acknowledged,
                # a resent one again (the first acknowledgement may have
                # crossed it).
                self.acknowledge(doc["eventID"])
                seen.add(doc["eventID"])
        # One heartbeat, answered on the stream.
        self.heartbeat()
        while True:
            doc = self.next_doc()
            if doc is None:
                raise Failed("the stream ended before the heartbeat came")
            if doc["type"] == "ChannelHeartBeat":
                break
            if doc.get("eventID"):
                self.acknowledge(doc["eventID"])
        self.close_channel()
        emit({"type": "Done", "events": len(seen)})

    def close_channel(self):
        """DELETEs the channel, reads to the ChannelTerminatedEvent and the
        stream's end."""
        self.expect(200, "delete channel", "DELETE", f"{EVENTS}/channel/{self.channel_id}")
        channel_id, self.channel_id = self.channel_id, None
        terminated = False
        while True:
            doc = self.next_doc()
            if doc is None:
                break
            if doc["type"] == "ChannelTerminatedEvent":
                if doc["channelId"] != channel_id:
                    raise Failed(f"terminated another channel: {doc}")
                terminated = True
            elif terminated:
                raise Failed(f"a document after ChannelTerminatedEvent: {doc}")
            elif doc.get("eventID"):
                self.acknowledge(doc["eventID"])
        if not terminated:
            raise Failed("the stream ended without a ChannelTerminatedEvent")

    def cleanup(self):
        """After a failure: the channel is not left open."""
        if self.channel_id:
            try:
                self.deadline = time.monotonic() + 5
                self.request("DELETE", f"{EVENTS}/channel/{self.channel_id}")
            except Exception as e:
                log(f"deleting the channel: {e!r}")


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--address", default="127.0.0.1", help="where to connect")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--server-name", default="localhost", help="TLS server name")
    p.add_argument("--certs", required=True, help="directory with ca.crt, client.crt, client.key")
    p.add_argument("--auth", required=True, help="the Authorization header value")
    p.add_argument("--target", default="serviceprovider/globex", help="what to subscribe to")
    p.add_argument("--event", default="Provisioning", help="the event package")
    p.add_argument("--channel-set", default="py-client-set")
    p.add_argument("--application-id", default="py-client")
    p.add_argument("--expires", type=int, default=3600)
    p.add_argument("--events", type=int, default=1, help="exit after this many events")
    p.add_argument("--timeout", type=float, default=30.0, help="seconds in all")
    p.add_argument("--heartbeat-interval", type=float, default=15.0, help="seconds")
    args = p.parse_args()
    client = None
    try:
        client = Client(args)
        client.run()
        return 0
    except TimedOut as e:
        log(str(e))
        status = 2
    except Exception as e:
        log(f"{type(e).__name__}: {e}")
        status = 1
    if client is not None:
        client.cleanup()
    return status


if __name__ == "__main__":
    sys.exit(main())
