"""A real SMTP server (aiosmtpd) for the alerts' email, run as a separate process by tests/support/servers.py:
`python smtp_server.py PORT MAIL_DIR USER PASSWORD`. It accepts mail with or without a login (a login must use
USER and PASSWORD), and writes each message it accepts to MAIL_DIR as <n>.eml, with a <n>.json beside it: the
envelope's sender and recipients and the login used. `received(mail_dir)` reads them back."""

from __future__ import annotations

import email
import email.policy
import itertools
import json
import sys
import threading
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path


@dataclass(frozen=True)
class Mail:
    message: EmailMessage
    sender: str
    recipients: list[str]
    login: str | None


def received(mail_dir: Path) -> list[Mail]:
    """Every message the server accepted, in order."""
    mails = []
    for path in sorted(mail_dir.glob("*.json"), key=lambda p: int(p.stem)):
        envelope = json.loads(path.read_text())
        message = email.message_from_bytes(path.with_suffix(".eml").read_bytes(), policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        mails.append(Mail(message, envelope["sender"], envelope["recipients"], envelope["login"]))
    return mails


def main(port: int, mail_dir: Path, user: str, password: str) -> None:
    from aiosmtpd.controller import Controller
    from aiosmtpd.smtp import AuthResult, LoginPassword

    mail_dir.mkdir(parents=True, exist_ok=True)
    numbers = itertools.count(len(list(mail_dir.glob("*.json"))) + 1)

    def authenticator(server, session, envelope, mechanism, auth_data) -> AuthResult:
        ok = isinstance(auth_data, LoginPassword) and (auth_data.login, auth_data.password) == (
            user.encode(),
            password.encode(),
        )
        return AuthResult(success=ok, handled=False, auth_data=auth_data)

    class Recorder:
        async def handle_DATA(self, server, session, envelope) -> str:  # noqa: N802
            number = next(numbers)
            (mail_dir / f"{number}.eml").write_bytes(envelope.original_content)
            login = session.auth_data.login.decode() if isinstance(session.auth_data, LoginPassword) else None
            record = {"sender": envelope.mail_from, "recipients": envelope.rcpt_tos, "login": login}
            (mail_dir / f"{number}.json").write_text(json.dumps(record))  # written last: the message is complete
            return "250 Message accepted"

    controller = Controller(
        Recorder(),
        hostname="127.0.0.1",
        port=port,
        authenticator=authenticator,
        auth_require_tls=False,
        auth_required=False,
    )
    controller.start()
    threading.Event().wait()


if __name__ == "__main__":
    main(int(sys.argv[1]), Path(sys.argv[2]), sys.argv[3], sys.argv[4])
