"""Caps on a mail's MIME structure, checked on the raw bytes before the `email` package parses.

The standard parser builds every part eagerly and recurses once per nesting level, so a
mail of 50,000 tiny parts costs seconds of CPU and one nested 3,000 deep raises
`RecursionError`. This scan reads only the lines that matter (boundary delimiters and
Content-Type declarations) and estimates the part count and nesting depth from above:
it may overcount, never undercount, so what passes it is safe to parse.
"""

from __future__ import annotations

import re

MAX_MIME_PARTS = 1_000
"""MIME parts a mail may have; real mail has a handful, a few hundred at most."""
MAX_MIME_DEPTH = 50
"""How deep multiparts and attached messages may nest; real mail rarely passes 10."""
MAX_HEADER_FIELD_BYTES = 32_768
"""Longest header field (with its folded lines) kept; the rest of it is cut before parsing.

The standard parser's cost grows faster than linearly with one field's length (a 1 MB
subject took 6 s of CPU, 5 MB minutes), while real fields stay far below this.
"""

_DECLARATION_LINE = rb"[^\r\n]*?(?:boundary|message/(?:rfc822|global))[^\r\n]*"
_BOUNDARY = re.compile(rb"""boundary\s*=\s*(?:"([^"\r\n]*)"|'([^'\r\n]*)'|([^\s;"']+))""", re.I)
_MESSAGE_TYPE = re.compile(rb"message/(?:rfc822|global)\b", re.IGNORECASE)


class MailTooComplexError(ValueError):
    """The mail has more MIME parts, or nests deeper, than the caps allow."""


def bounded_mail(
    raw: bytes,
    max_parts: int = MAX_MIME_PARTS,
    max_depth: int = MAX_MIME_DEPTH,
    max_field_bytes: int = MAX_HEADER_FIELD_BYTES,
) -> bytes:
    """`raw` checked against the MIME caps, with over-long header fields cut.

    Raises MailTooComplexError over the part or depth cap. Header fields are cut in the
    mail's own header section and in each part's (the lines after a boundary delimiter).
    """
    part_starts = check_structure(raw, max_parts, max_depth)
    pieces: list[bytes] = []
    position = 0
    for start in [0, *part_starts]:
        if start < position:
            continue
        pieces.append(raw[position:start])
        block, position = _bounded_header_block(raw, start, max_field_bytes)
        pieces.append(block)
    pieces.append(raw[position:])
    return b"".join(pieces)


def _bounded_header_block(raw: bytes, start: int, max_field_bytes: int) -> tuple[bytes, int]:
    """The header block starting at `start` with each field cut, and where the block ends."""
    kept: list[bytes] = []
    field_bytes = 0
    position = start
    while position < len(raw):
        end = raw.find(b"\n", position)
        end = len(raw) if end < 0 else end + 1
        line = raw[position:end]
        position = end
        if line in (b"\r\n", b"\n"):  # the blank line ending the headers
            kept.append(line)
            break
        continuation = line[:1] in (b" ", b"\t")
        field_bytes = field_bytes + len(line) if continuation else len(line)
        if field_bytes <= max_field_bytes:
            kept.append(line)
        elif not continuation:  # one line longer than the cap: keep its start
            ending = b"\r\n" if line.endswith(b"\r\n") else b"\n"
            kept.append(line[: max_field_bytes - len(ending)] + ending)
    return b"".join(kept), position


def check_structure(
    raw: bytes, max_parts: int = MAX_MIME_PARTS, max_depth: int = MAX_MIME_DEPTH
) -> list[int]:
    """Raise MailTooComplexError if `raw` may have more than `max_parts` or nest too deep.

    A stack follows the nesting: a declared boundary or an attached message opens a level;
    a delimiter line of an open boundary closes every level opened inside it. Returns where
    each part's header block starts (just after its delimiter line).
    """
    declared = [_boundary(found) for found in _BOUNDARY.finditer(raw)]
    if len(declared) > max_parts:  # every declared boundary is a multipart part
        raise MailTooComplexError(f"more than {max_parts} MIME parts")
    stack: list[bytes | None] = []  # a boundary, or None for an attached message
    open_boundaries: dict[bytes, int] = {}
    part_starts: list[int] = []
    parts = 1
    for match in _interesting_lines(set(declared)).finditer(raw):
        line = match.group(0).rstrip()
        if line.startswith(b"--"):
            closing = line.endswith(b"--") and open_boundaries.get(line[2:-2], 0) > 0
            name = line[2:-2] if closing else line[2:]
            if open_boundaries.get(name, 0) > 0:
                while stack and stack[-1] != name:
                    _pop(stack, open_boundaries)
                if closing:
                    _pop(stack, open_boundaries)
                else:
                    parts += 1
                    if parts > max_parts:
                        raise MailTooComplexError(f"more than {max_parts} MIME parts")
                    newline = raw.find(b"\n", match.end())
                    part_starts.append(len(raw) if newline < 0 else newline + 1)
                continue
        for found in _BOUNDARY.finditer(line):
            boundary = _boundary(found)
            stack.append(boundary)
            open_boundaries[boundary] = open_boundaries.get(boundary, 0) + 1
        if _MESSAGE_TYPE.search(line):
            stack.append(None)
            parts += 1
        if len(stack) > max_depth:
            raise MailTooComplexError(f"MIME parts nested more than {max_depth} deep")
        if parts > max_parts:
            raise MailTooComplexError(f"more than {max_parts} MIME parts")
    return part_starts


def _pop(stack: list[bytes | None], open_boundaries: dict[bytes, int]) -> None:
    top = stack.pop()
    if top is not None:
        open_boundaries[top] -= 1


def _boundary(found: re.Match[bytes]) -> bytes:
    return next(group for group in found.groups() if group is not None)


def _interesting_lines(boundaries: set[bytes]) -> re.Pattern[bytes]:
    """Lines that may open or close a level: delimiters of declared boundaries, declarations.

    Matching delimiters only of declared boundaries keeps the Python loop to a few lines per
    part, whatever the mail holds (a line of `--` in a body is not one).
    """
    alternatives = [_DECLARATION_LINE]
    if boundaries:
        names = b"|".join(re.escape(b) for b in sorted(boundaries, key=len, reverse=True))
        alternatives.insert(0, rb"--(?:" + names + rb")(?:--)?[ \t]*(?=\r?\n|\Z)")
    return re.compile(rb"^(?:" + b"|".join(alternatives) + rb")", re.IGNORECASE | re.MULTILINE)
