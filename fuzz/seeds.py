#!/usr/bin/env python3
"""Writes the seed inputs of the fuzz targets from the conformance suite
(tests/conformance/*/NN-request.xml and their case.toml step settings) plus a
few hand-written HTTP requests, and from the XSI samples
(tests/support/xsi-samples/*.xml, tests/support/xsp-profile.xml) plus a few
hand-written XSI documents, into fuzz/corpus/<target>/seed-*.

    python3 fuzz/seeds.py [TARGET...]     # all targets when none is named

The committed corpus was started from these seeds, grown by fuzzing and
minimized with `cargo fuzz cmin`; rerun this after a conformance case is
added, then minimize again.
"""

import base64
import hashlib
import pathlib
import re
import struct
import sys
import tomllib

ROOT = pathlib.Path(__file__).resolve().parent.parent
CONFORMANCE = ROOT / "tests" / "conformance"
SUPPORT = ROOT / "tests" / "support"
OUT = ROOT / "fuzz" / "corpus"

TEMPLATES = {
    None: "fuzz-trusted",
    "trusted": "fuzz-trusted",
    "untrusted": "fuzz-untrusted",
    "group": "fuzz-group",
    "wholesale": "fuzz-wholesale",
    "unknown": "no-such-template",
}
AUTH = "Basic " + base64.b64encode(b"fuzz:fuzz-pw").decode()
WRONG = "Basic " + base64.b64encode(b"fuzz:wrong-pw").decode()
PREFIX = "/uc-one/v1/provisioning/"


def substitute(data: bytes) -> bytes:
    return data.replace(b"{{run}}", b"f00d").replace(b"{{i}}", b"0")


WANTED = set(sys.argv[1:])


def write(target: str, data: bytes) -> None:
    if WANTED and target not in WANTED:
        return
    d = OUT / target
    d.mkdir(parents=True, exist_ok=True)
    (d / ("seed-" + hashlib.sha1(data).hexdigest()[:16])).write_bytes(data)


def http1(method, path, headers, body=b"") -> bytes:
    head = f"{method} {path} HTTP/1.1\r\nHost: localhost\r\n"
    for k, v in headers:
        head += f"{k}: {v}\r\n"
    if body or method == "POST":
        head += f"Content-Length: {len(body)}\r\n"
    return head.encode("latin-1") + b"\r\n" + body


def hpack_literal(index: int, value: bytes) -> bytes:
    # Literal header field with incremental indexing, indexed name (6-bit
    # prefix), raw (non-Huffman) value shorter than 127 bytes.
    assert index < 63 and len(value) < 127
    return bytes([0x40 | index, len(value)]) + value


def frame(kind: int, flags: int, stream: int, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload))[1:] + bytes([kind, flags]) + struct.pack(">I", stream) + payload


def http2(method_index: int, path: bytes, extra: bytes, body: bytes) -> bytes:
    # Static table: 2 = :method GET, 3 = :method POST, 7 = :scheme https,
    # 1 = :authority, 4 = :path, 31 = content-type, 23 = authorization,
    # 28 = content-length.
    block = bytes([0x80 | method_index, 0x87]) + hpack_literal(1, b"localhost")
    block += hpack_literal(4, path) + extra
    out = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + frame(0x4, 0, 0, b"")
    if body:
        block += hpack_literal(28, str(len(body)).encode())
        out += frame(0x1, 0x4, 1, block)  # HEADERS, END_HEADERS
        out += frame(0x0, 0x1, 1, body)  # DATA, END_STREAM
    else:
        out += frame(0x1, 0x5, 1, block)  # END_HEADERS | END_STREAM
    return out


def main() -> None:
    for case in sorted(p for p in CONFORMANCE.iterdir() if p.is_dir()):
        settings = {}
        if (case / "case.toml").exists():
            settings = tomllib.loads((case / "case.toml").read_text())
        steps = settings.get("step", [])
        for req in sorted(case.glob("*-request.xml")):
            n = int(req.name.split("-")[0])
            step = steps[n - 1] if n - 1 < len(steps) else {}
            body = substitute(req.read_bytes())
            ct = step.get("content_type", "application/xml")
            # Flow-through parser: the body, with the Content-Type line
            # when the case sends a non-default one.
            if ct != "application/xml":
                write("flowthrough_parse", f"Content-Type: {ct}\n".encode("latin-1") + body)
            else:
                write("flowthrough_parse", body)
            # HTTP: the request as the conformance runner sends it.
            template = TEMPLATES[step.get("template", settings.get("template"))]
            auth = {"none": None, "wrong-password": WRONG}.get(step.get("auth"), AUTH)
            headers = []
            if ct:
                headers.append(("Content-Type", ct))
            if auth:
                headers.append(("Authorization", auth))
            method = step.get("method", "POST")
            write("http_request", http1(method, PREFIX + template, headers, body if method == "POST" else b""))

    add_user = substitute((CONFORMANCE / "001-adduser-trusted-email" / "01-request.xml").read_bytes())
    flow = PREFIX + "fuzz-trusted"
    xml_auth = [("Content-Type", "application/xml"), ("Authorization", AUTH)]
    extra = [
        http1("GET", "/", []),
        http1("HEAD", "/", []),
        http1("GET", "/nope?x=1", [("TrackingID", "NA_client-123")]),
        http1("DELETE", "/", []),
        http1("PUT", flow, xml_auth, add_user),
        # Pipelined: two requests on one connection.
        http1("GET", "/", []) + http1("POST", flow, xml_auth, add_user),
        # Chunked body.
        b"POST " + flow.encode() + b" HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/xml\r\n"
        + b"Authorization: " + AUTH.encode() + b"\r\nTransfer-Encoding: chunked\r\n\r\n"
        + b"%x\r\n" % len(add_user) + add_user + b"\r\n0\r\n\r\n",
        # Expect: 100-continue.
        http1("POST", flow, xml_auth + [("Expect", "100-continue")], add_user),
        # Declared length larger than what arrives.
        http1("POST", flow, xml_auth, b"")[:-4] + b"\r\nContent-Length: 9999\r\n\r\n" + add_user,
        # HTTP/1.0 without Host.
        b"GET / HTTP/1.0\r\n\r\n",
        # HTTP/2: GET / and a flow-through POST.
        http2(2, b"/", b"", b""),
        http2(3, flow.encode(), hpack_literal(31, b"application/xml") + hpack_literal(23, AUTH.encode()), add_user),
    ]
    for data in extra:
        write("http_request", data)
    # Content types the HTTP face cannot send (non-ASCII, odd parameters).
    for ct in ["application/soap+xml; charset=\"utf-8\"", "text/xml;charset=latin1", "application/x\u00e9ml"]:
        write("flowthrough_parse", f"Content-Type: {ct}\n".encode("utf-8") + add_user)

    bomb_seeds(add_user, flow, xml_auth)
    xsi_seeds()


def attribute_run(n: int, declarations: bool, prefix: str = "p") -> bytes:
    if declarations:
        return b"".join(b' xmlns:%s%d="urn:%d"' % (prefix.encode(), i, i) for i in range(n))
    return b"".join(b' a%d=""' % i for i in range(n))


def bomb_seeds(add_user: bytes, flow: str, xml_auth) -> None:
    """Attribute and namespace-declaration bombs, a few KB each: over the
    default limits (64 attributes on an element, 64 declarations in the
    document), and just under them (over the targets' tight limits of 8);
    the whole-document refusal of a raw NUL. For the flow-through parser,
    the HTTP face (as POST bodies) and the XSI reader."""
    root = b"<ProvisioningRequest"
    assert root in add_user and b"<AddUser>" in add_user
    spread = b"".join(b"<x%s/>" % attribute_run(5, True, "e%dp" % i) for i in range(16))
    documents = [
        # Over: 300 attributes on AddUser; 100 declarations on the root;
        # 80 declarations spread over 16 ignored elements.
        add_user.replace(b"<AddUser>", b"<AddUser" + attribute_run(300, False) + b">", 1),
        add_user.replace(root, root + attribute_run(100, True), 1),
        add_user.replace(b"<AddUser>", b"<AddUser><note>" + spread + b"</note>", 1),
        # Just under: 64 attributes on AddUser; 62 declarations beside the
        # root's default namespace and requestId (64 attributes, 63
        # declarations).
        add_user.replace(b"<AddUser>", b"<AddUser" + attribute_run(64, False) + b">", 1),
        add_user.replace(root, root + attribute_run(62, True), 1),
        # A duplicate past the first 16 names (the hash-set path).
        add_user.replace(b"<AddUser>", b"<AddUser" + attribute_run(40, False) + b' a7="x">', 1),
        # A raw NUL in a field, and in an ignored element.
        add_user.replace(b"</userId>", b"\x00</userId>", 1),
        add_user.replace(b"<AddUser>", b"<AddUser><note>\x00</note>", 1),
    ]
    for doc in documents:
        write("flowthrough_parse", doc)
        write("http_request", http1("POST", flow, xml_auth, doc))
    xsi = b'<Profile xmlns="http://schema.broadsoft.com/xsi"><details><userId>j@x.example</userId></details></Profile>'
    for data in [
        xsi.replace(b"<details>", b"<details" + attribute_run(300, False) + b">", 1),
        xsi.replace(b"<Profile", b"<Profile" + attribute_run(100, True), 1),
        xsi.replace(b"<details>", b"<details>" + spread, 1),
        xsi.replace(b"<details>", b"<details" + attribute_run(64, False) + b">", 1),
        xsi.replace(b"<Profile", b"<Profile" + attribute_run(63, True), 1),
        xsi.replace(b"<details>", b"<details" + attribute_run(40, False) + b' a7="x">', 1),
        xsi.replace(b"</userId>", b"\x00</userId>", 1),
    ]:
        write("xsi_parse", data)


def xsi_seeds() -> None:
    """The XSI reader: every sample as it is and behind the XML declaration
    it had on the wire; a Latin-1 profile labelled by its Content-Type; and
    hand-written documents reaching the refusals and the odd corners."""
    samples = sorted((SUPPORT / "xsi-samples").glob("*.xml")) + [SUPPORT / "xsp-profile.xml"]
    for path in samples:
        data = path.read_bytes()
        write("xsi_parse", data)
        m = re.search(rb"original prolog: (<\?xml[^>]*\?>)", data)
        if m:
            # The sample without its source comment, behind its real prolog.
            body = re.sub(rb"^<!--.*?-->\s*", b"", data, count=1, flags=re.S)
            write("xsi_parse", m.group(1) + b"\n" + body)
    write(
        "xsi_parse",
        b"Content-Type: text/xml;charset=ISO-8859-1\n"
        + b'<Profile xmlns="http://schema.broadsoft.com/xsi"><details><userId>j@x.example</userId>'
        + b"<firstName>J\xfcrgen</firstName><lastName>M&amp;M</lastName>"
        + b'<serviceProvider isEnterprise="true">sp</serviceProvider><number>5551234</number></details>'
        + b"<countryCode>49</countryCode></Profile>",
    )
    extra = [
        # bwgate's own ErrorInfo (crate::http::error::error_info_xml).
        b'<?xml version="1.0" encoding="UTF-8"?>\n<ErrorInfo xmlns="http://schema.broadsoft.com/xsi">'
        + b"<summary>bad &lt;doc&gt; &amp; more&#13;</summary><summaryEnglish>bad &lt;doc&gt; &amp; more&#13;</summaryEnglish>"
        + b"<errorCode>9011</errorCode><trackingId>BWG_1</trackingId></ErrorInfo>",
        # Prefixes, nil under another prefix, unknown prefix, reset default namespace.
        b'<x:Event xmlns:x="http://schema.broadsoft.com/xsi" xmlns:i="http://www.w3.org/2001/XMLSchema-instance" '
        + b'i:type="x:SubscriptionEvent"><x:a i:nil="true"/><b xmlns=""><c q:d="1"/></b><q:e/>'
        + b"<![CDATA[<raw> & ]]>&#x10000;&#9;</x:Event>",
        # Attribute normalization and references.
        b"<a t='x\ty\r\nz' r='&#9;&#10;&#13;&quot;&apos;&lt;&gt;&amp;'>\r\n  text\r</a>",
        # Refusals: DTD, external entity, undeclared entity, control
        # character, mismatched, unclosed, two roots, text outside.
        b"<!DOCTYPE a [<!ENTITY x SYSTEM 'file:///etc/passwd'>]><a>&x;</a>",
        b"<a>&nbsp;</a>",
        b"<a>\x01</a>",
        b"<a>&#1;</a>",
        b"<a><b></a>",
        b"<a><b>",
        b"<a/><b/>",
        b"x<a/>",
        b"<a id='1' xmlns:p='urn:p' p:id='2'/>",
        # Over the tight depth and element limits.
        b"<a>" * 8 + b"</a>" * 8,
        b"<a>" + b"<b/>" * 70 + b"</a>",
    ]
    for data in extra:
        write("xsi_parse", data)


if __name__ == "__main__":
    main()
