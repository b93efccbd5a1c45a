"""The one layer that talks to Kafka: records, errors, clients and their settings.

Everything else (connectors, streams, queues, the CLI) reaches Kafka through this
package; it imports nothing of ours but `schemas`.
"""

from kafkaio.errors import PublishError, RecordsRejectedError
from kafkaio.producer import PRODUCER_DEFAULTS, AsyncProducer, RecordLike
from kafkaio.record import Record
from kafkaio.settings import KafkaSettings

__all__ = [
    "PRODUCER_DEFAULTS",
    "AsyncProducer",
    "KafkaSettings",
    "PublishError",
    "Record",
    "RecordLike",
    "RecordsRejectedError",
]
