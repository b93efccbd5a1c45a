"""Baseline: a raw confluent-kafka consume→produce loop (the ceiling for one Python process)."""

from __future__ import annotations

import os
import signal
import sys

from confluent_kafka import Consumer, Producer

source_name, sink_name = sys.argv[1], sys.argv[2]
bootstrap = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "localhost:9092")
consumer = Consumer(
    {
        "bootstrap.servers": bootstrap,
        "group.id": f"{source_name}-raw",
        "auto.offset.reset": "earliest",
        "enable.auto.commit": True,
    }
)
producer = Producer(
    {
        "bootstrap.servers": bootstrap,
        "linger.ms": 5,
        "enable.idempotence": True,
        "partitioner": "murmur2_random",
    }
)
stopping: list[bool] = []
signal.signal(signal.SIGTERM, lambda *_args: stopping.append(True))
consumer.subscribe([source_name])
while not stopping:
    for message in consumer.consume(1000, 0.1):
        if message.error():
            continue
        producer.produce(sink_name, key=message.key(), value=message.value())
    producer.poll(0)
producer.flush(10)
consumer.close()
