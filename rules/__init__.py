"""The YAML rule language: load, validate, compile and evaluate; calendars and SLA maths. No I/O."""

from rules._decision import (
    CaseFacts,
    CustomerHistory,
    Decision,
    PlannedEscalation,
    RuleEvaluator,
)
from rules._load import compile_sources, default_ruleset, ruleset_version
from rules._problems import RuleProblem, RuleSetError
from rules._ruleset import CompiledRuleSet, Explanation, QueueSettings, RouteTrial
from rules._schema import rule_file_json_schema
from rules._sla_policy import SlaPolicy
from rules.clocks import CaseClocks, ClockEvent, ClockEventKind, ClockPolicy

__all__ = [
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
    "RouteTrial",
    "RuleEvaluator",
    "RuleProblem",
    "RuleSetError",
    "SlaPolicy",
    "compile_sources",
    "default_ruleset",
    "rule_file_json_schema",
    "ruleset_version",
]
