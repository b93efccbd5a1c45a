"""Escalator's public contracts: the pydantic models of every topic and their JSON Schemas."""

from schemas._actions import AgentAction, AgentActionType
from schemas._case import Case, CaseMessage, CaseStatus, ClockState, SlaClockView
from schemas._clocks import (
    CLOCK_NAMES,
    SLA_CLOCKS,
    CaseMoment,
    ClockDefinition,
    ClockName,
    clock_definition,
)
from schemas._common import (
    KNOWN_CHANNELS,
    PRIORITY_ORDER,
    ChannelName,
    Priority,
    channel_label,
)
from schemas._dlq import DeadLetter
from schemas._events import (
    AcknowledgementPayload,
    CaseEvent,
    CaseEventType,
    CaseOpenedPayload,
    CaseRoutedPayload,
    MessageAppendedPayload,
    PromiseView,
)
from schemas._identity import IdentityKind, IdentityRecord
from schemas._inbound import Attachment, CustomerAttributes, InboundMessage
from schemas._presence import AgentPresence, PresenceState
from schemas._rules import ACTIVE_RULESET_KEY, RuleSetRecord, RuleSetVersion
from schemas._shadow import SHADOW_RULESET_KEY, ShadowDisagreement, ShadowRuleSet
from schemas.channels import CHANNELS, ChannelTraits, channel_traits
from schemas.export import CONTRACTS, export_json_schemas
from schemas.topics import DEFAULT_PREFIX, Topics

__all__ = [
    "ACTIVE_RULESET_KEY",
    "CHANNELS",
    "CLOCK_NAMES",
    "CONTRACTS",
    "DEFAULT_PREFIX",
    "KNOWN_CHANNELS",
    "PRIORITY_ORDER",
    "SHADOW_RULESET_KEY",
    "SLA_CLOCKS",
    "AcknowledgementPayload",
    "AgentAction",
    "AgentActionType",
    "AgentPresence",
    "Attachment",
    "Case",
    "CaseEvent",
    "CaseEventType",
    "CaseMessage",
    "CaseMoment",
    "CaseOpenedPayload",
    "CaseRoutedPayload",
    "CaseStatus",
    "ChannelName",
    "ChannelTraits",
    "ClockDefinition",
    "ClockName",
    "ClockState",
    "CustomerAttributes",
    "DeadLetter",
    "IdentityKind",
    "IdentityRecord",
    "InboundMessage",
    "MessageAppendedPayload",
    "PresenceState",
    "Priority",
    "PromiseView",
    "RuleSetRecord",
    "RuleSetVersion",
    "ShadowDisagreement",
    "ShadowRuleSet",
    "SlaClockView",
    "Topics",
    "channel_label",
    "channel_traits",
    "clock_definition",
    "export_json_schemas",
]
