"""`ResolverDns` (dnspython) against a small DNS server on loopback: the answers mail
authentication reads, NXDOMAIN as no record, and a server that does not answer as temperror."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import dns.message
import dns.rcode
import dns.rrset
import pytest

from connectors.email.auth import DnsTemporaryError, ResolverDns

ZONE = {
    ("example.com.", "TXT"): ['"v=spf1 ip4:192.0.2.0/24 " "-all"', '"other"'],
    ("example.com.", "MX"): ["10 mx.example.com."],
    ("mx.example.com.", "A"): ["192.0.2.25"],
}


@pytest.fixture
def dns_server() -> Iterator[int]:
    """A UDP DNS server on a free loopback port answering from ZONE (NXDOMAIN otherwise)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(0.2)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                data, peer = sock.recvfrom(4096)
            except TimeoutError:
                continue
            query = dns.message.from_wire(data)
            question = query.question[0]
            name, rdtype = question.name.to_text(), dns.rdatatype.to_text(question.rdtype)
            response = dns.message.make_response(query)
            values = ZONE.get((name, rdtype))
            if values is None:
                response.set_rcode(dns.rcode.NXDOMAIN)
            else:
                response.answer.append(dns.rrset.from_text_list(name, 60, "IN", rdtype, values))
            sock.sendto(response.to_wire(), peer)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield sock.getsockname()[1]
    stop.set()
    thread.join(5)
    sock.close()


def test_answers_from_a_real_dns_server(dns_server: int) -> None:
    resolver = ResolverDns(["127.0.0.1"], port=dns_server)
    assert sorted(resolver.query("example.com", "TXT")) == ["other", "v=spf1 ip4:192.0.2.0/24 -all"]
    assert resolver.query("example.com", "MX") == ["10 mx.example.com."]
    assert resolver.query("mx.example.com", "A") == ["192.0.2.25"]
    assert resolver.query("_dmarc.nowhere.test", "TXT") == []  # NXDOMAIN: no record


def test_a_server_that_does_not_answer_is_a_temporary_error() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as silent:
        silent.bind(("127.0.0.1", 0))  # bound, never answers
        resolver = ResolverDns(["127.0.0.1"], timeout_seconds=0.5, port=silent.getsockname()[1])
        with pytest.raises(DnsTemporaryError):
            resolver.query("example.com", "TXT")
