"""The domain's refusals, one kind each. Plain Python; no Reflex, no FastAPI.

A DomainError's `message` is written for the person who caused it and is safe to show them; its `code` is a
stable name for it. api/errors.py maps each kind to an HTTP answer and state.py to the text a page shows, each in
one place: any other exception is a fault, logged and shown as a generic error, never its text.
"""

from __future__ import annotations

from collections.abc import Sequence

# What the API and the pages say about a fault (any exception that is not a DomainError) instead of its text.
SOMETHING_WRONG = "Something went wrong on our side; it has been logged."


class DomainError(Exception):
    """`problems` names each wrong part of a request, when the sender needs more than the message."""

    code = "refused"

    def __init__(self, message: str, *, code: str | None = None, problems: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.message = message
        self.problems = list(problems)
        if code is not None:
            self.code = code


class InvalidInputError(DomainError):
    """What was sent is wrong; the sender can correct it."""

    code = "invalid"


class UnreadableError(InvalidInputError):
    """What was sent cannot even be read (not JSON, not an object)."""

    code = "bad_request"


class UnauthenticatedError(DomainError):
    """The caller's credential is missing, unknown or revoked."""

    code = "unauthenticated"


class NotAllowedError(DomainError):
    """The caller is known but may not do this (a role, a disabled owner, an archived object)."""

    code = "not_allowed"


class NotFoundError(DomainError):
    """No such object among those the caller may see."""

    code = "not_found"


class ConflictError(DomainError):
    """Well-formed, but the present state refuses it."""

    code = "conflict"


class TryLaterError(DomainError):
    """Refused for now: the same request may succeed after `retry_after_seconds`."""

    def __init__(self, message: str, *, retry_after_seconds: int, code: str | None = None) -> None:
        super().__init__(message, code=code)
        self.retry_after_seconds = retry_after_seconds


class RateLimitedError(TryLaterError):
    """Too many requests from this caller."""

    code = "rate_limited"


class UnavailableError(TryLaterError):
    """Something the request needs cannot be reached now; nothing was done."""

    code = "unavailable"
