"""Text from customers and agents made safe for mail and HTTP headers.

Subjects, addresses, message ids and action ids reach the reply service from messages and
actions that anyone may have written. A line break in a header value would start a new
header (a `Bcc:` of the sender's choosing) or the body; Python's `email` refuses such
values with `ValueError`, which used to crash the service on every restart. Everything
that goes into a header passes through here first.
"""

from __future__ import annotations

import hashlib
import re
from email.policy import default as mail_policy
from urllib.parse import quote

from connectors.outbound._model import DeliveryError

# every character str.splitlines() breaks on, plus the other C0 controls and DEL
_CONTROL = re.compile(r"[\x00-\x1f\x7f\x85\u2028\u2029]")
_SPACES = re.compile(r"\s+")
_ADDRESS = re.compile(r"^[^@\s<>(),;:\"\[\]\\]+@[^@\s<>(),;:\"\[\]\\]+\.[^@\s<>(),;:\"\[\]\\]+$")
_MESSAGE_ID = re.compile(r"^<?([!#-;=?-~]+@[!#-;=?-~]+)>?$")  # printable, no spaces, < or >
_ID_PART = re.compile(r"^[A-Za-z0-9._+-]{1,100}$")


def one_line(text: str) -> str:
    """`text` as one header line: every line break and control character becomes a space."""
    return _SPACES.sub(" ", _CONTROL.sub(" ", text)).strip()


def single_address(recipient: str | None) -> str:
    """The one address a reply goes to, or a permanent DeliveryError.

    A recipient that holds two addresses (`a@x, b@y`), a line break or no address at all is
    refused: the reply must reach the customer who wrote, and nobody else.
    """
    if not recipient or not recipient.strip():
        raise DeliveryError("no_recipient", "the case has no customer address", permanent=True)
    if _CONTROL.search(recipient):
        raise DeliveryError("invalid_recipient", "the address holds a line break", True)
    # the standard library's RFC 5322 parser (not `getaddresses`, which misreads some lists)
    parsed = mail_policy.header_factory("To", recipient)
    addresses = parsed.addresses
    if parsed.defects or len(addresses) != 1 or not _ADDRESS.match(addresses[0].addr_spec):
        raise DeliveryError("invalid_recipient", f"not one address: {recipient[:200]!r}", True)
    address: str = addresses[0].addr_spec
    return address


def message_id(reference: str | None) -> str | None:
    """`<id@host>` for a real Message-ID, None for anything else (hashes, line breaks, junk)."""
    if not reference:
        return None
    match = _MESSAGE_ID.match(reference.strip())
    return f"<{match.group(1)}>" if match else None


def id_part(text: str) -> str:
    """`text` if it is safe inside a Message-ID we make, else a stable hash of it."""
    if _ID_PART.match(text):
        return text
    return "h" + hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:32]


def header_token(text: str) -> str:
    """`text` as an HTTP header value: printable ASCII kept, everything else percent-encoded."""
    return quote(text, safe="!#$&'()*+,-./:;=?@[]^_`{|}~")
