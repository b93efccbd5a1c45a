"""The one layer that talks to Kafka: records, errors, clients and their settings.

Everything else (connectors, streams, queues, the CLI) reaches Kafka through this
package; it imports nothing of ours but `schemas`.

- `settings`: `KafkaSettings` and its librdkafka translation (`faust_config`: faust's).
- `record`, `errors`, `failures`: the one record type; what a write can end in.
- `producer`: `AsyncProducer`, batches awaited from asyncio (connectors, worker, desk).
- `blocking`: `BlockingProducer` / `produce_and_wait` for commands and threads.
- `clients`: consumers and admin clients; `follower`: a compacted topic read to its end,
  then followed; `catchup`: end offsets a bounded replay reads up to.
- `admin`: creating missing topics, replicated (`replication_for`).
"""

from kafkaio.blocking import BlockingProducer, produce_and_wait
from kafkaio.errors import PublishError, RecordsRejectedError
from kafkaio.producer import PRODUCER_DEFAULTS, AsyncProducer, RecordLike
from kafkaio.record import ConsumedRecord, Record
from kafkaio.settings import KafkaSettings

__all__ = [
    "PRODUCER_DEFAULTS",
    "AsyncProducer",
    "BlockingProducer",
    "ConsumedRecord",
    "KafkaSettings",
    "PublishError",
    "Record",
    "RecordLike",
    "RecordsRejectedError",
    "produce_and_wait",
]
