"""The embedded Tansu broker: starts, serves confluent-kafka and a faust agent, stops cleanly."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from confluent_kafka.admin import AdminClient

from escalator.embedded_broker import FAUST_SETTINGS_FOR_TANSU, EmbeddedBroker
from tests.kafka_support import consume_until, create_topics, produce, produce_json

FAUST_APP = textwrap.dedent(
    """
    import json, os
    import faust

    app = faust.App(
        "embedded-broker-test",
        broker="kafka://" + os.environ["BOOTSTRAP"],
        store="memory://",
        web_enabled=False,
        topic_partitions=2,
        **json.loads(os.environ["FAUST_SETTINGS"]),
    )
    source = app.topic("in", value_serializer="raw")
    sink = app.topic("out", value_serializer="raw")
    seen = app.Table("seen", default=int)

    @app.agent(source)
    async def echo(stream):
        async for event in stream.events():
            seen[event.key.decode()] += 1
            await sink.send(key=event.key, value=event.value.upper())

    if __name__ == "__main__":
        app.main()
    """
)


def test_produce_and_consume_through_embedded_broker() -> None:
    with EmbeddedBroker() as broker:
        bootstrap = broker.bootstrap_servers
        assert bootstrap.startswith("127.0.0.1:")
        create_topics(bootstrap, ["orders"], partitions=3)
        metadata = AdminClient({"bootstrap.servers": bootstrap}).list_topics(timeout=5)
        assert len(metadata.topics["orders"].partitions) == 3

        produce_json(bootstrap, "orders", [{"n": n} for n in range(10)], key=lambda v: str(v["n"]))
        records = consume_until(bootstrap, "orders", 10, timeout=30)

        assert sorted(record.json()["n"] for record in records) == list(range(10))
        assert {record.partition for record in records} <= {0, 1, 2}


def test_stops_on_exit_and_takes_a_given_port() -> None:
    with EmbeddedBroker() as first:
        port = int(first.bootstrap_servers.rsplit(":", 1)[1])
    assert not first.running
    with EmbeddedBroker(port=port) as second:  # the port is free again
        assert second.bootstrap_servers == f"127.0.0.1:{port}"
        assert second.running
    assert not second.running


def test_faust_agent_receives_quickly_with_documented_settings(tmp_path: Path) -> None:
    (tmp_path / "echo_app.py").write_text(FAUST_APP)
    with EmbeddedBroker() as broker:
        bootstrap = broker.bootstrap_servers
        create_topics(bootstrap, ["in", "out"], partitions=2)
        env = {
            **os.environ,
            "BOOTSTRAP": bootstrap,
            "FAUST_SETTINGS": json.dumps(FAUST_SETTINGS_FOR_TANSU),
        }
        started = time.monotonic()
        worker = subprocess.Popen(
            [sys.executable, "echo_app.py", "worker", "-l", "warn", "--without-web"],
            cwd=tmp_path,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        try:
            produce(bootstrap, "in", [(f"k{n}".encode(), f"hello {n}".encode()) for n in range(6)])
            records = consume_until(
                bootstrap,
                "out",
                lambda seen: len(seen) >= 6 or worker.poll() is not None,  # stop if it dies
                timeout=60,
                raise_on_timeout=False,
            )
            elapsed = time.monotonic() - started
        finally:
            worker.terminate()
            output, _ = worker.communicate(timeout=30)

        assert len(records) == 6, f"worker output:\n{output.decode()[-3000:]}"
        assert sorted(r.value for r in records) == [f"HELLO {n}".encode() for n in range(6)]
        # With faust's defaults the first join alone takes ~30 s on Tansu.
        assert elapsed < 20, f"took {elapsed:.1f}s; worker output:\n{output.decode()[-3000:]}"
