"""API keys: how they are made and what a valid one looks like.

A key is ``sk-qwen-`` + ``secrets.token_urlsafe(32)`` when the CLI makes it; a user-chosen key
must be 32-200 characters of ``[A-Za-z0-9._-]`` so it can sit in the gateway's key file and an
``Authorization: Bearer`` header without quoting.
"""

from __future__ import annotations

import re
import secrets

from ..errors import UsageError

KEY_PREFIX = "sk-qwen-"
KEY_PATTERN = re.compile(r"^[A-Za-z0-9._-]{32,200}$")


def generate_key() -> str:
    """A fresh random key."""
    return KEY_PREFIX + secrets.token_urlsafe(32)


def validate_key(key: str) -> str:
    """Return ``key`` stripped of a trailing newline, or raise without echoing it."""
    key = key.rstrip("\r\n")
    if not KEY_PATTERN.match(key):
        raise UsageError(
            "The key is malformed: use 32 to 200 characters from A-Z, a-z, 0-9, '.', '_' and '-' "
            f"(it has {len(key)} characters). Or omit --key to have one generated."
        )
    return key
