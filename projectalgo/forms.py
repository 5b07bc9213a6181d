"""What the browser sends to the Reflex event handlers, read strictly. Plain Python; no Reflex here.

Reflex hands event arguments over as the browser sent them, whatever the handler's annotations say: any JSON
value may arrive where a form dict, a string, an id or a flag is expected. Anything a page cannot have sent
raises InputError, whose message is safe to show; an id that matches nothing reads as -1.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from projectalgo.errors import InvalidInputError
from projectalgo.snapshots import ALL_TIME_END_MS

MAX_ID = 2**31 - 1  # the id columns are 32-bit integers on PostgreSQL
FORM_NOT_UNDERSTOOD = "The form could not be read. Reload the page and try again."
_WHOLE_NUMBER = re.compile(r"^[+-]?[0-9]{1,12}$")
_MILLISECONDS = re.compile(r"^[0-9]{1,16}$")


class InputError(InvalidInputError):
    """The browser sent something its form cannot have sent (a tampered or stale page); the message says so."""


def _form_value(form: object, name: str) -> str:
    if not isinstance(form, Mapping):
        raise InputError(FORM_NOT_UNDERSTOOD)
    value = form.get(name, "")
    if not isinstance(value, str):
        raise InputError(FORM_NOT_UNDERSTOOD)
    return value


def form_text(form: object, name: str, *, max_length: int, label: str) -> str:
    """The text field `name` of a submitted form ("" when missing); InputError for anything a form cannot send."""
    value = _form_value(form, name)
    if len(value) > max_length:
        raise InputError(f"{label} must be at most {max_length} characters long.")
    return value


def form_number(form: object, name: str, *, label: str) -> int:
    """A whole number typed into the field `name`; its range is the domain function's to check."""
    text = _form_value(form, name).strip()
    if not _WHOLE_NUMBER.match(text):
        raise InputError(f"{label} must be a whole number.")
    return int(text)


def form_id(form: object, name: str) -> int:
    """An id held in the field `name` (a hidden input or a select); one that matches nothing when tampered."""
    return parse_id(_form_value(form, name))


def lenient_form_id(form: object, name: str) -> int:
    """The id in the field `name` as parse_id reads it, never raising: -1 for a form that is not one.

    For after a refusal, to tell which row's dialog the form came from (and show the refusal in it).
    """
    return parse_id(form.get(name)) if isinstance(form, Mapping) else -1


def parse_id(value: object) -> int:
    """An id sent by the browser (a number or its text); -1, which matches nothing, for anything else.

    Only ids that fit the id columns pass: a larger number would make the database raise, not match nothing.
    """
    if isinstance(value, str) and _WHOLE_NUMBER.match(value.strip()):
        value = int(value)
    if isinstance(value, int) and not isinstance(value, bool) and 0 < value <= MAX_ID:
        return value
    return -1


def parse_ms(value: object) -> int:
    """A time in milliseconds since 1970 that the page sent back (a number or its text); -1 for anything else."""
    if isinstance(value, str) and _MILLISECONDS.match(value.strip()):
        value = int(value)
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= ALL_TIME_END_MS:
        return value
    return -1


def parse_flag(value: object) -> bool:
    """A yes/no the page sends as a JSON boolean; InputError for anything else (bool("false") is True)."""
    if isinstance(value, bool):
        return value
    raise InputError(FORM_NOT_UNDERSTOOD)
