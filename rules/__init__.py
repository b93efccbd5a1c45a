"""The YAML rule language: load, validate, compile and evaluate; calendars and SLA maths. No I/O."""

from rules._decision import CaseFacts, Decision, PlannedEscalation, RuleEvaluator

__all__ = ["CaseFacts", "Decision", "PlannedEscalation", "RuleEvaluator"]
