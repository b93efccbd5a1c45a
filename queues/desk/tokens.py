"""Agent API tokens: high-entropy random strings, stored only as their SHA-256.

A token carries 256 bits from `secrets`, so a fast hash is enough: nobody can guess
one, and the database alone (a backup, a leak) gives no usable token. A slow password
hash (bcrypt, argon2) protects low-entropy human passwords; these are not that.
"""

from __future__ import annotations

import hashlib
import secrets

TOKEN_PREFIX = "esk_"
"""Marks Escalator desk tokens, so secret scanners and people recognise them."""


def new_token() -> str:
    """A fresh token to show its agent once."""
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def token_hash(token: str) -> str:
    """The hex SHA-256 under which a token is stored and looked up."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()
