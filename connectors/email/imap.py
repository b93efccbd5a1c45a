"""`escalator connect imap`: polls an existing mailbox (IMAPClient) and publishes its new mail.

Unseen mail is fetched with `BODY.PEEK[]` (which does not set `\\Seen`), published, and
flagged `\\Seen` only after Kafka acknowledged it; if Kafka does not, the mail stays unseen
and is tried again at the next poll. Auto-replies and bounces are published tagged
`auto_reply` (they never open a case).

Parsing and DKIM/DMARC run on a worker thread with the MIME caps and a time bound. SPF needs
the sending server's address, which a mailbox does not give reliably: it is `none` here, so
DMARC can pass only on an aligned DKIM signature.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import ssl
from dataclasses import dataclass, field

from imapclient import IMAPClient  # type: ignore[import-untyped]
from imapclient.exceptions import IMAPClientError  # type: ignore[import-untyped]

from connectors.channels._http import MessageSink
from connectors.channels._metrics import AUTO_REPLIES, CHANNEL_REQUESTS, CONNECTOR_ERRORS
from connectors.email.auth import MailAuthenticator, from_domain_of, with_authentication
from connectors.email.parse import EmailParseError, ParsedEmail, parse_email
from connectors.email.workers import MailBusyError, MailTimeoutError, MailWorkers
from connectors.publisher import PublishError

log = logging.getLogger(__name__)

SEEN = b"\\Seen"
FETCH_BATCH = 50
"""Mails fetched per round trip; a big backlog is worked through in slices."""


@dataclass(frozen=True)
class ImapConfig:
    """Where the mailbox is and how to log in."""

    host: str
    username: str
    password: str
    port: int = 993
    use_ssl: bool = True
    folder: str = "INBOX"
    poll_seconds: float = 30.0
    ssl_context: ssl.SSLContext | None = None


@dataclass
class PollResult:
    """What one poll did, by outcome."""

    published: int = 0
    auto_replies: int = 0
    """Of those published, how many were tagged `auto_reply`."""
    unparsable: int = 0
    left_unseen: int = 0
    uids: list[int] = field(default_factory=list)


class ImapPoller:
    """Polls one folder; each poll runs the blocking IMAP calls on a worker thread."""

    def __init__(
        self,
        config: ImapConfig,
        sink: MessageSink,
        authenticator: MailAuthenticator | None = None,
        workers: MailWorkers | None = None,
    ) -> None:
        self._config = config
        self._sink = sink
        self._authenticator = authenticator
        self._workers = workers or MailWorkers(threads=1, max_in_flight=1)

    def process(self, raw: bytes) -> ParsedEmail:
        """Parse a mail and, with an authenticator, evaluate DKIM and DMARC (blocking)."""
        parsed = parse_email(raw, source="imap")
        if self._authenticator is None:
            return parsed
        auth = self._authenticator.authenticate(raw, from_domain_of(parsed))
        return with_authentication(parsed, auth)

    def _connect(self) -> IMAPClient:
        config = self._config
        client = IMAPClient(
            config.host,
            port=config.port,
            ssl=config.use_ssl,
            ssl_context=config.ssl_context,
            timeout=30,
        )
        client.login(config.username, config.password)
        client.select_folder(config.folder)
        return client

    async def poll_once(self) -> PollResult:
        """Publish every unseen mail of the folder; flag each seen once Kafka has it."""
        client = await asyncio.to_thread(self._connect)
        try:
            return await self._drain(client)
        finally:
            await asyncio.to_thread(_logout, client)

    async def _drain(self, client: IMAPClient) -> PollResult:
        result = PollResult()
        unseen = sorted(await asyncio.to_thread(client.search, ["UNSEEN"]))
        for start in range(0, len(unseen), FETCH_BATCH):
            batch = unseen[start : start + FETCH_BATCH]
            fetched = await asyncio.to_thread(client.fetch, batch, ["BODY.PEEK[]"])
            for uid in batch:
                raw = fetched.get(uid, {}).get(b"BODY[]")
                if not isinstance(raw, bytes):
                    continue
                try:
                    parsed = await self._workers.run(functools.partial(self.process, raw))
                except (MailTimeoutError, MailBusyError) as exc:
                    log.warning("imap: mail uid %s not processed in time, next poll: %s", uid, exc)
                    CONNECTOR_ERRORS.labels("imap", "timeout").inc()
                    result.left_unseen += 1
                    continue
                except (EmailParseError, ValueError) as exc:
                    # left unseen for a person to look at; it would fail the same way again
                    log.warning("imap: mail uid %s cannot be parsed: %s", uid, exc)
                    CHANNEL_REQUESTS.labels("email", "malformed").inc()
                    result.unparsable += 1
                    continue
                try:
                    await self._sink.publish([parsed.message])
                except PublishError as exc:
                    CHANNEL_REQUESTS.labels("email", "kafka_unavailable").inc()
                    log.warning("imap: Kafka did not acknowledge; mail stays unseen: %s", exc)
                    CONNECTOR_ERRORS.labels("imap", "kafka_unavailable").inc()
                    result.left_unseen = len(unseen) - start - batch.index(uid)
                    return result
                if parsed.is_auto_reply:
                    AUTO_REPLIES.labels("imap").inc()
                    CHANNEL_REQUESTS.labels("email", "auto_reply").inc()
                    result.auto_replies += 1
                else:
                    CHANNEL_REQUESTS.labels("email", "accepted").inc()
                result.published += 1
                await asyncio.to_thread(client.add_flags, [uid], [SEEN])
                result.uids.append(uid)
        return result

    async def run(self, stop: asyncio.Event) -> None:
        """Poll every `poll_seconds` until `stop` is set; connection errors are logged, retried."""
        while not stop.is_set():
            try:
                result = await self.poll_once()
                if result.published:
                    log.info(
                        "imap: published %d (%d tagged auto-replies)",
                        result.published,
                        result.auto_replies,
                    )
            except (IMAPClientError, OSError) as exc:
                log.warning("imap: poll failed, retrying: %s", exc)
                CONNECTOR_ERRORS.labels("imap", "poll_failed").inc()
            try:
                await asyncio.wait_for(stop.wait(), timeout=self._config.poll_seconds)
            except TimeoutError:
                continue


def _logout(client: IMAPClient) -> None:
    with contextlib.suppress(IMAPClientError, OSError):
        client.logout()
