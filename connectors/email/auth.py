"""SPF, DKIM and DMARC for inbound mail, with every DNS question asked through `MailDns`.

SPF is evaluated by `pyspf`, every DKIM signature by `dkimpy`, and the DMARC record is
parsed and judged (alignment, policy) by `dmarc`, with organisational domains from the
public suffix list of `publicsuffix2` (a TLD it does not list is one label, the list's
default rule, so `a.newtld` and `b.newtld` never align). None of them talks to DNS
directly here: `MailDns` answers, so tests give a fixed set of answers.

The outcome is evidence on the message (`metadata.auth`), and when DMARC passes for the
domain of the address the customer was taken from, that address counts as verified
(`customer.verified = ["email"]`), which is what lets identity resolution believe it.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any, Protocol

import dkim  # type: ignore[import-untyped]
import dmarc  # type: ignore[import-untyped]
import dns.exception
import dns.resolver
import spf  # type: ignore[import-untyped]
from publicsuffix2 import PublicSuffixList  # type: ignore[import-untyped]

from connectors.email.parse import ParsedEmail

log = logging.getLogger(__name__)

MAX_DKIM_SIGNATURES = 5
"""Signatures checked per mail; each costs DNS questions, and real mail carries one or two."""


class DnsTemporaryError(Exception):
    """DNS did not answer (timeout, no server): the result is `temperror`, not a failure."""


class MailDns(Protocol):
    """The DNS questions mail authentication asks. An empty list means no such record."""

    def query(self, name: str, rdtype: str) -> list[str]:
        """Answers for `name` of type A, AAAA, MX ("10 mx.example.com"), PTR or TXT.

        TXT answers are each record's strings joined. Raises DnsTemporaryError when DNS
        cannot answer now.
        """
        ...


class ResolverDns:
    """`MailDns` over dnspython: the system's resolvers, or `nameservers` if given."""

    def __init__(
        self, nameservers: list[str] | None = None, timeout_seconds: float = 5.0, port: int = 53
    ):
        self._resolver = dns.resolver.Resolver(configure=not nameservers)
        if nameservers:
            self._resolver.nameservers = nameservers
        self._resolver.port = port
        self._resolver.lifetime = timeout_seconds

    def query(self, name: str, rdtype: str) -> list[str]:
        """Ask DNS; NXDOMAIN and no-answer are an empty list."""
        try:
            answer = self._resolver.resolve(name, rdtype, raise_on_no_answer=False)
        except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
            return []
        except dns.exception.DNSException as exc:
            raise DnsTemporaryError(f"{rdtype} {name}: {exc}") from exc
        values: list[str] = []
        for record in answer:
            if rdtype == "TXT":
                values.append(b"".join(record.strings).decode("utf-8", "replace"))
            else:
                values.append(record.to_text())
        return values


@dataclass(frozen=True)
class MailAuthentication:
    """What SPF, DKIM and DMARC said about one mail (RFC 8601 result words)."""

    spf: str
    dkim: str
    dmarc: str
    from_domain: str | None
    spf_domain: str | None = None
    dkim_domains: list[str] = field(default_factory=list)
    dmarc_policy: str | None = None

    def as_metadata(self) -> dict[str, Any]:
        """The evidence as it is stored in `metadata.auth`."""
        return {
            "spf": self.spf,
            "dkim": self.dkim,
            "dmarc": self.dmarc,
            "from_domain": self.from_domain,
            "spf_domain": self.spf_domain,
            "dkim_domains": self.dkim_domains,
            "dmarc_policy": self.dmarc_policy,
        }


@dataclass(frozen=True)
class Connection:
    """What the SMTP session knew about the sending server (None when the mail did not come
    over SMTP to us: SPF is then `none`)."""

    ip: str | None = None
    mail_from: str | None = None
    helo: str | None = None


class MailAuthenticator:
    """Evaluates SPF, DKIM and DMARC for raw mail (blocking: run it off the event loop)."""

    def __init__(self, dns_answers: MailDns, timeout_seconds: float = 10.0) -> None:
        self._dns = dns_answers
        self._timeout = timeout_seconds
        """Budget for all DNS questions of one mail; past it every answer is `temperror`."""

    def authenticate(
        self, raw: bytes, from_domain: str | None, connection: Connection | None = None
    ) -> MailAuthentication:
        """Evaluate the mail; `from_domain` is the domain of its RFC 5322 From address."""
        connection = connection or Connection()
        answers = _BudgetedDns(self._dns, time.monotonic() + self._timeout)
        spf_result, spf_domain = self._spf(answers, connection)
        dkim_result, dkim_domains = self._dkim(answers, raw)
        dmarc_result, policy = self._dmarc(
            answers, from_domain, spf_result, spf_domain, dkim_domains
        )
        return MailAuthentication(
            spf=spf_result,
            dkim=dkim_result,
            dmarc=dmarc_result,
            from_domain=from_domain,
            spf_domain=spf_domain,
            dkim_domains=dkim_domains,
            dmarc_policy=policy,
        )

    def _spf(self, answers: MailDns, connection: Connection) -> tuple[str, str | None]:
        if not connection.ip:
            return "none", None
        mail_from = (connection.mail_from or "").strip("<>")
        helo = connection.helo or ""
        query = _SpfQuery(
            answers, connection.ip, mail_from, helo, self._timeout, querytime=self._timeout
        )
        try:
            result, _code, _explanation = query.check()
        except Exception:  # a library fault on hostile input must not lose the mail
            log.exception("mail auth: SPF evaluation failed")
            return "permerror", query.o
        return str(result), query.o

    def _dkim(self, answers: MailDns, raw: bytes) -> tuple[str, list[str]]:
        try:
            verifier = dkim.DKIM(raw, timeout=self._timeout)
        except Exception:  # dkimpy raises on messages it cannot split into headers
            return "permerror", []
        signatures = [h for h, _ in verifier.headers if h.lower() == b"dkim-signature"]
        if not signatures:
            return "none", []
        outcomes: list[str] = []
        passed: list[str] = []
        for index in range(min(len(signatures), MAX_DKIM_SIGNATURES)):
            txt = _DkimTxt(answers)
            try:
                ok = verifier.verify(idx=index, dnsfunc=txt)
            except Exception:  # DKIMException and friends: a broken signature fails
                ok = False
            if txt.timed_out:
                outcomes.append("temperror")
            elif ok:
                domain = verifier.signature_fields.get(b"d", b"").decode("ascii", "replace")
                passed.append(domain.lower())
                outcomes.append("pass")
            else:
                outcomes.append("fail")
        for word in ("pass", "temperror"):
            if word in outcomes:
                return word, passed
        return "fail", passed

    def _dmarc(
        self,
        answers: MailDns,
        from_domain: str | None,
        spf_result: str,
        spf_domain: str | None,
        dkim_domains: list[str],
    ) -> tuple[str, str | None]:
        if not from_domain:
            return "none", None
        try:
            found = _dmarc_record(answers, from_domain)
        except DnsTemporaryError:
            return "temperror", None
        if found is None:
            return "none", None
        record, org_domain = found
        try:
            policy = dmarc.DMARC().parse_record(record, from_domain, org_domain)
        except dmarc.RecordSyntaxError:
            return "permerror", None
        spf_evidence = None
        if spf_domain and spf_result in {r.value for r in dmarc.SPFResult}:
            spf_evidence = dmarc.SPFAuthResult(spf_domain, dmarc.SPFResult(spf_result))
        dkim_evidence = [dmarc.DKIMAuthResult(d, dmarc.DKIMResult.PASS) for d in dkim_domains if d]
        outcome = dmarc.DMARC(publicsuffix=_ORGANISATIONAL_DOMAINS).get_result(
            policy, auth_results=dmarc.AuthResults(spf=spf_evidence, dkim=dkim_evidence or None)
        )
        disposition = policy.sp if org_domain and policy.sp.value else policy.p
        return str(outcome.result.value), disposition.value


def _dmarc_record(answers: MailDns, from_domain: str) -> tuple[str, str | None] | None:
    """RFC 7489 policy discovery: the From domain's record, else its organisational one."""
    record = _one_dmarc_record(answers.query(f"_dmarc.{from_domain}", "TXT"))
    if record is not None:
        return record, None
    org_domain = organisational_domain(from_domain)
    if org_domain == from_domain:
        return None
    record = _one_dmarc_record(answers.query(f"_dmarc.{org_domain}", "TXT"))
    return (record, org_domain) if record is not None else None


def _one_dmarc_record(records: list[str]) -> str | None:
    """The DMARC record among a name's TXT records; none when there are zero or several."""
    found = [r for r in records if r.startswith("v=DMARC1")]
    return found[0] if len(found) == 1 else None


class _OrganisationalDomains:
    """The organisational domain (RFC 7489 3.2) by the public suffix list; `dmarc` asks it."""

    def __init__(self) -> None:
        self._list: Any = None

    def get_public_suffix(self, domain: str) -> str:
        """Named as `dmarc` calls it; returns the organisational domain of `domain`."""
        if self._list is None:
            self._list = PublicSuffixList()
        domain = domain.lower().rstrip(".")
        suffix = self._list.get_tld(domain, strict=True) or domain.rpartition(".")[2]
        if domain == suffix or not domain.endswith("." + suffix):
            return domain
        labels = domain[: -len(suffix) - 1].split(".")
        return f"{labels[-1]}.{suffix}"


_ORGANISATIONAL_DOMAINS = _OrganisationalDomains()


def organisational_domain(domain: str) -> str:
    """The registrable domain of `domain` (`mail.example.co.uk` -> `example.co.uk`)."""
    return _ORGANISATIONAL_DOMAINS.get_public_suffix(domain)


def with_authentication(parsed: ParsedEmail, auth: MailAuthentication) -> ParsedEmail:
    """The parsed mail with `metadata.auth`, and its address verified when DMARC passed.

    Only an address taken from `From` can be verified: DMARC vouches for the From domain.
    """
    message = parsed.message
    metadata = {**message.metadata, "auth": auth.as_metadata()}
    customer = message.customer
    sender_domain = message.sender.rpartition("@")[2]
    if (
        auth.dmarc == "pass"
        and message.metadata.get("sender_source") == "from"
        and auth.from_domain == sender_domain
        and "email" not in customer.verified
    ):
        customer = customer.model_copy(update={"verified": [*customer.verified, "email"]})
    updated = message.model_copy(update={"metadata": metadata, "customer": customer})
    return ParsedEmail(message=updated, auto_reply_reason=parsed.auto_reply_reason)


def from_domain_of(parsed: ParsedEmail) -> str | None:
    """The From domain DMARC judges: the sender's, when the sender came from `From`."""
    message = parsed.message
    if message.metadata.get("sender_source") != "from":
        return None
    return message.sender.rpartition("@")[2] or None


class _SpfQuery(spf.query):  # type: ignore[misc]
    """pyspf's query with its DNS questions answered by `MailDns` instead of the network."""

    def __init__(
        self, answers: MailDns, ip: str, mail_from: str, helo: str, timeout: float, querytime: float
    ) -> None:
        super().__init__(ip, mail_from, helo, timeout=timeout, querytime=querytime)
        self._answers = answers

    def dns(
        self, name: str, qtype: str, cnames: Any = None, ignore_void: bool = False
    ) -> list[Any]:
        """Answer one of pyspf's DNS questions (CNAMEs are followed by the resolver)."""
        name = str(name).rstrip(".").lower()
        if not name or not all(0 < len(label) < 64 for label in name.split(".")):
            return []
        key = (name, qtype)
        if key in self.cache:
            return list(self.cache[key])
        try:
            raw = self._answers.query(name, "TXT" if qtype == "SPF" else qtype)
        except DnsTemporaryError as exc:
            raise spf.TempError(f"DNS {exc}") from exc
        result: list[Any]
        if qtype in ("TXT", "SPF"):
            result = [[value.encode("utf-8")] for value in raw]
        elif qtype == "MX":
            result = []
            for value in raw:
                preference, _, host = value.partition(" ")
                result.append((int(preference or 0), host.rstrip(".")))
        else:
            result = [value.rstrip(".") if qtype == "PTR" else value for value in raw]
        self.cache[key] = result
        if not result and not ignore_void:
            self.void_lookups += 1
            if self.void_lookups > spf.MAX_VOID_LOOKUPS:
                raise spf.PermError(f"Void lookup limit of {spf.MAX_VOID_LOOKUPS} exceeded")
        return result


class _BudgetedDns:
    """`MailDns` that stops asking once the mail's time budget is spent (then `temperror`)."""

    def __init__(self, answers: MailDns, deadline: float) -> None:
        self._answers = answers
        self._deadline = deadline

    def query(self, name: str, rdtype: str) -> list[str]:
        """Ask, unless the budget is spent."""
        if time.monotonic() >= self._deadline:
            raise DnsTemporaryError(f"{rdtype} {name}: the mail's DNS time budget is spent")
        return self._answers.query(name, rdtype)


class _DkimTxt:
    """dkimpy's `dnsfunc`: the first TXT record of a name, as bytes.

    dkimpy turns a DNS timeout into a plain failure, so the timeout is remembered here to
    report `temperror` rather than `fail`.
    """

    def __init__(self, answers: MailDns) -> None:
        self._answers = answers
        self.timed_out = False

    def __call__(self, name: bytes | str, timeout: float = 5) -> bytes | None:
        text = name.decode("ascii", "replace") if isinstance(name, bytes) else name
        try:
            records = self._answers.query(text.rstrip("."), "TXT")
        except DnsTemporaryError as exc:
            self.timed_out = True
            raise dkim.DnsTimeoutError(str(exc)) from exc
        return records[0].encode("utf-8") if records else None
