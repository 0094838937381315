#!/usr/bin/env python3
"""A real SMTP server (aiosmtpd) on loopback for the pds-notify tests.

Every accepted message is written to --dir as NNNNNN.json holding the
envelope (mail_from, rcpt_tos), the authenticated login (or null), whether
the session was TLS, the From/To/Subject headers, the decoded text/plain
and text/html bodies (parsed with Python's email package), and the raw
message. Prints "READY <port>" once
listening; runs until stdin closes or it is killed.

Options:
  --auth USER:PASS     require SMTP AUTH (PLAIN/LOGIN) with these credentials
  --tls CERT KEY       implicit TLS (SMTPS) with this certificate
  --starttls CERT KEY  offer STARTTLS, and require it before MAIL
"""

import argparse
import email
import email.policy
import json
import logging
import os
import socket
import ssl
import sys
import threading
import warnings

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword


class Handler:
    def __init__(self, out_dir):
        self.out_dir = out_dir
        self.count = 0
        self.lock = threading.Lock()

    async def handle_DATA(self, server, session, envelope):
        with self.lock:
            self.count += 1
            n = self.count
        login = session.auth_data
        if isinstance(login, bytes):
            login = login.decode("utf-8", "replace")
        msg = email.message_from_bytes(envelope.original_content, policy=email.policy.default)
        text = msg.get_body(preferencelist=("plain",))
        html = msg.get_body(preferencelist=("html",))
        record = {
            "mail_from": envelope.mail_from,
            "rcpt_tos": list(envelope.rcpt_tos),
            "login": login,
            # STARTTLS sets session.ssl; implicit TLS shows on the transport.
            "tls": session.ssl is not None
            or server.transport.get_extra_info("ssl_object") is not None,
            "from": str(msg["From"]),
            "to": str(msg["To"]),
            "subject": str(msg["Subject"]),
            "content_type": msg.get_content_type(),
            "text": text.get_content() if text is not None else None,
            "html": html.get_content() if html is not None else None,
            "raw": envelope.original_content.decode("utf-8", "replace"),
        }
        tmp = os.path.join(self.out_dir, f".{n:06d}.tmp")
        with open(tmp, "w") as f:
            json.dump(record, f)
        os.rename(tmp, os.path.join(self.out_dir, f"{n:06d}.json"))
        return "250 Message accepted for delivery"


class Authenticator:
    def __init__(self, user, password):
        self.user = user.encode()
        self.password = password.encode()

    def __call__(self, server, session, envelope, mechanism, auth_data):
        ok = (
            isinstance(auth_data, LoginPassword)
            and auth_data.login == self.user
            and auth_data.password == self.password
        )
        return AuthResult(success=ok, handled=False, auth_data=self.user if ok else None)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def main():
    # AUTH without TLS is what the plain-text tests want.
    warnings.filterwarnings("ignore", message="Requiring AUTH while not requiring TLS")
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    logging.getLogger("mail.log").setLevel(logging.ERROR)
    p = argparse.ArgumentParser()
    p.add_argument("--dir", required=True)
    p.add_argument("--auth")
    p.add_argument("--tls", nargs=2, metavar=("CERT", "KEY"))
    p.add_argument("--starttls", nargs=2, metavar=("CERT", "KEY"))
    a = p.parse_args()

    kwargs = {}
    if a.auth:
        user, _, password = a.auth.partition(":")
        kwargs["authenticator"] = Authenticator(user, password)
        kwargs["auth_required"] = True
        kwargs["auth_require_tls"] = False
    if a.starttls:
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(*a.starttls)
        kwargs["tls_context"] = ctx
        kwargs["require_starttls"] = True
    if a.tls:
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(*a.tls)
        kwargs["ssl_context"] = ctx

    port = free_port()
    controller = Controller(Handler(a.dir), hostname="127.0.0.1", port=port, **kwargs)
    controller.start()
    print(f"READY {port}", flush=True)
    try:
        sys.stdin.read()
    finally:
        controller.stop()


if __name__ == "__main__":
    main()
