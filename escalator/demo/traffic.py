"""Realistic mixed sample traffic: a few hundred customers writing on every channel.

Deterministic for a seed. Customers come back (repeat contacts, sometimes on another
channel), some requests are invalid on purpose, and some are re-sent (duplicates), so
the demo exercises threading, validation and deduplication, not just the happy path.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

FIRST_NAMES = [
    "Ana",
    "Ben",
    "Chloé",
    "Dmitri",
    "Emeka",
    "Fatima",
    "Giulia",
    "Hiro",
    "Ines",
    "Jonas",
    "Kwame",
    "Lena",
    "Mateo",
    "Nadia",
    "Olu",
    "Priya",
    "Quentin",
    "Rosa",
    "Sven",
    "Tariq",
    "Uma",
    "Vera",
    "Wen",
    "Xavier",
    "Yusuf",
    "Zofia",
]
LAST_NAMES = [
    "Almeida",
    "Becker",
    "Chen",
    "Dubois",
    "Eriksen",
    "Fischer",
    "García",
    "Haddad",
    "Ivanova",
    "Jensen",
    "Kowalski",
    "Lindqvist",
    "Müller",
    "Nakamura",
    "Okafor",
    "Petrov",
    "Quinn",
    "Rossi",
    "Schmidt",
    "Tanaka",
    "Urban",
    "Varga",
]

PROBLEMS: tuple[tuple[str, tuple[str, ...]], ...] = (
    (
        "Invoice charged twice",
        (
            "Hi, I was charged twice for invoice {ref} this month. Can you refund one?",
            "My card shows two payments of {amount} EUR for the same order {ref}.",
        ),
    ),
    (
        "Cannot log in",
        (
            "I can't log in since yesterday, the reset link never arrives.",
            "Password reset email is not coming. Account {email}.",
        ),
    ),
    (
        "Order not delivered",
        (
            "Order {ref} was due last week and tracking hasn't moved for 6 days.",
            "Where is my parcel? Order {ref}, paid {amount} EUR.",
        ),
    ),
    (
        "Cancel subscription",
        (
            "Please cancel my subscription before the next renewal.",
            "How do I stop the monthly plan? I don't want to be billed again.",
        ),
    ),
    (
        "App crashes",
        (
            "The app crashes every time I open the settings page (Android 15).",
            "Since the update the iOS app closes when I upload a photo.",
        ),
    ),
)
FOLLOW_UPS = (
    "Any update on this? It's been two days.",
    "Still waiting for an answer...",
    "Third time I'm writing about this. This is unacceptable.",
    "Hello?? Nobody is answering.",
    "Adding the screenshot you asked for.",
)
ANGRY_TWEETS = (
    "@AcmeSupport worst service ever, charged twice and nobody answers. Terrible!",
    "@AcmeSupport 5 days waiting for a reply. Disappointed and angry.",
    "@AcmeSupport love the product but support is awful, still no refund",
)
LEGAL = (
    "If this is not refunded by Friday my lawyer will take legal action.",
    "I have forwarded this to my attorney.",
)
COMMUNITY = (
    "Has anyone got the CSV export working with more than 10k rows?",
    "Webhook retries: how many times does the platform retry a failed delivery?",
    "Is there a way to set business hours per team?",
)
CHANNEL_WEIGHTS: tuple[tuple[str, int], ...] = (
    ("email", 35),
    ("chat", 20),
    ("sms", 12),
    ("webform", 10),
    ("twitter", 10),
    ("community", 8),
    ("facebook", 5),
)


@dataclass
class Customer:
    """A sample customer with a handle on every channel."""

    number: int
    name: str
    email: str
    phone: str
    twitter: str
    tier: str

    def handle(self, channel: str) -> str:
        """The sender handle this customer has on a channel."""
        if channel == "email":
            return self.email
        if channel in ("sms", "whatsapp"):
            return self.phone
        if channel in ("twitter", "facebook"):
            return self.twitter
        return f"user-{self.number}"


@dataclass(frozen=True)
class Request:
    """One HTTP request body to send, with what the sender expects of it."""

    body: Any
    valid: bool
    duplicate_of: str | None = None
    message_key: str | None = None


class TrafficGenerator:
    """Yields request bodies: new problems, follow-ups, duplicates and invalid requests."""

    def __init__(
        self,
        customers: int = 300,
        seed: int = 7,
        invalid_share: float = 0.05,
        duplicate_share: float = 0.03,
    ) -> None:
        self._random = random.Random(seed)
        self._customers = [self._customer(number) for number in range(customers)]
        self._invalid_share = invalid_share
        self._duplicate_share = duplicate_share
        self._sent: list[dict[str, Any]] = []
        self._open: dict[int, tuple[str, str]] = {}
        self._counter = 0

    def _customer(self, number: int) -> Customer:
        first = self._random.choice(FIRST_NAMES)
        last = self._random.choice(LAST_NAMES)
        slug = f"{first}.{last}".lower().encode("ascii", "ignore").decode() or "customer"
        return Customer(
            number=number,
            name=f"{first} {last}",
            email=f"{slug}{number}@example.com",
            phone=f"+4915{self._random.randrange(10**8, 10**9)}",
            twitter=f"@{slug.replace('.', '_')}{number}",
            tier=self._random.choices(["standard", "gold", "vip"], [85, 12, 3])[0],
        )

    def __iter__(self) -> Iterator[Request]:
        while True:
            yield self.next_request()

    def next_request(self) -> Request:
        """The next request to send."""
        roll = self._random.random()
        if roll < self._invalid_share:
            return Request(body=self._invalid(), valid=False)
        if roll < self._invalid_share + self._duplicate_share and self._sent:
            original = self._random.choice(self._sent[-200:])
            key = f"{original['channel']}:{original['external_id']}"
            return Request(body=original, valid=True, duplicate_of=key, message_key=key)
        message = self._message()
        self._sent.append(message)
        return Request(
            body=message, valid=True, message_key=f"{message['channel']}:{message['external_id']}"
        )

    def _message(self) -> dict[str, Any]:
        self._counter += 1
        customer = self._random.choice(self._customers)
        channel = self._random.choices(
            [name for name, _ in CHANNEL_WEIGHTS], [weight for _, weight in CHANNEL_WEIGHTS]
        )[0]
        ref = f"A-{self._random.randrange(10000, 99999)}"
        subject, text = self._text(customer, channel, ref)
        message: dict[str, Any] = {
            "channel": channel,
            "external_id": f"demo-{self._counter:07d}-{self._random.randrange(16**6):06x}",
            "sender": customer.handle(channel),
            "text": text,
            "sent_at": datetime.now(UTC).isoformat(),
            "customer": {"tier": customer.tier, "name": customer.name},
        }
        if subject:
            message["subject"] = subject
        if channel == "email":
            message["customer"]["email"] = customer.email
            thread = self._open.get(customer.number)
            message["thread_ref"] = thread[0] if thread else f"<{message['external_id']}@mail>"
        if channel == "community":
            message["metadata"] = {"topic_id": self._random.randrange(1000, 9999)}
        return message

    def _text(self, customer: Customer, channel: str, ref: str) -> tuple[str | None, str]:
        amount = f"{self._random.randrange(9, 400)}.{self._random.randrange(100):02d}"
        if channel == "community":
            return None, self._random.choice(COMMUNITY)
        if channel == "twitter" and self._random.random() < 0.5:
            return None, self._random.choice(ANGRY_TWEETS)
        known = self._open.get(customer.number)
        if known and self._random.random() < 0.6:
            return f"Re: {known[1]}", self._random.choice(FOLLOW_UPS)
        subject, bodies = self._random.choice(PROBLEMS)
        text = self._random.choice(bodies).format(ref=ref, amount=amount, email=customer.email)
        if self._random.random() < 0.03:
            text += " " + self._random.choice(LEGAL)
        self._open[customer.number] = (f"<{ref}@mail>", subject)
        return subject, text

    def _invalid(self) -> Any:
        kind = self._random.randrange(5)
        base = self._message()
        if kind == 0:
            del base["sender"]
        elif kind == 1:
            base["sent_at"] = "yesterday afternoon"
        elif kind == 2:
            base["channel"] = "Carrier Pigeon!"
        elif kind == 3:
            base["priority"] = "urgent"  # not a field of the contract
        else:
            return "{this is not json"
        return base
