"""Process-wide observability wiring: exposition, health endpoints, Kafka lag, JSON logs."""
