"""Outbound delivery: agent replies back on the case's channel, escalation notifications."""
