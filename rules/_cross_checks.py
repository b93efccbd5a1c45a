"""Check what pydantic cannot: calendars' hours and holidays, cross-references, escalations.

Works on the raw (merged) documents so that one run finds every problem, even in
files whose structure is already known to be wrong; wrongly typed values are skipped
here because the schema pass has reported them.
"""

from __future__ import annotations

import difflib
import posixpath
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from rules._problems import Reporter
from rules._schema import ALWAYS, check_timezone
from rules._yaml import Path
from rules.calendar import BusinessCalendar, holidays_from_ics, parse_holidays, parse_hours
from schemas import CaseStatus

SECTIONS = ("calendars", "sla", "escalations", "queues", "pagers", "acknowledgements")
ReadFile = Callable[[str], str]


@dataclass(frozen=True)
class Entry:
    """A named item of a section, with the file it came from and its raw value."""

    file: str
    name: str
    raw: Any

    def path(self, section: str, *rest: str | int) -> Path:
        """The document path of this entry, or of something inside it."""
        return (section, self.name, *rest)


@dataclass
class Declared:
    """Every named item of every section across the files, first definition wins."""

    sections: dict[str, dict[str, Entry]] = field(default_factory=lambda: {s: {} for s in SECTIONS})
    routes: tuple[str, Any] | None = None

    def names(self, section: str) -> list[str]:
        """The declared names of one section."""
        return list(self.sections[section])


def collect(documents: Mapping[str, Any], report: Reporter) -> Declared:
    """Gather the sections of all files; a name defined twice (or two routes trees) is an error."""
    declared = Declared()
    for file, data in documents.items():
        if not isinstance(data, dict):
            continue
        for section in SECTIONS:
            items = data.get(section)
            if not isinstance(items, dict):
                continue
            for name, raw in items.items():
                seen = declared.sections[section].get(name)
                if seen is not None:
                    line, col = report.where(seen.file, (section, name), on_key=True)
                    kind = _KIND[section]
                    report.error(
                        file,
                        (section, name),
                        f"{kind} {name!r} is already defined at {seen.file}:{line}:{col}",
                        on_key=True,
                    )
                    continue
                declared.sections[section][name] = Entry(file, name, raw)
        if "routes" in data:
            if declared.routes is not None:
                line, col = report.where(declared.routes[0], ("routes",), on_key=True)
                report.error(
                    file,
                    ("routes",),
                    f"'routes' is already defined at {declared.routes[0]}:{line}:{col}; "
                    "a rule set has one routes tree",
                    on_key=True,
                )
            else:
                declared.routes = (file, data["routes"])
    return declared


_KIND = {
    "calendars": "calendar",
    "sla": "SLA policy",
    "escalations": "escalation",
    "queues": "queue",
    "pagers": "pager",
    "acknowledgements": "acknowledgement",
}


def build_calendars(
    declared: Declared, report: Reporter, read_file: ReadFile | None
) -> dict[str, BusinessCalendar | None]:
    """Build every calendar; a calendar that cannot be built maps to None (and an error)."""
    calendars: dict[str, BusinessCalendar | None] = {ALWAYS: BusinessCalendar.always()}
    for name, entry in declared.sections["calendars"].items():
        calendars[name] = _calendar(entry, report, read_file)
    return calendars


def _calendar(
    entry: Entry, report: Reporter, read_file: ReadFile | None
) -> BusinessCalendar | None:
    raw = entry.raw
    if raw == ALWAYS:
        return BusinessCalendar.always()
    if not isinstance(raw, dict):
        return None
    ok = True
    zone = raw.get("timezone")
    if not isinstance(zone, str) or not _valid_zone(zone):
        ok = False
    hours = None
    if "hours" in raw:
        hours = _hours(entry, raw["hours"], report)
        ok = ok and hours is not None
    holidays: set[Any] = set()
    if isinstance(raw.get("holidays"), list):
        try:
            holidays |= parse_holidays(raw["holidays"])
        except ValueError:
            ok = False  # the schema pass reported the bad date
    reference = raw.get("holidays_file")
    if isinstance(reference, str):
        from_file = _ics(entry, reference, report, read_file)
        ok = ok and from_file is not None
        holidays |= from_file or set()
    if not ok or not isinstance(zone, str) or hours is None:
        return None
    try:
        return BusinessCalendar(zone, hours, holidays)
    except ValueError as exc:
        report.error(entry.file, entry.path("calendars"), str(exc), on_key=True)
        return None


def _valid_zone(zone: str) -> bool:
    try:
        check_timezone(zone)
    except ValueError:
        return False
    return True


def _hours(entry: Entry, raw: Any, report: Reporter) -> Any:
    path = entry.path("calendars", "hours")
    try:
        return parse_hours(raw)
    except ValueError as whole:
        located = False
        if isinstance(raw, dict):
            for key, value in raw.items():
                try:
                    parse_hours({key: value})
                except ValueError as exc:
                    report.error(entry.file, (*path, key), str(exc))
                    located = True
        if not located:
            report.error(entry.file, path, str(whole))
        return None


def _ics(
    entry: Entry, reference: str, report: Reporter, read_file: ReadFile | None
) -> set[Any] | None:
    path = entry.path("calendars", "holidays_file")
    location = posixpath.join(posixpath.dirname(entry.file.replace("\\", "/")), reference)
    if read_file is None:
        report.error(entry.file, path, f"cannot read {reference!r}: no file reader was given")
        return None
    try:
        text = read_file(location)
    except (OSError, UnicodeDecodeError) as exc:
        report.error(
            entry.file, path, f"cannot read {reference!r}: {exc.__class__.__name__}: {exc}"
        )
        return None
    try:
        return set(holidays_from_ics(text))
    except ValueError as exc:
        report.error(entry.file, path, f"{reference}: {exc}")
        return None


def check_references(declared: Declared, report: Reporter) -> None:
    """SLA policies name known calendars and statuses; escalation steps are consistent."""
    calendars = [*declared.names("calendars"), ALWAYS]
    statuses = [status.value for status in CaseStatus]
    for entry in declared.sections["sla"].values():
        if not isinstance(entry.raw, dict):
            continue
        calendar = entry.raw.get("calendar")
        if isinstance(calendar, str) and calendar not in calendars:
            report.error(
                entry.file,
                entry.path("sla", "calendar"),
                undefined("calendar", calendar, calendars),
            )
        pause = entry.raw.get("pause_when")
        for index, status in enumerate(pause if isinstance(pause, list) else []):
            if isinstance(status, str) and status not in statuses:
                report.error(
                    entry.file,
                    entry.path("sla", "pause_when", index),
                    f"unknown case status {status!r}{_hint(status, statuses)}; "
                    f"statuses are {', '.join(statuses)}",
                )
    queues = declared.names("queues")
    for entry in declared.sections["escalations"].values():
        steps = entry.raw if isinstance(entry.raw, list) else []
        if isinstance(entry.raw, list) and not entry.raw:
            report.error(
                entry.file, entry.path("escalations"), "an escalation needs at least one step"
            )
        for index, step in enumerate(steps):
            if isinstance(step, dict):
                _check_step(entry, index, step, queues, report)


def _check_step(
    entry: Entry, index: int, step: dict[str, Any], queues: list[str], report: Reporter
) -> None:
    queue = step.get("queue")
    if isinstance(queue, str) and queue not in queues:
        report.error(
            entry.file, entry.path("escalations", index, "queue"), undefined("queue", queue, queues)
        )
    if step.get("on") == "unclaimed":
        if "after" not in step:
            report.error(
                entry.file,
                entry.path("escalations", index),
                "an 'unclaimed' step needs 'after' (how long a case may wait unclaimed)",
            )
        if "clock" in step:
            report.error(
                entry.file,
                entry.path("escalations", index, "clock"),
                "'clock' applies to warning and breach steps, not to 'unclaimed'",
                on_key=True,
            )


def undefined(kind: str, name: str, known: Iterable[str]) -> str:
    """The message for a reference to an undefined name, with a suggestion if one is close."""
    choices = sorted(set(known))
    listed = f"; defined: {', '.join(choices)}" if choices and len(choices) <= 12 else ""
    hint = _hint(name, choices)
    return f"undefined {kind} {name!r}{hint}{listed if not hint else ''}"


def _hint(word: str, choices: Iterable[str]) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""
