"""The one layer that talks to Kafka: records, errors, clients and their settings.

Everything else (connectors, streams, queues, the CLI) reaches Kafka through this
package; it imports nothing of ours but `schemas`.
"""

from kafkaio.errors import PublishError, RecordsRejectedError
from kafkaio.record import Record

__all__ = ["PublishError", "Record", "RecordsRejectedError"]
