"""Acknowledgement templates: checked when the rules load, rendered in a sandbox by stage C.

The `acknowledgements:` section maps names to templates (`subject`, `text`, optional
`variants` by channel and language, an optional `update`, `public`). Each is a Jinja
template rendered in `jinja2.sandbox.SandboxedEnvironment` with `StrictUndefined`, and only
the variables in `VARIABLES` exist: a template naming anything else is an error at
FILE:LINE:COL when the rules load, so a rule set in use never fails to render.
"""

from __future__ import annotations

import difflib
import functools
import math
import zoneinfo
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from jinja2 import StrictUndefined, Template, TemplateError, TemplateSyntaxError, nodes
from jinja2.exceptions import SecurityError
from jinja2.runtime import Context
from jinja2.sandbox import SandboxedEnvironment

from rules._cross_checks import Declared
from rules._decision import due_at_text
from rules._problems import Reporter, RuleProblem
from rules._yaml import Positions
from schemas import ClockName, InboundMessage

__all__ = [
    "DEFAULT_TEMPLATE",
    "VARIABLES",
    "AcknowledgementTemplate",
    "RenderedAcknowledgement",
    "acknowledgement_variables",
    "compile_acknowledgements",
    "human_time",
    "is_public",
    "local_zone",
]

DEFAULT_TEMPLATE = "default"
"""The template used where no route chooses one."""

_PROMISED = ClockName.FIRST_RESPONSE.value
"""The clock the variables are named after (`sla.first_response`, `promise.first_response`)."""

VARIABLES: Mapping[str, Any] = {
    "case": {"reference": None, "queue": None, "priority": None, "channel": None},
    "sla": {_PROMISED: {"due_at": None}},
    "promise": {_PROMISED: None, f"{_PROMISED}_local": None, "timezone": None},
    "links": {"escalate": None},
}
"""Every variable a template may use (None marks a text value)."""

_TEXT_METHODS = frozenset(name for name in dir(str) if not name.startswith("_"))


MAX_RENDERED_CHARS = 20_000
"""Longest subject or text an acknowledgement renders to; a longer one is refused."""


class _BoundedSandbox(SandboxedEnvironment):
    """The sandbox, also refusing `*` and `**` that would build huge values (a memory bomb)."""

    intercepted_binops = frozenset({"*", "**"})

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        """Multiply or raise to a power only while the result stays small."""
        if operator == "**" and _number(left) and _number(right) and abs(right) > 64:
            raise SecurityError("exponent too large in an acknowledgement template")
        if operator == "*":
            for value, times in ((left, right), (right, left)):
                repeated = isinstance(value, str | list | tuple) and isinstance(times, int)
                if repeated and len(value) * times > MAX_RENDERED_CHARS:
                    raise SecurityError("repetition too large in an acknowledgement template")
        return super().call_binop(context, operator, left, right)


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _environment() -> SandboxedEnvironment:
    # plain text (mail text/plain, SMS, chat): nothing to escape, and no customer text in it
    return _BoundedSandbox(undefined=StrictUndefined, autoescape=False)


_ENV = _environment()
_GLOBALS = frozenset({"range", "dict", "namespace", "cycler", "joiner"})
"""Jinja's own globals a template may use (not `lipsum`: text of any length)."""
_ENV.globals.pop("lipsum", None)


def _rendered(template: Template, variables: Mapping[str, Any]) -> str:
    text = template.render(variables)
    if len(text) > MAX_RENDERED_CHARS:
        raise SecurityError(f"rendered to more than {MAX_RENDERED_CHARS} characters")
    return text


@dataclass(frozen=True)
class _Pair:
    subject: Template | None
    text: Template


@dataclass(frozen=True)
class _Variant:
    channels: frozenset[str] | None
    languages: frozenset[str] | None
    pair: _Pair

    def fits(self, channel: str, language: str | None) -> bool:
        if self.channels is not None and channel not in self.channels:
            return False
        if self.languages is None:
            return True
        tag = (language or "").lower()  # `de-AT` fits a variant for `de`
        return tag in self.languages or tag.split("-")[0] in self.languages


@dataclass(frozen=True)
class RenderedAcknowledgement:
    """One acknowledgement as it goes out: the template's name, subject and text."""

    template: str
    subject: str | None
    text: str


@dataclass(frozen=True)
class AcknowledgementTemplate:
    """A compiled acknowledgement: its base text, its variants, its update and `public`."""

    name: str
    base: _Pair
    variants: tuple[_Variant, ...] = ()
    update: _Pair | None = None
    public: bool = False

    def render(
        self, variables: Mapping[str, Any], channel: str, language: str | None, update: bool
    ) -> RenderedAcknowledgement | None:
        """Render for a channel and language; None for an update the template does not have.

        Raises `jinja2.TemplateError` only for what a check cannot see (the sandbox refusing).
        """
        if update:
            pair = self.update
            if pair is None:
                return None
        else:
            pair = next((v.pair for v in self.variants if v.fits(channel, language)), self.base)
        subject = pair.subject or self.base.subject
        return RenderedAcknowledgement(
            template=self.name,
            subject=_rendered(subject, variables).strip() if subject is not None else None,
            text=_rendered(pair.text, variables),
        )


def acknowledgement_variables(
    case_id: str,
    due: datetime,
    timezone: str,
    escalate_link: str,
    queue: str = "",
    priority: str = "",
    channel: str = "",
) -> dict[str, Any]:
    """The variables of a template for a case whose `first_response` is due at `due`."""
    return {
        "case": {"reference": case_id, "queue": queue, "priority": priority, "channel": channel},
        "sla": {_PROMISED: {"due_at": due_at_text(due)}},
        "promise": {
            _PROMISED: human_time(due, timezone),
            f"{_PROMISED}_local": human_time(due, timezone, numeric=True),
            "timezone": timezone,
        },
        "links": {"escalate": escalate_link},
    }


def human_time(due: datetime, timezone: str, numeric: bool = False) -> str:
    """`Monday 4 January, 10:00 CET` (or `2027-01-04 10:00 CET`): `due` in `timezone`.

    Rounded up to the minute, so the stated time is never before the real due time.
    """
    return _minute_text(math.ceil(due.timestamp() / 60), timezone, numeric)


@functools.lru_cache(maxsize=4096)
def _minute_text(minute: int, timezone: str, numeric: bool) -> str:
    """`human_time` of the minute `minute` (since the epoch): cases share due minutes."""
    rounded = datetime.fromtimestamp(minute * 60, UTC)
    try:
        zone: zoneinfo.ZoneInfo | Any = zoneinfo.ZoneInfo(timezone)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        zone = UTC
    local = rounded.astimezone(zone)
    if numeric:
        return local.strftime("%Y-%m-%d %H:%M %Z")
    return f"{local:%A} {local.day} {local:%B}, {local:%H:%M %Z}"


def compile_acknowledgements(
    declared: Declared, report: Reporter, sources: Mapping[str, str]
) -> dict[str, AcknowledgementTemplate]:
    """Check and compile every acknowledgement; problems go to `report` with positions."""
    compiled: dict[str, AcknowledgementTemplate] = {}
    for name, entry in declared.sections["acknowledgements"].items():
        if not isinstance(entry.raw, dict):
            continue
        checker = _Checker(report, entry.file, sources.get(entry.file, ""))
        path = ("acknowledgements", name)
        base = checker.pair(entry.raw, path)
        variants: list[_Variant] = []
        raw_variants = entry.raw.get("variants")
        for index, raw in enumerate(raw_variants if isinstance(raw_variants, list) else []):
            if isinstance(raw, dict):
                pair = checker.pair(raw, (*path, "variants", index))
                if pair is not None:
                    variants.append(
                        _Variant(_names(raw.get("channel")), _names(raw.get("language")), pair)
                    )
        update = None
        if isinstance(entry.raw.get("update"), dict):
            update = checker.pair(entry.raw["update"], (*path, "update"))
        if base is not None and checker.ok:
            compiled[name] = AcknowledgementTemplate(
                name=name,
                base=base,
                variants=tuple(variants),
                update=update,
                public=entry.raw.get("public") is True,
            )
    return compiled


def _names(value: Any) -> frozenset[str] | None:
    if isinstance(value, str):
        return frozenset({value.lower()})
    if isinstance(value, list):
        return frozenset(str(item).lower() for item in value)
    return None


class _Checker:
    """Compiles the templates of one acknowledgement, reporting each problem where it is."""

    def __init__(self, report: Reporter, file: str, source: str) -> None:
        self.report = report
        self.file = file
        self.lines = source.splitlines()
        self.ok = True

    def pair(self, raw: Mapping[str, Any], path: tuple[str | int, ...]) -> _Pair | None:
        subject = self.template(raw.get("subject"), (*path, "subject"))
        text = self.template(raw.get("text"), (*path, "text"))
        if text is None:
            return None
        return _Pair(subject, text)

    def template(self, source: Any, path: tuple[str | int, ...]) -> Template | None:
        if not isinstance(source, str):
            return None  # missing or mistyped: the schema pass reported it
        try:
            tree = _ENV.parse(source)
        except TemplateSyntaxError as exc:
            self._error(path, exc.lineno or 1, "", f"template syntax error: {exc.message}")
            return None
        found = False
        for line, needle, message in _unknown_variables(tree):
            self._error(path, line, needle, message)
            found = True
        if found:
            return None
        try:
            return _ENV.from_string(source)
        except TemplateError as exc:  # an unknown filter or test, found when compiling
            line = getattr(exc, "lineno", None) or 1
            self._error(path, line, "", f"template error: {exc.message or exc}")
            return None

    def _error(self, path: tuple[str | int, ...], line: int, needle: str, message: str) -> None:
        self.ok = False
        positions = self.report.positions.get(self.file) or Positions()
        start_line, start_col = positions.of_value(path)
        where_line, where_col = _position(self.lines, start_line, start_col, line, needle)
        self.report.problems.append(
            RuleProblem(self.file, where_line + 1, where_col + 1, message, "error")
        )


def _position(
    lines: Sequence[str], value_line: int, value_col: int, template_line: int, needle: str
) -> tuple[int, int]:
    """Where line `template_line` of a template (and `needle` on it) sits in the YAML file.

    A block scalar (`|` or `>`) starts its text on the next line; a quoted or plain scalar on
    its own line. Folded text may move lines, so the needle is also looked for further on.
    """
    first = lines[value_line] if value_line < len(lines) else ""
    block = first[value_col : value_col + 1] in ("|", ">")
    guess = value_line + template_line - (0 if block else 1)
    candidates = [guess, *range(value_line, min(len(lines), value_line + 500))]
    for line in candidates:
        if 0 <= line < len(lines) and needle and needle in lines[line]:
            if line == value_line and not block:
                found = lines[line].find(needle, value_col)
                if found >= 0:
                    return line, found
                continue
            return line, lines[line].find(needle)
    if block and 0 <= guess < len(lines):
        text = lines[guess]
        return guess, len(text) - len(text.lstrip())
    return value_line, value_col


def _unknown_variables(tree: nodes.Template) -> Iterator[tuple[int, str, str]]:
    """(line, the text as written, message) for each variable a template may not use."""
    local = {node.name for node in tree.find_all(nodes.Name) if node.ctx in ("store", "param")}
    yield from _visit(tree, local)


def _visit(node: nodes.Node, local: set[str]) -> Iterator[tuple[int, str, str]]:
    chain = _chain(node)
    if chain is not None:
        if chain[0] not in local:
            problem = _check_chain(chain)
            if problem is not None:
                yield node.lineno, ".".join(chain[: problem[0] + 1]), problem[1]
        return
    for child in node.iter_child_nodes():
        yield from _visit(child, local)


def _chain(node: nodes.Node) -> list[str] | None:
    """`case.reference` as ["case", "reference"]; None for anything but a variable's path."""
    if isinstance(node, nodes.Name) and node.ctx == "load":
        return [node.name]
    if isinstance(node, nodes.Getattr):
        inner = _chain(node.node)
        return None if inner is None else [*inner, node.attr]
    if (
        isinstance(node, nodes.Getitem)
        and isinstance(node.arg, nodes.Const)
        and isinstance(node.arg.value, str)
    ):
        inner = _chain(node.node)
        return None if inner is None else [*inner, node.arg.value]
    return None


def _check_chain(chain: Sequence[str]) -> tuple[int, str] | None:
    """(index of the first wrong part, message), or None when the path is a known variable."""
    if chain[0] in _GLOBALS:
        return None
    level: Mapping[str, Any] | None = VARIABLES
    for index, part in enumerate(chain):
        if level is None:  # a text value: its methods (upper, replace, ...) are allowed
            if part in _TEXT_METHODS:
                return None
            return index, f"{'.'.join(chain[: index + 1])!r}: a text has no {part!r}"
        if part not in level:
            known = sorted(level)
            close = difflib.get_close_matches(part, known, n=1, cutoff=0.6)
            prefix = ".".join(chain[:index])
            choices = [f"{prefix}.{k}" if prefix else k for k in known]
            hint = f" (did you mean {choices[known.index(close[0])]!r}?)" if close else ""
            listed = "" if hint else f"; known: {', '.join(choices)}"
            return index, f"unknown variable {'.'.join(chain[: index + 1])!r}{hint}{listed}"
        level = level[part]
    return None


def local_zone(timezone: str | None, fallback: str | None) -> str:
    """The time zone a promise is stated in: the customer's if valid, else `fallback`, else UTC."""
    for zone in (timezone, fallback):
        if isinstance(zone, str) and zone:
            try:
                zoneinfo.ZoneInfo(zone)
            except (zoneinfo.ZoneInfoNotFoundError, ValueError):
                continue
            return zone
    return "UTC"


PUBLIC_KINDS = frozenset({"tweet", "topic", "post", "comment", "mention", "reply"})
"""`metadata.kind` of messages everybody can read (a direct message is not one of them)."""

SOCIAL_CHANNELS = frozenset({"twitter", "x", "facebook", "instagram"})
"""Channels whose messages count as public unless they say they are direct messages."""


def is_public(message: InboundMessage) -> bool:
    """Whether the customer wrote where everybody can read it: a forum post, a tweet, a feed.

    A social channel's message that does not say what it is (`metadata.kind`) counts as public:
    answering a public post by mistake is worse than not acknowledging a direct message.
    """
    kind = message.metadata.get("kind")
    if message.channel == "community":
        return True
    if isinstance(kind, str) and (kind in PUBLIC_KINDS or kind.startswith("feed_")):
        return True
    return message.channel in SOCIAL_CHANNELS and kind != "direct_message"
