"""Identity resolution: normalised handles, links only on verified evidence, merges, splits."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from schemas import IdentityKind, IdentityRecord, InboundMessage
from streams.identity import (
    IdentityDirectory,
    channel_handle,
    implicit_customer,
    normalise_email,
    normalise_phone,
)

T0 = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)


def msg(channel: str, sender: str, **extra: Any) -> InboundMessage:
    return InboundMessage.model_validate(
        {
            "channel": channel,
            "external_id": f"{channel}-{sender}-{len(extra)}",
            "sender": sender,
            "text": "hello",
            "sent_at": T0.isoformat(),
            **extra,
        }
    )


def test_phones_become_e164_and_emails_are_case_folded() -> None:
    assert normalise_phone("+49 151 2345 6789") == "+4915123456789"
    assert normalise_phone("whatsapp:+49 (151) 234-56789") == "+4915123456789"
    assert normalise_phone("0151 23456789", "DE") == "+4915123456789"
    assert normalise_phone("0151 23456789") is None  # no region: national numbers are unknown
    assert normalise_phone("not a number", "DE") is None
    assert normalise_email("  Ana.Lopez@Example.COM ") == "ana.lopez@example.com"
    assert normalise_email("no-at-sign") is None
    assert channel_handle(msg("sms", "+4915123456789")) == "phone:+4915123456789"
    assert channel_handle(msg("whatsapp", "+49 151 23456789")) == "phone:+4915123456789"
    assert channel_handle(msg("email", "ANA@example.com")) == "email:ana@example.com"
    assert channel_handle(msg("twitter", "@Ana_L")) == "twitter:@ana_l"


def test_sms_and_whatsapp_from_one_number_are_one_customer() -> None:
    directory = IdentityDirectory()
    sms = directory.resolve(msg("sms", "+4915123456789"), T0)
    whatsapp = directory.resolve(msg("whatsapp", "+49 151 23456789"), T0)
    assert sms.customer_id == whatsapp.customer_id == implicit_customer("phone:+4915123456789")
    assert sms.records == []  # a handle's own customer needs no link


def test_verified_phone_links_the_number_to_the_email_customer() -> None:
    directory = IdentityDirectory("DE")
    web = msg(
        "webform",
        "session-17",
        customer={
            "email": "Ana@Example.com",
            "phone": "0151 23456789",
            "verified": ["email", "phone"],
        },
    )
    first = directory.resolve(web, T0)
    ana = implicit_customer("email:ana@example.com")
    assert first.customer_id == ana
    linked = {record.handle: record for record in first.records}
    assert set(linked) == {"phone:+4915123456789", "webform:session-17"}
    assert "verified by the channel" in linked["phone:+4915123456789"].reason
    assert all(record.customer_id == ana for record in first.records)
    later = directory.resolve(msg("sms", "+4915123456789"), T0)
    assert later.customer_id == ana
    assert "phone:+4915123456789 is linked to" in later.evidence
    mail = directory.resolve(msg("email", "ana@example.com"), T0)
    assert mail.customer_id == ana


def test_unverified_attributes_and_names_never_link() -> None:
    directory = IdentityDirectory()
    claim = msg(
        "chat",
        "visitor-9",
        customer={"email": "ana@example.com", "phone": "+4915123456789", "name": "Ana Lopez"},
    )
    resolution = directory.resolve(claim, T0)
    assert resolution.customer_id == implicit_customer("chat:visitor-9")
    assert resolution.records == []
    assert directory.resolve(msg("sms", "+4915123456789"), T0).customer_id != (
        resolution.customer_id
    )


def test_verified_is_believed_only_from_the_configured_channels() -> None:
    claim = {"email": "ana@example.com", "verified": ["email"]}
    untrusted = IdentityDirectory().resolve(msg("twitter", "@mallory", customer=claim), T0)
    assert untrusted.customer_id == implicit_customer("twitter:@mallory")
    assert untrusted.records == []
    trusting = IdentityDirectory(verified_channels=frozenset({"twitter"}))
    trusted = trusting.resolve(msg("twitter", "@ana_l", customer=claim), T0)
    assert trusted.customer_id == implicit_customer("email:ana@example.com")


def test_a_link_is_never_moved_by_a_conflicting_verified_attribute() -> None:
    directory = IdentityDirectory()
    ana = {"email": "ana@example.com", "phone": "+4915123456789", "verified": ["email", "phone"]}
    directory.resolve(msg("webform", "s1", customer=ana), T0)
    bob = {"email": "bob@example.com", "phone": "+4915123456789", "verified": ["email", "phone"]}
    conflict = directory.resolve(msg("webform", "s2", customer=bob), T0)
    assert conflict.customer_id == implicit_customer("email:bob@example.com")
    assert "phone:+4915123456789 stays with" in conflict.evidence
    assert directory.links["phone:+4915123456789"][0] == implicit_customer("email:ana@example.com")


def test_merge_and_split_change_later_resolutions_with_their_reason() -> None:
    directory = IdentityDirectory()
    tweet = msg("twitter", "@ana_l")
    twitter_customer = directory.resolve(tweet, T0).customer_id
    ana = implicit_customer("email:ana@example.com")
    directory.apply(
        IdentityRecord(
            kind=IdentityKind.MERGE,
            customer_id=twitter_customer,
            merged_into=ana,
            reason="same person, confirmed on the phone",
            at=T0,
        )
    )
    merged = directory.resolve(tweet, T0)
    assert merged.customer_id == ana
    assert "same person, confirmed on the phone" in merged.evidence
    directory.apply(
        IdentityRecord(kind=IdentityKind.SPLIT, customer_id=twitter_customer, reason="wrong", at=T0)
    )
    assert directory.resolve(tweet, T0).customer_id == twitter_customer


def test_merge_cycles_stop() -> None:
    directory = IdentityDirectory()
    for a, b in (("A", "B"), ("B", "A")):
        directory.apply(
            IdentityRecord(kind=IdentityKind.MERGE, customer_id=a, merged_into=b, reason="x", at=T0)
        )
    assert directory.merged("A")[0] in {"A", "B"}


def test_supplied_customer_id_wins_and_records_survive_json() -> None:
    directory = IdentityDirectory()
    resolution = directory.resolve(msg("chat", "v1", customer={"id": "cus_42"}), T0)
    assert resolution.customer_id == "cus_42"
    [record] = resolution.records
    assert record.key == b"handle:chat:v1"
    assert IdentityRecord.model_validate_json(record.model_dump_json()) == record


def test_mail_follows_identity_links_only_when_dmarc_verified_its_address() -> None:
    directory = IdentityDirectory()
    account = msg(
        "webform",
        "s-7",
        customer={"id": "cust-42", "email": "ana@example.com", "verified": ["email"]},
    )
    assert directory.resolve(account, T0).customer_id == "cust-42"
    assert directory.links["email:ana@example.com"][0] == "cust-42"
    spoofed = directory.resolve(msg("email", "ana@example.com"), T0)  # no DMARC pass
    assert spoofed.customer_id == implicit_customer("email:ana@example.com")
    assert "not authenticated by DMARC" in spoofed.evidence
    assert spoofed.records == []
    genuine = msg(
        "email",
        "ana@example.com",
        customer={"email": "ana@example.com", "verified": ["email"]},  # set on a DMARC pass
        metadata={"auth": {"dmarc": "pass"}},
    )
    assert directory.resolve(genuine, T0).customer_id == "cust-42"
    trusting = IdentityDirectory(mail_links_require_dmarc=False)
    trusting.resolve(account, T0)
    assert trusting.resolve(msg("email", "ana@example.com"), T0).customer_id == "cust-42"
