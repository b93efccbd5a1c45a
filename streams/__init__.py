"""The faust-streaming app: identity, threading, rule evaluation, routing, case events."""
