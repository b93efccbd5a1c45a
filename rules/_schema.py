"""The rule file's shape as pydantic models: the single source of the JSON Schema.

These models check structure and local values (types, durations, time zones,
priorities). Cross-references, conditions and hours are checked by `_check`, which
knows every file of the rule set and where each node sits.
"""

from __future__ import annotations

import datetime as dt
import difflib
import re
import zoneinfo
from functools import cache
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    WithJsonSchema,
    create_model,
)

from rules._pager_schema import PagerSpec
from rules._problems import show_value
from rules.calendar import parse_duration
from schemas import CLOCK_NAMES, PRIORITY_ORDER

PRIORITY_NAMES = tuple(p.value for p in PRIORITY_ORDER)
NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"
QUEUE_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,63}$"
"""Queue names: what `schemas.Topics.queue` accepts (no `.`), up to 64 characters."""
ALWAYS = "24x7"
"""Shorthand calendar: open every second of every day, in UTC."""


def check_duration(value: object) -> str:
    """Accept a duration such as `30m`, `4h` or `2d`; raise `ValueError` otherwise."""
    if not isinstance(value, str):
        raise ValueError(f"expected a duration such as 30m, 4h or 2d, not {show_value(value)}")
    parse_duration(value)
    return value


def check_priority_setting(value: object) -> str:
    """Normalise a route's priority: a name (`high`) or a relative step (`+1`, `-2`)."""
    if isinstance(value, bool):
        raise ValueError(f"expected a priority ({', '.join(PRIORITY_NAMES)}) or +1/-1")
    if isinstance(value, int):
        return f"{value:+d}"
    if isinstance(value, str):
        text = value.strip().lower()
        if text in PRIORITY_NAMES:
            return text
        if re.fullmatch(r"[+-]\d{1,2}", text):
            return f"{int(text):+d}"
        hint = _did_you_mean(text, PRIORITY_NAMES)
        raise ValueError(
            f"unknown priority {value!r}: use {', '.join(PRIORITY_NAMES)} or +1/-1{hint}"
        )
    raise ValueError(f"expected a priority ({', '.join(PRIORITY_NAMES)}) or +1/-1")


def check_percent(value: object) -> float:
    """Read `75%` or `0.75` as the fraction 0.75; it must lie in (0, 1]."""
    fraction: float | None = None
    if isinstance(value, str) and re.fullmatch(r"\s*\d{1,3}(\.\d+)?\s*%\s*", value):
        fraction = float(value.strip().rstrip("%")) / 100
    elif isinstance(value, int | float) and not isinstance(value, bool):
        fraction = float(value)
    if fraction is None or not 0 < fraction <= 1:
        raise ValueError(
            f"expected a share of the target such as 75% or 0.75, not {show_value(value)}"
        )
    return fraction


def check_date(value: object) -> dt.date:
    """Accept a calendar date, written `2026-12-24`."""
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    if isinstance(value, str):
        try:
            return dt.date.fromisoformat(value.strip())
        except ValueError:
            pass
    raise ValueError(f"expected a date such as 2026-12-24, not {show_value(value)}")


@cache
def _zones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


def check_timezone(value: str) -> str:
    """Accept an IANA time zone name such as `Europe/Berlin`."""
    if value in _zones() or value == "UTC":
        return value
    raise ValueError(f"unknown time zone {value!r}{_did_you_mean(value, sorted(_zones()))}")


def _did_you_mean(word: str, choices: Any) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


DurationText = Annotated[
    str,
    BeforeValidator(check_duration),
    WithJsonSchema(
        {"type": "string", "pattern": r"^\s*(\d+[wdhmsWDHMS])+\s*$", "examples": ["30m", "2d"]}
    ),
]
PrioritySetting = Annotated[
    str,
    BeforeValidator(check_priority_setting),
    WithJsonSchema(
        {
            "anyOf": [
                {"enum": list(PRIORITY_NAMES)},
                {"type": "integer", "minimum": -3, "maximum": 3},
                {"type": "string", "pattern": r"^[+-][0-3]$"},
            ],
            "description": "A priority, or a step from the inherited one (+1 = more urgent).",
        }
    ),
]
Percent = Annotated[
    float,
    BeforeValidator(check_percent),
    WithJsonSchema(
        {"anyOf": [{"type": "string", "pattern": r"^\d{1,3}(\.\d+)?%$"}, {"type": "number"}]}
    ),
]
HolidayDate = Annotated[
    dt.date, BeforeValidator(check_date), WithJsonSchema({"type": "string", "format": "date"})
]
HoursSpec = Annotated[
    Any,
    WithJsonSchema(
        {
            "description": 'Open hours: "24x7" or per day / day range, e.g. '
            '{"mon-fri": ["08:00-18:00"], "sat": "10:00-14:00"}.',
            "anyOf": [
                {"const": "24x7"},
                {
                    "type": "object",
                    "additionalProperties": {
                        "anyOf": [
                            {"type": "string"},
                            {"type": "array", "items": {"type": "string"}},
                        ]
                    },
                },
            ],
        }
    ),
]
TimeZoneName = Annotated[str, AfterValidator(check_timezone)]
Name = Annotated[str, Field(pattern=NAME_PATTERN)]
QueueName = Annotated[str, Field(pattern=QUEUE_PATTERN)]
Condition = Annotated[
    dict[str, Any],
    WithJsonSchema(
        {
            "type": "object",
            "description": "Conditions, all of which must hold. Keys: a field (channel, text, "
            "subject, language, sender, attachments, sentiment, customer.*, case.*, history.*, "
            "metadata.*) or all_of / any_of / not / during / outside.",
            "properties": {
                "all_of": {"type": "array", "items": {"type": "object"}},
                "any_of": {"type": "array", "items": {"type": "object"}},
                "not": {"type": "object"},
                "during": {"type": "string"},
                "outside": {"type": "string"},
            },
        }
    ),
]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True, populate_by_name=False)


class CalendarSpec(_Section):
    """Open hours in a time zone, minus holidays."""

    timezone: TimeZoneName
    hours: HoursSpec
    holidays: list[HolidayDate] = []
    holidays_file: str | None = Field(
        default=None, description="An iCalendar (.ics) file of holidays, relative to this file."
    )
    description: str | None = None


# One field per clock of the clock table (schemas.SLA_CLOCKS), so a new clock is a new key
# here with nothing written in this file. mypy sees the common base and a plain string.
if TYPE_CHECKING:
    SlaTargets = _Section
    ClockNameText = str
else:
    SlaTargets = create_model(
        "SlaTargets",
        __base__=_Section,
        __module__=__name__,
        __doc__="How long each clock may run at one priority; a missing clock has no target.",
        **dict.fromkeys(CLOCK_NAMES, (DurationText | None, None)),
    )
    ClockNameText = Literal[CLOCK_NAMES]


class SlaPolicySpec(_Section):
    """Targets per priority, counted in a calendar's open time."""

    calendar: str | None = Field(default=None, description="A calendar name; default 24x7.")
    targets: dict[Literal["urgent", "high", "normal", "low"], SlaTargets]
    warn_at: Percent = 0.75
    pause_when: list[str] = []
    description: str | None = None


class EscalationStep(_Section):
    """One step of an escalation policy: what happens on a warning, breach or unclaimed case."""

    on: Literal["warning", "breach", "unclaimed"]
    clock: ClockNameText | None = None
    after: DurationText | None = None
    queue: str | None = None
    priority: PrioritySetting | None = None
    tags: list[str] = []
    notify: list[str] = []
    repeat: Annotated[int, Field(ge=0, le=100)] = 0
    page: Name | None = Field(default=None, description="A pager (target or chain) to page.")
    until: Literal["acknowledged"] | None = Field(
        default=None, description="Page again every `every` until someone acknowledges."
    )
    every: DurationText | None = Field(
        default=None, description="How often an `until: acknowledged` page repeats (event time)."
    )
    max_pages: Annotated[int, Field(ge=1, le=1000)] = Field(
        default=50, description="The most pages an `until: acknowledged` step sends."
    )


class AcknowledgementText(_Section):
    """A subject and a text, each a Jinja template (see docs/rules.md, "Acknowledgements")."""

    subject: str | None = None
    text: str


class AcknowledgementVariant(_Section):
    """A variant of an acknowledgement for some channels and/or languages (first match wins)."""

    channel: str | list[str] | None = None
    language: str | list[str] | None = None
    subject: str | None = None
    text: str


class AcknowledgementSpec(_Section):
    """What the customer is told when their case opens or reopens: the real promise.

    `variants` are tried in order (by the customer message's channel and language); `update`
    is sent when an escalation or a priority change moves the promise earlier; `public: true`
    lets it answer on public channels (tweets, forum posts), which get none otherwise.
    """

    subject: str
    text: str
    public: bool = False
    variants: list[AcknowledgementVariant] = []
    update: AcknowledgementText | None = None
    description: str | None = None


class QueueSpec(_Section):
    """An agent queue; routed cases land on the topic `queue.<name>`."""

    skills: list[str] = []
    description: str | None = None


class RouteSpec(_Section):
    """A node of the routes tree: conditions, settings, and child routes."""

    name: Name | None = None
    description: str | None = None
    when: Condition | None = None
    queue: str | None = None
    priority: PrioritySetting | None = None
    sla: str | None = None
    escalation: str | None = None
    acknowledgement: str | None = Field(
        default=None, description="An acknowledgement template name (inherited like `sla`)."
    )
    tags: list[str] = []
    continue_: bool = Field(default=False, alias="continue")
    routes: list[RouteSpec] = []


class RuleFile(_Section):
    """One rule file; the files of a folder merge into one rule set."""

    model_config = ConfigDict(
        title="Escalator rule file", json_schema_extra={"$id": "escalator-rules-v1"}
    )

    version: Literal[1] = 1
    description: str | None = None
    calendars: dict[Name, CalendarSpec | Literal["24x7"]] = {}
    sla: dict[Name, SlaPolicySpec] = {}
    escalations: dict[Name, list[EscalationStep]] = {}
    pagers: dict[Name, PagerSpec] = {}
    queues: dict[QueueName, QueueSpec | None] = {}
    routes: RouteSpec | None = None
    acknowledgements: dict[Name, AcknowledgementSpec] = {}


SECTION_MODELS: dict[str, type[BaseModel]] = {
    "file": RuleFile,
    "calendar": CalendarSpec,
    "SLA policy": SlaPolicySpec,
    "SLA targets": SlaTargets,
    "escalation step": EscalationStep,
    "pager": PagerSpec,
    "queue": QueueSpec,
    "route": RouteSpec,
    "acknowledgement": AcknowledgementSpec,
    "acknowledgement variant": AcknowledgementVariant,
    "acknowledgement update": AcknowledgementText,
}


def model_at(path: tuple[str | int, ...]) -> str | None:
    """Which kind of mapping sits at `path` in a rule file (a key of `SECTION_MODELS`)."""
    if not path:
        return "file"
    head, rest = path[0], path[1:]
    if head == "calendars" and len(rest) == 1:
        return "calendar"
    if head == "sla" and len(rest) == 1:
        return "SLA policy"
    if head == "sla" and len(rest) == 3 and rest[1] == "targets":
        return "SLA targets"
    if head == "escalations" and len(rest) == 2:
        return "escalation step"
    if head == "queues" and len(rest) == 1:
        return "queue"
    if head == "pagers" and len(rest) == 1:
        return "pager"
    if head == "acknowledgements" and len(rest) == 1:
        return "acknowledgement"
    if head == "acknowledgements" and len(rest) == 3 and rest[1] == "variants":
        return "acknowledgement variant"
    if head == "acknowledgements" and len(rest) == 2 and rest[1] == "update":
        return "acknowledgement update"
    if (
        head == "routes"
        and len(rest) % 2 == 0
        and all(isinstance(p, int) if i % 2 else p == "routes" for i, p in enumerate(rest))
    ):
        return "route"
    return None


def allowed_keys(kind: str) -> list[str]:
    """The keys a mapping of this kind accepts, as written in YAML."""
    model = SECTION_MODELS[kind]
    return [info.alias or name for name, info in model.model_fields.items()]


def rule_file_json_schema() -> dict[str, Any]:
    """JSON Schema of a rule file, for editors (yaml-language-server) and `rules schema`."""
    schema = RuleFile.model_json_schema(by_alias=True)
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    return schema
