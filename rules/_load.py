"""Load a rule set: parse, validate, check references, compile. Raises only `RuleSetError`."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from functools import cache, lru_cache
from pathlib import PurePath
from typing import Any

from pydantic import ValidationError

from rules._acknowledgements import compile_acknowledgements
from rules._condition_compiler import ConditionCompiler
from rules._cross_checks import Declared, build_calendars, check_references, collect
from rules._decision import PlannedEscalation
from rules._pagers import check_pagers, compile_pagers
from rules._pages import PageLevel
from rules._problems import Reporter, RuleProblem, RuleSetError
from rules._route_compiler import TreeCompiler
from rules._route_tree import RouteNode
from rules._ruleset import CompiledRuleSet, QueueSettings
from rules._schema import ALWAYS, EscalationStep, RuleFile
from rules._sla_policy import SlaPolicy
from rules._validation_problems import problems_from_validation
from rules._yaml import YamlSyntaxError, load_yaml
from rules.calendar import BusinessCalendar, parse_duration
from schemas import Priority

DEFAULT_RULES = """\
# Built-in default: every message to queue `general` at priority `normal`, no SLA.
version: 1
queues:
  general: {}
routes:
  queue: general
  priority: normal
"""


def ruleset_version(sources: Mapping[str, str]) -> str:
    """Content hash of the sources (file base names and texts): `sha256:` + 12 hex digits."""
    digest = hashlib.sha256()
    for name, text in sorted((PurePath(n).name, t) for n, t in sources.items()):
        for part in (name, text):
            data = part.encode("utf-8", "surrogatepass")
            digest.update(len(data).to_bytes(8, "big"))
            digest.update(data)
    return "sha256:" + digest.hexdigest()[:12]


def compile_sources(
    sources: Mapping[str, str], read_file: Callable[[str], str] | None = None
) -> CompiledRuleSet:
    """Parse, validate and compile the rule files `{filename: yaml_text}` into one rule set.

    `read_file` resolves files a rule file refers to (a calendar's `holidays_file`),
    given the path joined to the referring file's folder. Raises `RuleSetError` with
    every problem found; warnings of a valid set are on `CompiledRuleSet.warnings`.
    """
    try:
        if read_file is None:  # nothing outside the texts: the result depends on them alone
            return _compile_cached(tuple(sorted(sources.items())))
        return _compile(dict(sources), read_file)
    except RuleSetError:
        raise
    except RecursionError:
        first = next(iter(sources), "<rules>")
        raise RuleSetError([RuleProblem(first, 1, 1, "rule set nested too deeply")]) from None


@lru_cache(maxsize=8)
def _compile_cached(sources: tuple[tuple[str, str], ...]) -> CompiledRuleSet:
    # Workers see the same rule set again on restarts and rebalances; YAML parsing is
    # the slow part of compiling, and a compiled set is immutable, so share it.
    return _compile(dict(sources), None)


def _compile(sources: dict[str, str], read_file: Callable[[str], str] | None) -> CompiledRuleSet:
    report = Reporter()
    if not sources:
        raise RuleSetError([RuleProblem("<rules>", 1, 1, "no rule files given")])
    documents: dict[str, Any] = {}
    models: dict[str, RuleFile] = {}
    for file in sorted(sources):
        data = _parse(file, sources[file], report)
        if data is None:
            continue
        documents[file] = data
        try:
            models[file] = RuleFile.model_validate(data)
        except ValidationError as exc:
            report.problems.extend(
                problems_from_validation(exc, data, file, report.positions[file])
            )
    declared = collect(documents, report)
    calendars = build_calendars(declared, report, read_file)
    check_references(declared, report)
    check_pagers(declared, report)
    root = _routes(declared, calendars, report, sorted(sources)[0])
    acknowledgements = compile_acknowledgements(declared, report, sources)
    if report.has_errors:
        raise RuleSetError(report.problems)
    return CompiledRuleSet(
        version=ruleset_version(sources),
        root=root,
        queues=_queues(models),
        sla_policies=_policies(models, calendars),
        escalation_policies=_escalations(models, compile_pagers(models)),
        calendars={n: c for n, c in calendars.items() if c is not None and n != ALWAYS},
        sources=sources,
        warnings=tuple(sorted(report.problems)),
        route_count=_count(root) - 1,
        acknowledgements=acknowledgements,
    )


def _parse(file: str, text: str, report: Reporter) -> dict[str, Any] | None:
    try:
        data, positions = load_yaml(text)
    except YamlSyntaxError as problem:
        report.problems.append(
            RuleProblem(file, problem.line + 1, problem.col + 1, problem.message)
        )
        return None
    report.positions[file] = positions
    if data is None:
        return {}
    if not isinstance(data, dict):
        report.error(
            file,
            (),
            "a rule file is a mapping of sections (version, calendars, sla, escalations, queues, "
            "routes)",
        )
        return None
    return data


def _routes(
    declared: Declared,
    calendars: Mapping[str, BusinessCalendar | None],
    report: Reporter,
    first: str,
) -> RouteNode:
    conditions = ConditionCompiler(calendars=dict(calendars))
    if declared.routes is None:
        if not report.has_errors:  # a file we could not read may well hold the routes
            report.error(first, (), "no 'routes' section: a rule set needs one routes tree")
        return RouteNode(name=None, cond=None)
    file, raw = declared.routes
    tree = TreeCompiler(file, declared, conditions, report)
    root = tree.root(raw)
    for path, message, on_key in conditions.problems:
        report.error(file, path, message, on_key=on_key)
    return root


def _count(node: RouteNode) -> int:
    return 1 + sum(_count(child) for child in node.children)


def _queues(models: Mapping[str, RuleFile]) -> dict[str, QueueSettings]:
    queues: dict[str, QueueSettings] = {}
    for model in models.values():
        for name, spec in model.queues.items():
            queues[name] = QueueSettings(
                name=name,
                skills=tuple(spec.skills) if spec else (),
                description=spec.description if spec else None,
            )
    return queues


def _policies(
    models: Mapping[str, RuleFile], calendars: Mapping[str, BusinessCalendar | None]
) -> dict[str, SlaPolicy]:
    policies: dict[str, SlaPolicy] = {}
    for model in models.values():
        for name, spec in model.sla.items():
            calendar = calendars.get(spec.calendar or ALWAYS) or BusinessCalendar.always()
            targets = {
                Priority(priority): {
                    clock: parse_duration(text)
                    for clock, text in clocks.model_dump(exclude_none=True).items()
                }
                for priority, clocks in spec.targets.items()
            }
            policies[name] = SlaPolicy(
                name=name,
                calendar_name=spec.calendar or ALWAYS,
                calendar=calendar,
                targets=targets,
                warn_at=spec.warn_at,
                pause_when=frozenset(spec.pause_when),
            )
    return policies


def _escalations(
    models: Mapping[str, RuleFile], pagers: Mapping[str, tuple[PageLevel, ...]]
) -> dict[str, tuple[PlannedEscalation, ...]]:
    return {
        name: tuple(_step(step, pagers) for step in steps)
        for model in models.values()
        for name, steps in model.escalations.items()
    }


def _step(step: EscalationStep, pagers: Mapping[str, tuple[PageLevel, ...]]) -> PlannedEscalation:
    after = None
    if step.after is not None:
        after = parse_duration(step.after).wall_clock()
    every = None if step.every is None else parse_duration(step.every).wall_clock()
    return PlannedEscalation(
        on=step.on,
        clock=step.clock,
        after=after,
        queue=step.queue,
        priority=step.priority,
        tags=tuple(step.tags),
        notify=tuple(step.notify),
        repeat=step.repeat,
        page=step.page,
        page_levels=pagers.get(step.page, ()) if step.page else (),
        until=step.until,
        every=every,
        max_pages=step.max_pages if step.until else 0,
    )


@cache
def default_ruleset() -> CompiledRuleSet:
    """The rule set used when none is configured: everything to `general` at `normal`, no SLA."""
    return compile_sources({"default-rules.yaml": DEFAULT_RULES})
