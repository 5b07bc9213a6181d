"""The app's logs: one line per event, JSON or text as the settings say, the request id, and nothing secret."""

import json
import logging
import os
import re
from collections.abc import Callable, Iterator

import pytest

from projectalgo import logs
from projectalgo.logs import REDACTED, REQUEST_ID, JsonFormatter, TextFormatter, configure, known_secrets, redact
from projectalgo.settings import SettingsError, load_settings
from projectalgo.strategies import TOKEN_DISPLAY_LENGTH
from projectalgo.tokens import new_token

ISO_UTC = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")


def _record(message: str, *args: object, level: int = logging.INFO, error: BaseException | None = None):
    exc_info = (type(error), error, error.__traceback__) if error else None
    return logging.LogRecord("projectalgo.billing", level, __file__, 1, message, args, exc_info)


def _raised(error: Exception) -> Exception:
    try:
        raise error
    except Exception as caught:  # noqa: BLE001 - to get its traceback
        return caught


def test_a_json_line_holds_time_level_logger_event_message_request_id_and_exception():
    error = _raised(ValueError("the card was declined\nsecond line"))
    token = REQUEST_ID.set("req-123")
    try:
        line = JsonFormatter().format(
            _record("billing.membership_granted user=%s payment=%s", 3, 7, level=logging.ERROR, error=error)
        )
    finally:
        REQUEST_ID.reset(token)
    assert "\n" not in line
    fields = json.loads(line)
    assert ISO_UTC.fullmatch(fields.pop("time"))
    exception = fields.pop("exception")
    assert exception.startswith("Traceback") and "ValueError: the card was declined\nsecond line" in exception
    assert fields == {
        "level": "ERROR",
        "logger": "projectalgo.billing",
        "event": "billing.membership_granted",
        "message": "billing.membership_granted user=3 payment=7",
        "request_id": "req-123",
        "pid": os.getpid(),  # several workers write to one stream
    }


def test_a_json_line_leaves_out_what_is_not_there():
    fields = json.loads(JsonFormatter().format(_record("Just some text")))
    assert set(fields) == {"time", "level", "logger", "message", "pid"}


def test_a_text_line_is_readable_and_one_line_whatever_the_message_holds():
    token = REQUEST_ID.set("abc")
    try:
        line = TextFormatter().format(_record("ingest.refused reason=%s", "invalid_token\n2099-01-01 forged line"))
    finally:
        REQUEST_ID.reset(token)
    assert "\n" not in line
    assert re.fullmatch(
        ISO_UTC.pattern + r" INFO     projectalgo\.billing ingest\.refused reason=invalid_token\\n2099-01-01 "
        r"forged line request_id=abc",
        line,
    ), line


def test_a_text_lines_traceback_follows_it_indented():
    line = TextFormatter().format(_record("live.push_failed", level=logging.ERROR, error=_raised(KeyError("x\ny"))))
    first, *rest = line.splitlines()
    assert first.endswith("ERROR    projectalgo.billing live.push_failed")
    assert rest and all(text.startswith("    ") for text in rest)
    assert rest[0] == "    Traceback (most recent call last):"


LIVE = "live_"  # spelled apart: a live-key-shaped literal in the source would look like a leaked key


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        ("headers={'Authorization': 'Bearer abc.def-ghi'}", "abc.def-ghi"),
        ('"authorization": "Basic dXNlcjpwYXNz"', "dXNlcjpwYXNz"),
        ("Authorization: token-without-scheme", "token-without-scheme"),
        ("(b'authorization', b'Bearer raw-bytes-token')", "raw-bytes-token"),
        ("sent bearer Zm9vYmFy== to the api", "Zm9vYmFy=="),
        ("key sk_test_51HkL0ngSecretKey and rk_" + LIVE + "restricted1", "51HkL0ngSecretKey"),
        ("key rk_" + LIVE + "restricted1", "restricted1"),
        ("webhook secret whsec_abcDEF123", "abcDEF123"),
        ("intent pi_3Ab_secret_XyZ987 confirmed", "XyZ987"),
        ("setup seti_1Q2w_secret_Sec0nd", "Sec0nd"),
        ("postgresql://app:hunter2-pass@db.internal:5432/app", "hunter2-pass"),
        ("redis://:redispass99@cache:6379/0", "redispass99"),
    ],
)
def test_secret_shapes_are_redacted(text, secret):
    redacted = redact(text)
    assert secret not in redacted
    assert REDACTED in redacted


def test_a_bot_token_keeps_only_the_part_the_pages_show():
    token = new_token("pa_live_")
    shown = token[:TOKEN_DISPLAY_LENGTH]
    assert redact(f"token={token}") == f"token={shown}{REDACTED}"
    assert redact(f"ingest.refused prefix={shown}") == f"ingest.refused prefix={shown}"  # what the app logs


def test_ordinary_text_is_left_alone():
    for text in ("billing.membership_granted user=3 payment=pi_123", "api.request path=/api/v1/strategy/ status=201"):
        assert redact(text) == text


def test_the_configured_secrets_are_redacted_wherever_they_appear():
    settings = load_settings(
        {
            "SECRET_KEY_BASE": "k" * 40,
            "STRIPE_SECRET_KEY": "sk_test_abc",
            "STRIPE_PUBLISHABLE_KEY": "pk_test_abc",
            "STRIPE_WEBHOOK_SECRET": "whsec_webhook123",
            "AWS_ACCESS_KEY": "AKIAEXAMPLE",
            "AWS_SECRET_KEY": "aws/secret+Example1234",
            "DATABASE_URL": "postgresql://app:db-password-1@localhost/app",
            "REFLEX_REDIS_URL": "redis://:redis-password-1@localhost:6379/0",
            "SMTP_PASSWORD": "smtp-password-1",
        }
    )
    secrets = known_secrets(settings)
    assert set(secrets) >= {"k" * 40, "whsec_webhook123", "aws/secret+Example1234", "db-password-1", "smtp-password-1"}
    record = _record("odd text %s", " ".join(secrets), error=_raised(RuntimeError("k" * 40)))
    for line in (JsonFormatter(secrets).format(record), TextFormatter(secrets).format(record)):
        for secret in secrets:
            assert secret not in line
    # Too short to search for without blanking out ordinary words; no secret either.
    assert "test" not in known_secrets(load_settings({"AWS_ACCESS_KEY": "test", "AWS_SECRET_KEY": "test"}))


def test_log_settings_default_to_json_in_production_and_text_elsewhere():
    production = {"APP_ENV": "production", "SECRET_KEY_BASE": "x" * 40}
    assert (load_settings(production).log_format, load_settings(production).log_level) == ("json", "INFO")
    assert load_settings({}).log_format == "text"
    assert load_settings({"LOG_FORMAT": "JSON", "LOG_LEVEL": "debug"}).log_format == "json"
    assert load_settings({"LOG_LEVEL": "debug"}).log_level == "DEBUG"
    assert load_settings(production | {"LOG_FORMAT": "text"}).log_format == "text"


@pytest.mark.parametrize(("name", "value"), [("LOG_FORMAT", "xml"), ("LOG_LEVEL", "verbose"), ("LOG_LEVEL", "10")])
def test_a_bad_log_setting_is_named_in_one_line(name, value):
    with pytest.raises(SettingsError, match=f"^{name} must be one of .*, got '{value}'$"):
        load_settings({name: value})


@pytest.fixture
def stderr(capsys: pytest.CaptureFixture[str]) -> Iterator[Callable[[], str]]:
    """What configure's handler writes (to sys.stderr as it is when a record comes); logging put back after."""
    root, app = logging.getLogger(), logging.getLogger(logs.APP_LOGGER)
    saved = (root.level, app.level, list(root.handlers), logs._handler)
    yield lambda: capsys.readouterr().err
    root.setLevel(saved[0])
    app.setLevel(saved[1])
    root.handlers[:] = saved[2]
    logs._handler = saved[3]


def test_configure_writes_the_apps_events_at_its_level_and_other_libraries_warnings(stderr):
    configure(load_settings({"LOG_FORMAT": "json", "LOG_LEVEL": "DEBUG"}))
    configure(load_settings({"LOG_FORMAT": "json", "LOG_LEVEL": "DEBUG"}))  # again: still one line per event
    logging.getLogger("projectalgo.ingest").debug("ingest.refused reason=%s", "invalid_token")
    logging.getLogger("botocore.endpoint").debug("Sending http request: Authorization=secret")
    logging.getLogger("botocore.endpoint").warning("retrying")
    lines = [json.loads(line) for line in stderr().splitlines()]
    assert [(f["level"], f["logger"], f["message"]) for f in lines] == [
        ("DEBUG", "projectalgo.ingest", "ingest.refused reason=invalid_token"),
        ("WARNING", "botocore.endpoint", "retrying"),
    ]


def test_configure_at_warning_leaves_out_the_apps_info_events(stderr):
    configure(load_settings({"LOG_FORMAT": "text", "LOG_LEVEL": "WARNING"}))
    logging.getLogger("projectalgo.billing").info("billing.membership_granted user=1")
    logging.getLogger("projectalgo.billing").warning("billing.card_setups_limited user=1")
    assert [line.split(" ", 3)[1:] for line in stderr().splitlines()] == [
        ["WARNING", "", "projectalgo.billing billing.card_setups_limited user=1"]
    ]
