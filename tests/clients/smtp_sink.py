"""A real SMTP server for the end-to-end tests (aiosmtpd).

Usage: smtp_sink.py PORT DIR

Each message it receives is written to DIR/msg-N.json as
{"mail_from", "rcpt_tos", "subject", "to", "text", "html"} with the MIME parts
decoded, so a test can read the link out of the body. Runs until killed.
"""
import asyncio
import email
import email.policy
import json
import os
import sys

from aiosmtpd.controller import Controller


class Sink:
    def __init__(self, out):
        self.out = out
        self.n = 0

    async def handle_DATA(self, server, session, envelope):
        msg = email.message_from_bytes(envelope.content, policy=email.policy.default)
        parts = {"text": None, "html": None}
        for part in msg.walk():
            ctype = part.get_content_type()
            if ctype == "text/plain" and parts["text"] is None:
                parts["text"] = part.get_content()
            elif ctype == "text/html" and parts["html"] is None:
                parts["html"] = part.get_content()
        self.n += 1
        doc = {
            "mail_from": envelope.mail_from,
            "rcpt_tos": envelope.rcpt_tos,
            "subject": msg.get("Subject", ""),
            "to": msg.get("To", ""),
            **parts,
        }
        tmp = os.path.join(self.out, f".msg-{self.n}.tmp")
        with open(tmp, "w") as f:
            json.dump(doc, f)
        os.rename(tmp, os.path.join(self.out, f"msg-{self.n}.json"))
        return "250 Message accepted for delivery"


def main():
    port, out = int(sys.argv[1]), sys.argv[2]
    os.makedirs(out, exist_ok=True)
    controller = Controller(Sink(out), hostname="127.0.0.1", port=port)
    controller.start()
    print(f"smtp sink on 127.0.0.1:{port}", flush=True)
    try:
        asyncio.get_event_loop().run_forever()
    finally:
        controller.stop()


if __name__ == "__main__":
    main()
