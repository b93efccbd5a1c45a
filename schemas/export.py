"""JSON Schema export of every contract, for users who validate records in other languages."""

from __future__ import annotations

import json
from pathlib import Path

from pydantic import BaseModel

from schemas._actions import AgentAction
from schemas._case import Case
from schemas._dlq import DeadLetter
from schemas._events import CaseEvent
from schemas._identity import IdentityRecord
from schemas._inbound import InboundMessage
from schemas._presence import AgentPresence
from schemas._rules import RuleSetRecord, RuleSetVersion

CONTRACTS: dict[str, type[BaseModel]] = {
    "inbound-message": InboundMessage,
    "case": Case,
    "case-event": CaseEvent,
    "agent-action": AgentAction,
    "agent-presence": AgentPresence,
    "dead-letter": DeadLetter,
    "ruleset": RuleSetRecord,
    "ruleset-version": RuleSetVersion,
    "identity": IdentityRecord,
}
"""File stem → model, for every contract on a topic."""


def export_json_schemas(directory: Path) -> list[Path]:
    """Write `<name>.schema.json` for every contract into `directory`; return the paths."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, model in CONTRACTS.items():
        path = directory / f"{name}.schema.json"
        schema = model.model_json_schema()
        schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
        path.write_text(json.dumps(schema, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        written.append(path)
    return written
