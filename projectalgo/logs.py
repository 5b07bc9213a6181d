"""The app's logs, configured once at start-up (the composition root and the CLI call `configure`).

One line per event on stderr: JSON lines (LOG_FORMAT=json, production's default; each names its process, `pid`,
as several workers write to one stream) or readable text (the default elsewhere; an exception's traceback follows
its line, indented). LOG_LEVEL is the level of the app's own loggers (`projectalgo.*`, whose messages start with an
event name: `billing.membership_granted user=3 ...`); other libraries' loggers pass WARNING and above whatever it
says, since some of them (botocore, stripe) write request headers and bodies at DEBUG.

Nothing secret reaches a line: every message and traceback goes through `redact`, which removes the configured
secrets' values (SECRET_KEY_BASE, Stripe's keys, AWS's secret key, SMTP_PASSWORD, passwords in database and Redis
URLs) and anything shaped like a secret (Authorization values, bearer tokens, bot tokens past the part the pages show,
Stripe secret keys, webhook secrets and client secrets, passwords in URLs). The code logs none of them in the
first place; this is the safeguard for an exception's text or a library's message.

While an API request is served, REQUEST_ID holds its id (projectalgo/api/request_id.py) and every line logged
then carries it.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from collections.abc import Iterable
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import TextIO
from urllib.parse import urlparse

from projectalgo.settings import Settings
from projectalgo.strategies import TOKEN_DISPLAY_LENGTH, TOKEN_PREFIX

APP_LOGGER = "projectalgo"
# The least level another library's record needs to be written.
OTHER_LOGGERS_LEVEL = logging.WARNING
REQUEST_ID: ContextVar[str | None] = ContextVar("projectalgo_request_id", default=None)
REDACTED = "[redacted]"
# A configured secret shorter than this is not searched for (it would blank out ordinary words); such a value is
# no secret anyway (AWS_SECRET_KEY=test for DynamoDB Local).
KNOWN_SECRET_MIN_LENGTH = 8
# The event name a message starts with: billing.membership_granted, ingest.refused, api.request.
_EVENT = re.compile(r"[a-z][a-z0-9_]*(?:\.[a-z0-9_]+)+(?=\s|$)")
_SHOWN = TOKEN_DISPLAY_LENGTH - len(TOKEN_PREFIX)  # what the pages show of a bot token after its prefix
SECRET_SHAPES: tuple[tuple[re.Pattern[str], str], ...] = (
    # An Authorization header's value, however quoted or written (a header dump, a dict's repr): all of it.
    (
        re.compile(r"(?i)(\bauthorization\b['\"]?\s*[:=,]\s*b?['\"]?)(?:(?:bearer|basic|token)\s+)?[^\s'\",;)}\]]+"),
        r"\1" + REDACTED,
    ),
    (re.compile(r"(?i)\b(bearer\s+)[A-Za-z0-9._~+/=-]+"), r"\1" + REDACTED),
    # A bot token (strategies.TOKEN_PREFIX and 43 characters): the few characters the pages show may stay.
    (
        re.compile(rf"({re.escape(TOKEN_PREFIX)}[A-Za-z0-9_-]{{{_SHOWN}}})[A-Za-z0-9_-]+"),
        r"\1" + REDACTED,
    ),
    # Stripe: secret and restricted keys, webhook signing secrets, the client secrets of PaymentIntents and
    # SetupIntents (their ids may stay).
    (re.compile(r"\b((?:sk|rk)_(?:test|live)_)[A-Za-z0-9_]+"), r"\1" + REDACTED),
    (re.compile(r"\b(whsec_)[A-Za-z0-9_+/=]+"), r"\1" + REDACTED),
    (re.compile(r"\b((?:pi|seti)_[A-Za-z0-9]+_secret_)[A-Za-z0-9]+"), r"\1" + REDACTED),
    # A password in a URL: postgresql://user:password@host, redis://:password@host.
    (re.compile(r"(\b[A-Za-z][A-Za-z0-9+.-]*://[^\s:/@]*:)[^\s/@]+@"), r"\1" + REDACTED + "@"),
)


def known_secrets(settings: Settings) -> tuple[str, ...]:
    """The configured secret values that must never be written, whatever text holds them."""
    values = [settings.secret_key_base, settings.stripe_secret_key, settings.stripe_webhook_secret]
    values.append(settings.smtp_password)
    values.append(settings.aws_secret_key)
    for url in (settings.database_url, settings.redis_url):
        values.append(urlparse(url).password if url else None)
    kept = {value for value in values if value and len(value) >= KNOWN_SECRET_MIN_LENGTH}
    return tuple(sorted(kept, key=len, reverse=True))  # a longer secret first, should one hold another


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """`text` without the given secret values nor anything shaped like a secret."""
    for secret in secrets:
        text = text.replace(secret, REDACTED)
    for pattern, replacement in SECRET_SHAPES:
        text = pattern.sub(replacement, text)
    return text


def _time(record: logging.LogRecord) -> str:
    """ISO 8601 in UTC to the millisecond: 2025-01-31T12:00:00.123Z."""
    return datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class _Formatter(logging.Formatter):
    """One event as one line; subclasses say how."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        super().__init__()
        self.secrets = tuple(secrets)

    def fields(self, record: logging.LogRecord) -> dict[str, str]:
        """What a line says, redacted: time, level, logger, event (when the message names one), message,
        request_id and exception (when there are)."""
        message = redact(record.getMessage(), self.secrets)
        fields = {"time": _time(record), "level": record.levelname, "logger": record.name}
        if event := _EVENT.match(message):
            fields["event"] = event.group()
        fields["message"] = message
        request_id = getattr(record, "request_id", None) or REQUEST_ID.get()
        if request_id:
            fields["request_id"] = str(request_id)
        exception = self.formatException(record.exc_info) if record.exc_info else record.exc_text
        if record.stack_info:
            exception = f"{exception}\n{self.formatStack(record.stack_info)}" if exception else record.stack_info
        if exception:
            fields["exception"] = redact(exception, self.secrets)
        return fields


class JsonFormatter(_Formatter):
    """A JSON object per line; it also names the process (`pid`): several workers write to one stream."""

    def format(self, record: logging.LogRecord) -> str:
        return json.dumps({**self.fields(record), "pid": record.process}, ensure_ascii=False)


class TextFormatter(_Formatter):
    """`time LEVEL logger message [request_id=...]`; a traceback follows on lines indented by four spaces, so that
    no text in a message or an exception can pass for a line of its own."""

    def format(self, record: logging.LogRecord) -> str:
        fields = self.fields(record)
        # A message's own line breaks are shown, not obeyed: a client's text cannot forge a log line.
        message = fields["message"].replace("\r", "\\r").replace("\n", "\\n")
        line = f"{fields['time']} {fields['level']:<8} {fields['logger']} {message}"
        if "request_id" in fields:
            line += f" request_id={fields['request_id']}"
        if "exception" in fields:
            line += "".join(f"\n    {text}" for text in fields["exception"].splitlines())
        return line


class _StderrHandler(logging.StreamHandler[TextIO]):
    """Writes to whatever sys.stderr is when a record comes (the test runner replaces it, and so may a server)."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    def emit(self, record: logging.LogRecord) -> None:
        self.stream = sys.stderr
        super().emit(record)


_handler: logging.Handler | None = None


def formatter(settings: Settings) -> _Formatter:
    secrets = known_secrets(settings)
    return JsonFormatter(secrets) if settings.log_format == "json" else TextFormatter(secrets)


def configure(settings: Settings) -> None:
    """Write the app's events (and other libraries' warnings and errors) to stderr, one line each, as the
    settings say. Called again, it replaces what it configured before; other handlers are left alone."""
    global _handler
    level = logging.getLevelNamesMapping()[settings.log_level]  # one of settings.LOG_LEVELS
    handler = _StderrHandler()
    handler.setFormatter(formatter(settings))
    root = logging.getLogger()
    if _handler is not None:
        root.removeHandler(_handler)
    root.addHandler(handler)
    _handler = handler
    root.setLevel(max(level, OTHER_LOGGERS_LEVEL))
    logging.getLogger(APP_LOGGER).setLevel(level)
