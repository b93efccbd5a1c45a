"""The ingress keys file: hashes at rest, scopes checked when a key is made, and a key ring
that follows the file (a bad edit keeps the last good keys; a bad file at start is fatal)."""

from __future__ import annotations

from pathlib import Path

import pytest

from connectors import ingress_keys
from connectors.ingress_auth import IngressAuth, KeyRing, Refusal
from connectors.ingress_keys import IngressKeyError


def write_keys(path: Path, *names: str) -> dict[str, str]:
    keys = ingress_keys.load(path)
    tokens = {name: ingress_keys.add(keys, name, ["chat"]) for name in names}
    ingress_keys.save(path, keys)
    return tokens


def test_keys_are_scoped_and_named_with_care(tmp_path: Path) -> None:
    keys = ingress_keys.KeysFile()
    with pytest.raises(IngressKeyError, match="at least one channel"):
        ingress_keys.add(keys, "empty", [" ", ""])
    with pytest.raises(IngressKeyError, match="unknown trust field"):
        ingress_keys.add(keys, "typo", ["chat"], ["metadata.stafff"])
    with pytest.raises(IngressKeyError, match="key name"):
        ingress_keys.add(keys, "Not A Name", ["chat"])
    assert keys.keys == []
    ingress_keys.add(keys, "ok", ["chat"])
    ingress_keys.revoke(keys, "ok")
    with pytest.raises(IngressKeyError, match="revoked"):
        ingress_keys.rotate(keys, "ok")
    with pytest.raises(IngressKeyError, match="no ingress key"):
        ingress_keys.revoke(keys, "missing")


def test_the_ring_follows_the_file_and_keeps_the_last_good_keys(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "keys.json"
    ring = KeyRing(path, check_every_seconds=0)  # no file yet: no key is valid
    assert len(ring) == 0
    first = write_keys(path, "one")["one"]
    assert ring.caller(first) is not None
    second = write_keys(path, "two")["two"]
    assert ring.caller(second) is not None and ring.caller(first) is not None
    path.write_text("{not json")
    assert ring.caller(second) is not None  # a broken edit does not lock everybody out
    assert "not reloaded" in caplog.text
    path.unlink()
    assert ring.caller(first) is not None


def test_an_invalid_file_at_start_is_fatal(tmp_path: Path) -> None:
    path = tmp_path / "keys.json"
    path.write_text('{"keys": [{"name": "x"}]}')
    with pytest.raises(ValueError, match="not a valid ingress keys file"):
        IngressAuth.from_keys_file(path)


def test_without_a_keys_file_every_caller_is_refused() -> None:
    refusal = IngressAuth.from_keys_file(None).authenticate("Bearer eik_anything")
    assert isinstance(refusal, Refusal) and refusal.status == 401
    assert "ESCALATOR_INGRESS_KEYS_FILE" in refusal.detail
