"""Inbound channel adapters and outbound delivery: the edges, publishing with confluent-kafka."""
