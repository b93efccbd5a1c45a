"""What the customer was promised: the acknowledgements in a case's events, and their fate.

Each `case.acknowledged` event is one promise (when the customer will hear back). The
reply service may then hold it back (`acknowledgement.suppressed`: one went to the same
customer lately) or fail to deliver it (`reply.failed` with its `ack:` key); the desk shows
each promise with that outcome, the latest first being what the customer now expects.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from schemas import CaseEventType

__all__ = ["promises_of"]

_OUTCOMES = {
    CaseEventType.ACKNOWLEDGEMENT_SUPPRESSED.value: "suppressed",
    CaseEventType.REPLY_FAILED.value: "failed",
}


def promises_of(events: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The case's promises in time order (from its events as the desk lists them)."""
    promises: list[dict[str, Any]] = []
    outcome_of: dict[str, str] = {}
    for event in events:
        payload = event.get("payload") or {}
        kind = event.get("type")
        if kind in _OUTCOMES and isinstance(payload.get("message_key"), str):
            outcome_of[payload["message_key"]] = _OUTCOMES[kind]
        if kind != CaseEventType.CASE_ACKNOWLEDGED.value:
            continue
        promise = payload.get("promise") or {}
        promises.append(
            {
                "at": event.get("at"),
                "kind": payload.get("kind"),
                "template": payload.get("template"),
                "channel": payload.get("channel"),
                "recipient": payload.get("recipient"),
                "clock": promise.get("clock"),
                "due_at": promise.get("due_at"),
                "local": promise.get("local"),
                "timezone": promise.get("timezone"),
                "message_key": payload.get("message_key"),
            }
        )
    for promise in promises:
        promise["delivery"] = outcome_of.get(str(promise["message_key"]), "sent or sending")
    return promises
