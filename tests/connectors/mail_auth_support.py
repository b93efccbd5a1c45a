"""A fixed set of DNS answers for mail authentication tests, and DKIM keys to sign with."""

from __future__ import annotations

import base64
from dataclasses import dataclass, field

import dkim
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from connectors.email.auth import DnsTemporaryError


@dataclass
class FakeDns:
    """`MailDns` from a dict: (name, type) -> answers; names in `failing` time out."""

    answers: dict[tuple[str, str], list[str]] = field(default_factory=dict)
    failing: set[str] = field(default_factory=set)
    asked: list[tuple[str, str]] = field(default_factory=list)

    def query(self, name: str, rdtype: str) -> list[str]:
        self.asked.append((name, rdtype))
        if name in self.failing:
            raise DnsTemporaryError(f"{name}: timed out")
        return list(self.answers.get((name.lower(), rdtype), []))

    def add(self, name: str, rdtype: str, value: str) -> None:
        self.answers.setdefault((name, rdtype), []).append(value)


@dataclass(frozen=True)
class DkimKey:
    """An RSA key pair: the private PEM to sign with, the DNS TXT value to publish."""

    private_pem: bytes
    txt: str

    @classmethod
    def generate(cls) -> DkimKey:
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        private_pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )
        public_der = key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        return cls(private_pem, f"v=DKIM1; k=rsa; p={base64.b64encode(public_der).decode()}")

    def sign(self, raw: bytes, domain: str, selector: str = "s1") -> bytes:
        signature: bytes = dkim.sign(
            raw,
            selector.encode(),
            domain.encode(),
            self.private_pem,
            include_headers=[b"from", b"to", b"subject", b"message-id"],
        )
        return signature + raw

    def publish(self, answers: FakeDns, domain: str, selector: str = "s1") -> None:
        answers.add(f"{selector}._domainkey.{domain}", "TXT", self.txt)


def mail(
    sender: str, message_id: str = "m@example.com", body: str = "Where is my parcel?"
) -> bytes:
    return (
        f"From: {sender}\r\nTo: help@acme.test\r\nSubject: Parcel missing\r\n"
        f"Message-ID: <{message_id}>\r\nDate: Tue, 03 Nov 2026 10:00:00 +0000\r\n\r\n{body}\r\n"
    ).encode()
