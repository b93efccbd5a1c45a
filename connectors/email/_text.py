"""Plain text out of mail bodies: HTML converted to text, quoted replies and signatures cut."""

from __future__ import annotations

import re
from html.parser import HTMLParser

_BLOCK_TAGS = frozenset(
    {"p", "div", "br", "tr", "li", "h1", "h2", "h3", "h4", "h5", "h6", "table", "blockquote"}
    | {"ul", "ol", "pre", "hr", "section", "article", "header", "footer"}
)
_SKIPPED_TAGS = frozenset({"script", "style", "head", "title", "template"})


class _TextExtractor(HTMLParser):
    """Collects visible text, with a line break for every block-level element."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skipping = 0
        self._quote_depth = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _SKIPPED_TAGS:
            self._skipping += 1
        elif tag == "li":
            self.parts.append("\n- ")
        elif tag == "blockquote":
            self._quote_depth += 1
            self.parts.append("\n")
        elif tag in _BLOCK_TAGS:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in _SKIPPED_TAGS:
            self._skipping = max(0, self._skipping - 1)
        elif tag == "blockquote":
            self._quote_depth = max(0, self._quote_depth - 1)
            self.parts.append("\n")
        elif tag in _BLOCK_TAGS:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if self._skipping:
            return
        text = re.sub(r"\s+", " ", data)
        if self._quote_depth:
            # keep quoted HTML recognisable as a quote, so reply stripping can cut it
            text = text.replace("\n", "\n> ")
            if not self.parts or self.parts[-1].endswith("\n"):
                text = "> " + text.lstrip()
        self.parts.append(text)


def html_to_text(html: str) -> str:
    """Visible text of an HTML document: scripts and styles dropped, blocks on their own lines."""
    extractor = _TextExtractor()
    extractor.feed(html)
    extractor.close()
    lines = [line.strip() for line in "".join(extractor.parts).splitlines()]
    text = "\n".join(lines)
    return re.sub(r"\n{3,}", "\n\n", text).strip()


_REPLY_HEADERS = [
    # "On Tue, 3 Nov 2026 at 10:00, Ann <ann@example.com> wrote:" (may wrap onto two lines)
    re.compile(r"^On\b.{0,300}\bwrote:\s*$", re.IGNORECASE | re.DOTALL),
    re.compile(r"^Am\b.{0,300}\bschrieb.{0,80}:\s*$", re.IGNORECASE | re.DOTALL),
    re.compile(r"^Le\b.{0,300}\ba écrit\s*:\s*$", re.IGNORECASE | re.DOTALL),
    re.compile(r"^El\b.{0,300}\bescribió:\s*$", re.IGNORECASE | re.DOTALL),
    re.compile(
        r"^-{2,}\s*(Original Message|Ursprüngliche Nachricht|Forwarded message)\s*-{2,}",
        re.IGNORECASE,
    ),
    re.compile(r"^_{10,}\s*$"),  # Outlook's rule above the quoted header block
]
_SIGNATURE_STARTS = [
    re.compile(r"^-- ?$"),  # RFC 3676 signature delimiter
    re.compile(r"^(Sent from my|Sent from Mail for|Get Outlook for)\b", re.IGNORECASE),
    re.compile(r"^Von meinem .* gesendet", re.IGNORECASE),
]


def strip_reply(text: str) -> str:
    """The new part of a reply: cut at the quoted original or the signature, whichever is first.

    If cutting would leave nothing (a mail that is all quote), the text is returned whole.
    """
    lines = text.replace("\r\n", "\n").split("\n")
    cut = len(lines)
    for index, line in enumerate(lines):
        stripped = line.strip()
        two_lines = f"{stripped} {lines[index + 1].strip()}" if index + 1 < len(lines) else ""
        if stripped.startswith(">"):
            cut = index
            # an attribution line right above the quote belongs to it
            if index > 0 and lines[index - 1].rstrip().endswith(":"):
                cut = index - 1
            break
        if any(p.match(stripped) for p in _REPLY_HEADERS) or (
            two_lines and any(p.match(two_lines) for p in _REPLY_HEADERS[:4])
        ):
            cut = index
            break
        if _starts_outlook_header_block(lines, index):
            cut = index
            break
        if any(p.match(stripped) for p in _SIGNATURE_STARTS):
            cut = index
            break
    new_part = "\n".join(lines[:cut]).strip()
    return new_part or text.strip()


def _starts_outlook_header_block(lines: list[str], index: int) -> bool:
    """`From: ...` followed within three lines by `Sent:`/`Date:`: Outlook's quoted header."""
    if not re.match(r"^\*?From:\*?\s", lines[index].strip(), re.IGNORECASE):
        return False
    following = lines[index + 1 : index + 4]
    return any(re.match(r"^\*?(Sent|Date|Gesendet):", s.strip(), re.IGNORECASE) for s in following)
