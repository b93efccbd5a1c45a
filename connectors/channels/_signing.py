"""HMAC signatures and timestamp windows, compared in constant time."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time

from connectors.channels._http import Rejection

DEFAULT_TOLERANCE_SECONDS = 300
"""How old (or how far ahead) a signed timestamp may be before the request counts as a replay."""


def hmac_sha256(secret: str, payload: bytes) -> bytes:
    """The raw HMAC-SHA256 digest of `payload` under `secret`."""
    return hmac.new(secret.encode("utf-8"), payload, hashlib.sha256).digest()


def hmac_sha256_hex(secret: str, payload: bytes) -> str:
    """HMAC-SHA256 as lowercase hex."""
    return hmac_sha256(secret, payload).hex()


def hmac_sha256_base64(secret: str, payload: bytes) -> str:
    """HMAC-SHA256 as standard base64."""
    return base64.b64encode(hmac_sha256(secret, payload)).decode("ascii")


def require_signature(given: str | None, expected: str, header: str) -> None:
    """Raise a 401 Rejection unless `given` equals `expected` (constant-time)."""
    if not given:
        raise Rejection(401, "missing_signature", f"the {header} header is missing")
    if not hmac.compare_digest(given.strip().encode("utf-8"), expected.encode("utf-8")):
        raise Rejection(401, "invalid_signature", f"the {header} signature does not match")


def require_fresh(timestamp: str | None, header: str, tolerance_seconds: int) -> int:
    """The timestamp (unix seconds) if within the window of now; a 401 Rejection otherwise.

    Checked only after the signature proved the timestamp authentic, so a forger learns nothing.
    """
    if not timestamp or not timestamp.strip().isdigit():
        raise Rejection(401, "missing_timestamp", f"the {header} header is missing or not a number")
    value = int(timestamp.strip())
    if abs(time.time() - value) > tolerance_seconds:
        raise Rejection(
            401, "stale_timestamp", f"{header} is outside the {tolerance_seconds} s replay window"
        )
    return value
