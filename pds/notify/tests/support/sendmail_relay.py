#!/usr/bin/env python3
"""A sendmail-compatible submission program for the pds-notify tests.

Invoked as `sendmail_relay.py --port PORT [-i] [-f FROM] [--] TO...` (the
way lettre runs sendmail, behind a wrapper that adds --port), it reads the
message from standard input and submits it with smtplib to the SMTP server
on 127.0.0.1:PORT (the test's aiosmtpd sink). Exits non-zero on failure,
as sendmail does.
"""

import smtplib
import sys


def main(argv):
    port = None
    sender = None
    recipients = []
    i = 0
    while i < len(argv):
        a = argv[i]
        if a == "--port":
            port = int(argv[i + 1])
            i += 2
        elif a == "-f":
            sender = argv[i + 1]
            i += 2
        elif a == "-i":
            i += 1
        elif a == "--":
            recipients.extend(argv[i + 1 :])
            break
        else:
            recipients.append(a)
            i += 1
    if port is None or sender is None or not recipients:
        print("usage: sendmail_relay.py --port PORT -f FROM -- TO...", file=sys.stderr)
        return 64
    data = sys.stdin.buffer.read()
    with smtplib.SMTP("127.0.0.1", port, timeout=30) as s:
        s.sendmail(sender, recipients, data)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
