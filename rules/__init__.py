"""The YAML rule language: load, validate, compile and evaluate; calendars and SLA maths. No I/O."""

from rules._acknowledgements import (
    AcknowledgementTemplate,
    RenderedAcknowledgement,
    acknowledgement_variables,
    human_time,
    is_public,
    local_zone,
)
from rules._decision import (
    CaseFacts,
    CustomerHistory,
    Decision,
    PlannedEscalation,
    RuleEvaluator,
    due_at_text,
)
from rules._load import compile_sources, default_ruleset, ruleset_version
from rules._problems import RuleProblem, RuleSetError
from rules._ruleset import CompiledRuleSet, Explanation, QueueSettings, RouteTrial
from rules._schema import rule_file_json_schema
from rules._sla_policy import SlaPolicy
from rules.clocks import CaseClocks, ClockEvent, ClockEventKind, ClockPolicy

__all__ = [
    "AcknowledgementTemplate",
    "CaseClocks",
    "CaseFacts",
    "ClockEvent",
    "ClockEventKind",
    "ClockPolicy",
    "CompiledRuleSet",
    "CustomerHistory",
    "Decision",
    "Explanation",
    "PlannedEscalation",
    "QueueSettings",
    "RenderedAcknowledgement",
    "RouteTrial",
    "RuleEvaluator",
    "RuleProblem",
    "RuleSetError",
    "SlaPolicy",
    "acknowledgement_variables",
    "compile_sources",
    "default_ruleset",
    "due_at_text",
    "human_time",
    "is_public",
    "local_zone",
    "rule_file_json_schema",
    "ruleset_version",
]
