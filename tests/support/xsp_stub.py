#!/usr/bin/env python3
"""A stand-in BroadWorks XSP for the integration tests: Xsi-Actions
`GET /com.broadsoft.xsi-actions/v2.0/user/<userId>/profile` over HTTPS with
Basic auth (user id + password), answering the R21 `Profile` document for
known users and 401 `ErrorInfo` otherwise, as the Xsi spec (R21 §3.2,
§3.5.2.1) describes.

  xsp_stub.py --users users.json --tls-cert C --tls-key K --ready-file F

users.json: {"<userId>": {"password", "firstName", "lastName", "groupId",
"serviceProvider", "isEnterprise", "number", "extension", "countryCode",
"email"}}. The ready file receives {"port": N} once listening; every
request is appended to <ready-file>.log as one JSON line.
"""

import argparse
import base64
import json
import ssl
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from xml.sax.saxutils import escape

PREFIX = "/com.broadsoft.xsi-actions/v2.0/user/"

PROFILE = """<?xml version="1.0" encoding="ISO-8859-1"?>
<Profile xmlns="http://schema.broadsoft.com/xsi" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
  <details>
    <userId>{userId}</userId>
    <firstName>{firstName}</firstName>
    <lastName>{lastName}</lastName>
    <groupId>{groupId}</groupId>
    <serviceProvider isEnterprise="{isEnterprise}">{serviceProvider}</serviceProvider>
    <number>{number}</number>
    <extension>{extension}</extension>
  </details>
  <additionalDetails>
    <mobile xsi:nil="true" />
    <emailAddress>{email}</emailAddress>
  </additionalDetails>
  <passwordExpiresDays>21</passwordExpiresDays>
  <countryCode>{countryCode}</countryCode>
</Profile>
"""

ERROR = """<?xml version="1.0" encoding="UTF-8"?>
<ErrorInfo xmlns="http://schema.broadsoft.com/xsi"><summary>Authentication failed.</summary><summaryEnglish>Authentication failed.</summaryEnglish><errorCode>110842</errorCode></ErrorInfo>
"""


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--users", required=True)
    ap.add_argument("--tls-cert", required=True)
    ap.add_argument("--tls-key", required=True)
    ap.add_argument("--ready-file", required=True)
    ap.add_argument("--max-lifetime", type=float, default=180)
    args = ap.parse_args()
    with open(args.users, encoding="utf-8") as f:
        users = json.load(f)
    log_path = args.ready_file + ".log"
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *a):
            pass

        def answer(self, status, body, ctype="application/xml; charset=ISO-8859-1"):
            data = body.encode("latin-1", errors="replace")
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self):
            path = urllib.parse.urlsplit(self.path).path
            auth = self.headers.get("Authorization", "")
            user = None
            with lock, open(log_path, "a", encoding="utf-8") as log:
                log.write(json.dumps({"path": path, "host": self.headers.get("Host"),
                                      "noChallenge": self.headers.get("X-BroadWorks-No-AuthChallenge")}) + "\n")
            if not (path.startswith(PREFIX) and path.endswith("/profile")):
                return self.answer(404, ERROR, "application/xml; charset=UTF-8")
            wanted = urllib.parse.unquote(path[len(PREFIX):-len("/profile")])
            if auth.startswith("Basic "):
                try:
                    uid, _, pw = base64.b64decode(auth[6:]).decode("utf-8").partition(":")
                except Exception:
                    uid, pw = "", ""
                rec = users.get(uid)
                if rec and rec["password"] == pw and uid.lower() == wanted.lower():
                    user = (uid, rec)
            if user is None:
                return self.answer(401, ERROR, "application/xml; charset=UTF-8")
            uid, rec = user
            fields = {k: escape(str(v)) for k, v in rec.items() if k != "password"}
            fields["userId"] = escape(uid)
            fields.setdefault("isEnterprise", "false")
            self.answer(200, PROFILE.format(**fields))

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(args.tls_cert, args.tls_key)
    server.socket = ctx.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    with open(args.ready_file + ".tmp", "w", encoding="utf-8") as f:
        json.dump({"port": server.server_address[1]}, f)
    import os
    os.replace(args.ready_file + ".tmp", args.ready_file)
    time.sleep(args.max_lifetime)
    server.shutdown()
    sys.exit(0)


if __name__ == "__main__":
    main()
