"""Secret tokens handed out once (sign-ins, bot tokens, password reset links) and kept only as their hash."""

from __future__ import annotations

import hashlib
import secrets


def new_token(prefix: str = "") -> str:
    """256 random bits, URL-safe, after `prefix`."""
    return prefix + secrets.token_urlsafe(32)


def token_hash(token: str) -> str:
    # 256 random bits: a plain SHA-256 cannot be reversed by guessing, and needs no key to rotate.
    return hashlib.sha256(token.encode()).hexdigest()
