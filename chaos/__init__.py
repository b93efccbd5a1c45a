"""Fault injection for Escalator: `make chaos` (python -m chaos).

Runs the real processes (three workers, the ingress, the projection, the reply service to a
local SMTP and HTTP sink) against a three-broker KRaft cluster on this machine, puts them
under steady load with agent actions and SLA deadlines falling due, injects one fault per
scenario (SIGKILL a worker, restart them one by one, scale out, kill a broker, stop every
broker for 30 s, kill the projection or the reply service, move every partition leader and
the group and transaction coordinators), then checks the invariants
over `cases.events`, the case store and what reached the sinks. The last line printed is
one JSON object; the exit status is non-zero when any invariant fails.
"""
