"""Check and compile the `pagers:` section and the escalation steps that page.

Checked on the raw documents (errors carry FILE:LINE:COL): a chain's levels name targets
(not other chains) that exist, only its last level may omit `pages`; a step's `page` names a
pager; `until: acknowledged` needs `page` and `every`, and `every` needs `until`. Compiled
into `PageLevel`s once, so an armed step carries its targets and a rule reload never changes
a page already running.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rules._cross_checks import Declared, Entry, undefined
from rules._pager_schema import PagerSpec
from rules._pages import PageLevel, PagerTarget
from rules._problems import Reporter
from rules._schema import RuleFile

__all__ = ["check_pagers", "compile_pagers"]


def check_pagers(declared: Declared, report: Reporter) -> None:
    """Report every dangling or inconsistent pager reference of the rule set."""
    pagers = declared.sections["pagers"]
    targets = [name for name, entry in pagers.items() if _is_target(entry.raw)]
    for entry in pagers.values():
        chain = entry.raw.get("chain") if isinstance(entry.raw, dict) else None
        if isinstance(chain, list):
            _check_chain(entry, chain, targets, list(pagers), report)
    for entry in declared.sections["escalations"].values():
        steps = entry.raw if isinstance(entry.raw, list) else []
        for index, step in enumerate(steps):
            if isinstance(step, dict):
                _check_step(entry, index, step, list(pagers), report)


def _is_target(raw: object) -> bool:
    return isinstance(raw, dict) and "chain" not in raw


def _check_chain(
    entry: Entry, chain: list[Any], targets: list[str], names: list[str], report: Reporter
) -> None:
    for level_index, level in enumerate(chain):
        if not isinstance(level, dict):
            continue
        pages = level.get("page")
        for index, name in enumerate(pages if isinstance(pages, list) else []):
            if not isinstance(name, str) or name in targets:
                continue
            where = entry.path("pagers", "chain", level_index, "page", index)
            if name in names:
                report.error(entry.file, where, f"a chain level pages targets, not chain {name!r}")
            else:
                report.error(entry.file, where, undefined("pager target", name, targets))
        last = level_index == len(chain) - 1
        if not last and "pages" not in level:
            report.error(
                entry.file,
                entry.path("pagers", "chain", level_index),
                "only the last level of a chain may omit 'pages' (how many unacknowledged "
                "pages before the next level)",
            )


def _check_step(
    entry: Entry, index: int, step: dict[str, Any], names: list[str], report: Reporter
) -> None:
    page = step.get("page")
    where = entry.path("escalations", index)
    if isinstance(page, str) and page not in names:
        report.error(entry.file, (*where, "page"), undefined("pager", page, names))
    if step.get("until") is not None:
        if "page" not in step:
            report.error(entry.file, (*where, "until"), "'until' needs 'page'", on_key=True)
        if "every" not in step:
            report.error(
                entry.file,
                (*where, "until"),
                "'until: acknowledged' needs 'every' (how often to page again)",
                on_key=True,
            )
    elif "every" in step:
        report.error(
            entry.file, (*where, "every"), "'every' needs 'until: acknowledged'", on_key=True
        )


def compile_pagers(models: Mapping[str, RuleFile]) -> dict[str, tuple[PageLevel, ...]]:
    """Every pager as its levels: a target is one level of itself."""
    specs = {name: spec for model in models.values() for name, spec in model.pagers.items()}
    compiled: dict[str, tuple[PageLevel, ...]] = {}
    for name, spec in specs.items():
        if spec.chain is None:
            compiled[name] = (PageLevel(targets=(_target(name, spec),)),)
            continue
        compiled[name] = tuple(
            PageLevel(
                targets=tuple(
                    _target(target, specs[target]) for target in level.page if target in specs
                ),
                pages=None if index == len(spec.chain) - 1 else level.pages,
            )
            for index, level in enumerate(spec.chain)
        )
    return compiled


def _target(name: str, spec: PagerSpec) -> PagerTarget:
    via = spec.provider or "chain"
    settings = getattr(spec, via).model_dump(exclude_none=True) if spec.provider else {}
    return PagerTarget(
        name=name,
        via=via,
        settings=tuple(
            (key, tuple(value) if isinstance(value, list) else value)
            for key, value in sorted(settings.items())
        ),
    )
