"""The ingress's API keys file: who may call `POST /v1/messages`, for which channels, trusted
with which fields. It holds only SHA-256 hashes of the keys, never a key.

Keys follow the desk's agent tokens (`queues/desk/tokens.py`): 256 random bits from `secrets`
behind a recognisable prefix, shown once, stored as their SHA-256. With that much entropy a
fast hash is enough: the file (a backup, a leaked Secret) gives no usable key.

The file is JSON, written by `escalator ingress keys` and read by every ingress process, which
picks up changes while running (see `connectors.ingress_auth.KeyRing`). On Kubernetes it is a
Secret mounted as a volume; updating the Secret reaches every replica without a restart.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import secrets
import tempfile
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, field_validator

KEY_PREFIX = "eik_"
"""Marks Escalator ingress keys, so secret scanners and people recognise them."""

ALL_CHANNELS = "*"
"""A key's channel list entry that allows every channel."""

TRUST_FIELDS: dict[str, str] = {
    "customer.id": "joins the message to that customer (their cases, their history)",
    "customer.verified": "links the email/phone it lists to the customer (identity)",
    "metadata.staff": "makes a forum post a staff answer, which meets the SLA clocks",
    "metadata.accepted_answer": "marks the topic answered, which meets the SLA clocks",
    "metadata.escalation_request": "makes the message a customer's escalation request",
}
"""Fields the pipeline believes (identity joins, clocks met), and what setting each does."""

_NAME = re.compile(r"[a-z0-9][a-z0-9._-]{0,62}")


class IngressKeyError(ValueError):
    """A key operation that cannot be done (unknown name, duplicate, bad scope)."""


class IngressKey(BaseModel):
    """One key: its name, the hash it is checked by, what it may publish and set."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    name: str
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    channels: list[str] = Field(min_length=1)
    trust: list[str] = Field(default_factory=list)
    created_at: datetime
    rotated_at: datetime | None = None
    revoked_at: datetime | None = None

    @field_validator("trust")
    @classmethod
    def _known_trust_fields(cls, value: list[str]) -> list[str]:
        unknown = sorted(set(value) - set(TRUST_FIELDS))
        if unknown:
            raise ValueError(
                f"unknown trust field(s) {', '.join(unknown)}; known: {', '.join(TRUST_FIELDS)}"
            )
        return value

    @property
    def active(self) -> bool:
        """False once revoked."""
        return self.revoked_at is None

    def may_publish(self, channel: str) -> bool:
        """Whether this key may publish messages of `channel`."""
        return ALL_CHANNELS in self.channels or channel in self.channels


class KeysFile(BaseModel):
    """The whole file: a version and the keys (revoked ones kept, for the record)."""

    model_config = ConfigDict(extra="ignore")

    version: int = 1
    keys: list[IngressKey] = Field(default_factory=list)

    def find(self, name: str) -> IngressKey:
        """The key called `name`; IngressKeyError if there is none."""
        for key in self.keys:
            if key.name == name:
                return key
        raise IngressKeyError(f"no ingress key named {name!r}")

    def _replace(self, old: IngressKey, new: IngressKey) -> None:
        self.keys = [new if key is old else key for key in self.keys]


def new_key() -> str:
    """A fresh key to show its owner once."""
    return KEY_PREFIX + secrets.token_urlsafe(32)


def key_hash(key: str) -> str:
    """The hex SHA-256 under which a key is stored and looked up."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def load(path: Path) -> KeysFile:
    """The keys file at `path` (empty if it does not exist yet); ValueError if it is invalid."""
    if not path.exists():
        return KeysFile()
    try:
        return KeysFile.model_validate_json(path.read_bytes())
    except ValueError as error:
        raise ValueError(f"{path} is not a valid ingress keys file: {error}") from error


def save(path: Path, keys: KeysFile) -> None:
    """Write the file atomically (a reader sees the old or the new file, never half of one)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    document = json.loads(keys.model_dump_json())
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            json.dump(document, out, indent=2)
            out.write("\n")
        Path(temporary).replace(path)  # mkstemp made it 0600: hashes only, still private
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def add(keys: KeysFile, name: str, channels: Iterable[str], trust: Iterable[str] = ()) -> str:
    """Add a key called `name` and return it (the only time it exists in clear)."""
    if not _NAME.fullmatch(name):
        raise IngressKeyError(f"key name {name!r}: lowercase letters, digits, . _ - (at most 63)")
    if any(key.name == name for key in keys.keys):
        raise IngressKeyError(f"an ingress key named {name!r} exists; rotate or revoke it")
    channel_list = sorted({channel.strip() for channel in channels if channel.strip()})
    if not channel_list:
        raise IngressKeyError("a key needs at least one channel (or * for all)")
    token = new_key()
    try:
        record = IngressKey(
            name=name,
            sha256=key_hash(token),
            channels=channel_list,
            trust=sorted({field.strip() for field in trust if field.strip()}),
            created_at=datetime.now(UTC),
        )
    except ValueError as error:
        raise IngressKeyError(str(error)) from error
    keys.keys.append(record)
    return token


def rotate(keys: KeysFile, name: str) -> str:
    """Give the key `name` a new value and return it; the old value stops working."""
    old = keys.find(name)
    if not old.active:
        raise IngressKeyError(f"ingress key {name!r} is revoked; add a key with another name")
    token = new_key()
    keys._replace(
        old,
        old.model_copy(update={"sha256": key_hash(token), "rotated_at": datetime.now(UTC)}),
    )
    return token


def revoke(keys: KeysFile, name: str) -> IngressKey:
    """Revoke the key `name` (kept in the file, marked revoked) and return it."""
    old = keys.find(name)
    revoked = old.model_copy(update={"revoked_at": old.revoked_at or datetime.now(UTC)})
    keys._replace(old, revoked)
    return revoked
