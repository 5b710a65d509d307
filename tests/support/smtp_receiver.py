#!/usr/bin/env python3
"""A real SMTP receiver for bwgate's email tests (aiosmtpd).

Listens on 127.0.0.1 (loopback only), optionally offers STARTTLS with a
certificate and key you pass (e.g. from `bwgate certs init`), optionally
requires AUTH, and stores every accepted message as one JSON file in
--out-dir:

    {"mail_from": "...", "rcpt_tos": [...], "tls": true, "auth_user": "...",
     "peer": "...", "data": "<the RFC 5322 message>"}

Files are written atomically (temp + rename) as NNNNNN.json in arrival
order, so a test can count and read them at any time.

Once listening, the bound address is written (atomically) to --ready-file
as {"host": "127.0.0.1", "port": N, "pid": P}. The process exits on SIGTERM
or SIGINT, and in any case after --max-lifetime seconds, so a test that dies
without stopping it leaves nothing running for long.

Recipients whose local part starts with "reject" get a permanent 550 at
RCPT; those starting with "tempfail" get a transient 451 (to test how the
sender classifies failures).
"""

import argparse
import asyncio
import itertools
import json
import os
import signal
import ssl
import sys

from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword


class Store:
    """Writes one file per accepted message."""

    def __init__(self, out_dir):
        self.out_dir = out_dir
        os.makedirs(out_dir, exist_ok=True)
        existing = [f for f in os.listdir(out_dir) if f.endswith(".json")]
        self.counter = itertools.count(len(existing) + 1)

    def save(self, record):
        n = next(self.counter)
        path = os.path.join(self.out_dir, f"{n:06d}.json")
        tmp = os.path.join(self.out_dir, f".{n:06d}.json.tmp")
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(record, f)
            f.flush()
            os.fsync(f.fileno())
        os.rename(tmp, path)
        return path


class Handler:
    def __init__(self, store):
        self.store = store

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        local = address.split("@", 1)[0].lower()
        if local.startswith("reject"):
            return "550 5.1.1 <%s>: recipient rejected (test)" % address
        if local.startswith("tempfail"):
            return "451 4.3.0 <%s>: try again later (test)" % address
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        content = envelope.original_content or envelope.content
        if isinstance(content, bytes):
            content = content.decode("utf-8", errors="replace")
        auth_user = None
        if session.auth_data is not None:
            auth_user = session.auth_data
        record = {
            "mail_from": envelope.mail_from,
            "rcpt_tos": list(envelope.rcpt_tos),
            "tls": session.ssl is not None,
            "auth_user": auth_user,
            "peer": str(session.peer),
            "data": content,
        }
        path = self.store.save(record)
        print(f"stored {path} for {envelope.rcpt_tos}", file=sys.stderr, flush=True)
        return "250 2.0.0 Message accepted"


def make_authenticator(user, password):
    def authenticator(server, session, envelope, mechanism, auth_data):
        ok = (
            isinstance(auth_data, LoginPassword)
            and auth_data.login.decode() == user
            and auth_data.password.decode() == password
        )
        return AuthResult(success=ok, auth_data=user if ok else None)

    return authenticator


def write_ready(path, port):
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump({"host": "127.0.0.1", "port": port, "pid": os.getpid()}, f)
    os.rename(tmp, path)


async def main(args):
    store = Store(args.out_dir)
    handler = Handler(store)
    tls_context = None
    if args.tls_cert:
        tls_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        tls_context.load_cert_chain(args.tls_cert, args.tls_key)
    kwargs = {
        "hostname": "smtp-receiver.test",
        "tls_context": tls_context,
        "require_starttls": tls_context is not None,
        "timeout": 60,
    }
    if args.auth:
        user, _, password = args.auth.partition(":")
        kwargs.update(
            auth_required=True,
            auth_require_tls=tls_context is not None,
            authenticator=make_authenticator(user, password),
        )
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: SMTP(handler, **kwargs), host="127.0.0.1", port=args.port, reuse_address=True
    )
    port = server.sockets[0].getsockname()[1]
    if args.ready_file:
        write_ready(args.ready_file, port)
    print(f"smtp receiver on 127.0.0.1:{port}", file=sys.stderr, flush=True)

    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await asyncio.wait_for(stop.wait(), timeout=args.max_lifetime)
    except asyncio.TimeoutError:
        print("max lifetime reached; exiting", file=sys.stderr, flush=True)
    server.close()
    await server.wait_closed()


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--port", type=int, default=0, help="0 = ephemeral")
    p.add_argument("--out-dir", required=True)
    p.add_argument("--ready-file")
    p.add_argument("--tls-cert", help="PEM certificate chain for STARTTLS")
    p.add_argument("--tls-key", help="PEM private key for STARTTLS")
    p.add_argument("--auth", help="USER:PASSWORD; AUTH is then required")
    p.add_argument("--max-lifetime", type=float, default=300.0, help="seconds")
    a = p.parse_args()
    if bool(a.tls_cert) != bool(a.tls_key):
        p.error("--tls-cert and --tls-key go together")
    asyncio.run(main(a))
