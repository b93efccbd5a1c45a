"""Wait until a Kafka broker answers a metadata request; used by `kafka.sh start` and `status`.

Usage: ``python broker_ready.py BOOTSTRAP [--wait SECONDS] [--pid PID]``. Exits 0 as soon as a
metadata request lists at least one broker, 1 when the wait runs out, 2 when the broker process
(``--pid``) has died in the meantime. Standard library plus confluent-kafka only. With
``KAFKA_SASL_PASSWORD`` set (kafka.sh's SASL profile) it authenticates with SCRAM-SHA-512 as
``KAFKA_SASL_USERNAME`` (default escalator).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time

from confluent_kafka.admin import AdminClient

EXIT_READY = 0
EXIT_TIMEOUT = 1
EXIT_PROCESS_DIED = 2

# librdkafka's connection-refused chatter while the broker is starting goes nowhere.
_QUIET = logging.getLogger("broker_ready")
_QUIET.addHandler(logging.NullHandler())
_QUIET.propagate = False


def broker_answers(bootstrap: str, timeout: float) -> bool:
    """Return whether the broker at `bootstrap` answers a metadata request within `timeout`."""
    config: dict[str, object] = {"bootstrap.servers": bootstrap, "logger": _QUIET}
    password = os.environ.get("KAFKA_SASL_PASSWORD")
    if password:
        config.update(
            {
                "security.protocol": "sasl_plaintext",
                "sasl.mechanism": "SCRAM-SHA-512",
                "sasl.username": os.environ.get("KAFKA_SASL_USERNAME", "escalator"),
                "sasl.password": password,
            }
        )
    admin = AdminClient(config)
    try:
        metadata = admin.list_topics(timeout=timeout)
    except Exception:  # any KafkaException means "not ready yet"
        return False
    return bool(metadata.brokers)


def _alive(pid: int) -> bool:
    """Return whether process `pid` still exists."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def main() -> int:
    """Poll the broker until it answers, the wait runs out or its process dies."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("bootstrap")
    parser.add_argument("--wait", type=float, default=2.0, help="seconds to keep trying")
    parser.add_argument("--pid", type=int, default=None, help="give up if this process dies")
    args = parser.parse_args()
    deadline = time.monotonic() + args.wait
    while True:
        remaining = deadline - time.monotonic()
        if broker_answers(args.bootstrap, timeout=max(0.5, min(2.0, remaining))):
            return EXIT_READY
        if args.pid is not None and not _alive(args.pid):
            return EXIT_PROCESS_DIED
        if time.monotonic() >= deadline:
            return EXIT_TIMEOUT
        time.sleep(0.2)


if __name__ == "__main__":
    sys.exit(main())
