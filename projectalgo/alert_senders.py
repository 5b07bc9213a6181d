"""Alerts' senders (issue 17): one attempt at an email (SMTP, with the settings' TLS mode and login) or a webhook
(httpx, to the address the guard checked, signed with the member's secret), with its outcome. Neither keeps
anything: notify.deliver_due claims, calls these and records what came of it. An outcome's detail never holds a
secret, a URL (a Telegram URL holds its bot's token) or a receiver's words beyond a status code.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import smtplib
import ssl
from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage
from email.utils import format_datetime
from urllib.parse import urlsplit

import httpx

from projectalgo import webhook_guard
from projectalgo.errors import InvalidInputError
from projectalgo.models import AlertChannels, AlertFiring
from projectalgo.settings import Settings

WEBHOOK_TIMEOUT = httpx.Timeout(10, connect=5)
SMTP_TIMEOUT_SECONDS = 15
SIGNATURE_HEADER = "X-ProjectAlgo-Signature"
TIMESTAMP_HEADER = "X-ProjectAlgo-Timestamp"
TEXT_LIMITS = {"discord": 2000, "telegram": 4096}  # the longest message each accepts


@dataclass(frozen=True)
class Outgoing:
    """What one attempt sends, read before any network call (no session is held while sending)."""

    channel: str
    key: str
    user_id: int
    email: str
    disabled: bool
    firing: AlertFiring
    chosen: AlertChannels


@dataclass(frozen=True)
class Outcome:
    ok: bool
    detail: str
    final: bool = False  # no retry: the channel is gone or the account disabled


def _text(firing: AlertFiring) -> str:
    return f"{firing.title}\n{firing.body}" if firing.body else firing.title


def send_email(outgoing: Outgoing, settings: Settings) -> Outcome:
    """Email the firing to the user's address, its Message-ID made from the delivery's idempotency key."""
    if not settings.smtp_host or not outgoing.chosen.email_enabled:
        return Outcome(False, "not sent: email is off", final=True)
    firing = outgoing.firing
    message = EmailMessage()
    message["From"] = settings.smtp_from
    message["To"] = outgoing.email
    message["Subject"] = f"ProjectAlgo: {firing.title}"
    message["Date"] = format_datetime(firing.created_at)
    # The same Message-ID on every attempt: a resend after a crash is the same message to the receiver.
    message["Message-ID"] = f"<{outgoing.key}@{urlsplit(settings.public_url).hostname or 'projectalgo'}>"
    when = firing.created_at.strftime("%Y-%m-%d %H:%M UTC")
    message.set_content(f"{_text(firing)}\n\n{when}\nYour alerts: {settings.public_url.rstrip('/')}/alerts\n")
    try:
        with _smtp(settings) as smtp:
            if settings.smtp_user:
                smtp.login(settings.smtp_user, settings.smtp_password or "")
            smtp.send_message(message)
    except smtplib.SMTPResponseException as error:
        return Outcome(False, f"SMTP {error.smtp_code} ({type(error).__name__})")
    except smtplib.SMTPRecipientsRefused:
        return Outcome(False, "SMTP: the address was refused")
    except TimeoutError:
        return Outcome(False, "SMTP: timed out")
    except (smtplib.SMTPException, OSError) as error:
        return Outcome(False, f"SMTP: could not send ({type(error).__name__})")
    return Outcome(True, "SMTP: accepted")


def _smtp(settings: Settings) -> smtplib.SMTP:
    host, port = settings.smtp_host or "", settings.smtp_port
    context = ssl.create_default_context()
    if settings.smtp_tls == "ssl":
        return smtplib.SMTP_SSL(host, port, timeout=SMTP_TIMEOUT_SECONDS, context=context)
    smtp = smtplib.SMTP(host, port, timeout=SMTP_TIMEOUT_SECONDS)
    if settings.smtp_tls == "starttls":
        try:
            smtp.starttls(context=context)
        except BaseException:
            smtp.close()
            raise
    return smtp


def _webhook_body(outgoing_key: str, firing: AlertFiring, preset: str, telegram_chat_id: str) -> bytes:
    """The JSON a webhook receives: the preset's message format, or the generic one carrying the idempotency key
    as `id`."""
    text = _text(firing)[: TEXT_LIMITS.get(preset, 40_000)]
    if preset == "discord":
        data: dict[str, object] = {"content": text}
    elif preset == "slack":
        data = {"text": text}
    elif preset == "telegram":
        data = {"chat_id": telegram_chat_id, "text": text}
    else:
        data = {
            "id": outgoing_key,
            "kind": firing.kind,
            "title": firing.title,
            "body": firing.body,
            "created_at": firing.created_at.isoformat(),
            "strategy_id": firing.strategy_id,
        }
    return json.dumps(data).encode()


def _signature(secret: str, timestamp: str, body: bytes) -> str:
    """The signature header's value: HMAC-SHA256, keyed with the member's secret, of "<timestamp>.<raw body>"."""
    return "sha256=" + hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()


def post_webhook(outgoing: Outgoing, settings: Settings, at: datetime) -> Outcome:
    """POST the firing in the member's preset format, signed, to the address their URL resolves to now, once the
    guard accepts it; a 2xx answer is success, anything else (a redirect too) or a timeout a failed attempt."""
    chosen = outgoing.chosen
    if not chosen.webhook_url:
        return Outcome(False, "not sent: no webhook is set", final=True)
    try:
        # Resolved and checked again now, and connected to that very address: DNS may have changed since saving.
        url = webhook_guard.parse(chosen.webhook_url)
        address = webhook_guard.public_address(url, settings.alert_webhooks_allow_private)
    except InvalidInputError as refused:
        return Outcome(False, f"not sent: {refused.message}")
    body = _webhook_body(outgoing.key, outgoing.firing, chosen.webhook_preset, chosen.telegram_chat_id)
    timestamp = str(int(at.timestamp()))
    headers = {
        "Host": url.netloc.decode("ascii"),
        "Content-Type": "application/json",
        "User-Agent": "ProjectAlgo-Alerts",
        "Idempotency-Key": outgoing.key,
        TIMESTAMP_HEADER: timestamp,
        SIGNATURE_HEADER: _signature(chosen.webhook_secret, timestamp, body),
    }
    # trust_env off: no proxy from the environment between us and the checked address; no redirects: a 3xx could
    # point anywhere. The TLS server name (and certificate check) stays the URL's host.
    try:
        with (
            httpx.Client(timeout=WEBHOOK_TIMEOUT, follow_redirects=False, trust_env=False) as client,
            client.stream(
                "POST",
                url.copy_with(host=address),
                content=body,
                headers=headers,
                extensions={"sni_hostname": url.host},
            ) as response,  # streamed: only the status is read, never a receiver's (maybe huge) body
        ):
            status = response.status_code
    except httpx.TimeoutException:
        return Outcome(False, "timed out")
    except httpx.ConnectError:
        return Outcome(False, "could not connect")
    except httpx.HTTPError as error:  # its text may hold the URL, which may hold a bot token: only its kind
        return Outcome(False, f"failed ({type(error).__name__})")
    return Outcome(200 <= status < 300, f"HTTP {status}")
