"""Least privilege on Kafka: the grants of each Escalator component, from the deployment's names.

One principal per component. The internet-facing ingress can only write inbound messages;
the desk writes agent actions and presence and reads case events; only the rules publisher
writes rule sets; the worker reads and writes its own topics and group; the projection and
the reply service read what they project or deliver. `escalator kafka acls` prints these
grants and, with `--apply`, creates them (run it with an admin principal's credentials).
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum

from kafkaio.acls import Grant, Resource
from kafkaio.rules_history import publisher_transactional_id
from schemas import Topics

READ = ("READ", "DESCRIBE")
WRITE = ("WRITE", "DESCRIBE")
CREATE_WRITE = ("WRITE", "DESCRIBE", "CREATE")
READ_WRITE = ("READ", "WRITE", "DESCRIBE", "CREATE", "DESCRIBE_CONFIGS")
GROUP = ("READ", "DESCRIBE")


class Component(StrEnum):
    """Each process kind that talks to Kafka with its own principal."""

    INGRESS = "ingress"
    """`connect http`, `connect smtp`, `connect imap`: publish inbound messages."""
    WORKER = "worker"
    DESK = "desk"
    PROJECTION = "projection"
    REPLIES = "replies"
    RULES = "rules"
    """Whoever runs `escalator rules publish` (CI, an ops lead)."""


def _topic(name: str, operations: tuple[str, ...], prefixed: bool = False) -> Grant:
    return Grant(Resource.TOPIC, name, operations, prefixed)


def _group(name: str, prefixed: bool = False) -> Grant:
    return Grant(Resource.GROUP, name, GROUP, prefixed)


def component_grants(topics: Topics, projection_group: str) -> dict[Component, list[Grant]]:
    """Every component's grants for a deployment with these topic names."""
    worker = f"{topics.prefix}worker"  # the group, faust's own topics and the changelogs
    return {
        Component.INGRESS: [_topic(topics.inbound, CREATE_WRITE)],
        Component.WORKER: [
            _topic(topics.inbound, ("READ", "DESCRIBE", "CREATE")),
            _topic(topics.agent_actions, ("READ", "DESCRIBE", "CREATE")),
            _topic(topics.rules, ("READ", "DESCRIBE", "CREATE")),
            _topic(topics.rules_candidate, ("READ", "DESCRIBE", "CREATE")),
            _topic(topics.rules_shadow, CREATE_WRITE),
            _topic(topics.resolved, READ_WRITE),
            _topic(topics.threaded, READ_WRITE),
            _topic(topics.identity, READ_WRITE),
            _topic(worker, READ_WRITE, prefixed=True),
            _topic(topics.case_events, CREATE_WRITE),
            _topic(topics.dlq, CREATE_WRITE),
            _topic(topics.agent_presence, ("DESCRIBE", "CREATE")),
            _topic(f"{topics.prefix}queue.", CREATE_WRITE, prefixed=True),
            _group(worker, prefixed=True),
            # state written in transactions under `<app id>.<changelog>.<partition>` (fencing)
            Grant(Resource.TRANSACTIONAL_ID, worker, ("WRITE", "DESCRIBE"), prefixed=True),
        ],
        Component.DESK: [
            _topic(topics.agent_actions, CREATE_WRITE),
            _topic(topics.agent_presence, READ_WRITE),
            _topic(topics.case_events, READ),
            _topic(topics.assigner, READ_WRITE),
            _group(topics.assigner),
            _group(f"{topics.agent_presence}.projection"),
            _topic(topics.dlq, CREATE_WRITE),  # presence records it cannot apply
        ],
        Component.PROJECTION: [
            _topic(topics.case_events, READ),
            _topic(topics.agent_presence, READ),
            _topic(topics.identity, READ),  # merges and splits, for customers' histories
            _group(projection_group),
            _group(f"{topics.agent_presence}.projection"),
            _topic(topics.dlq, CREATE_WRITE),  # case events it cannot apply
        ],
        Component.REPLIES: [
            _topic(topics.case_events, ("READ", "WRITE", "DESCRIBE")),
            _topic(topics.dlq, CREATE_WRITE),
            _topic(f"{topics.prefix}replies", READ_WRITE, prefixed=True),
            _group(f"{topics.prefix}replies", prefixed=True),
        ],
        Component.RULES: [
            _topic(topics.rules, CREATE_WRITE),
            # every publish is kept on the history topic, written with the set in one transaction
            _topic(topics.rules_history, ("READ", "WRITE", "DESCRIBE", "CREATE")),
            Grant(Resource.TRANSACTIONAL_ID, publisher_transactional_id(topics.rules), WRITE),
            # the shadow set, and its disagreements for `rules shadow report`
            _topic(topics.rules_candidate, READ_WRITE),
            _topic(topics.rules_shadow, ("READ", "DESCRIBE")),
            # a rule set's new queues get their topics when it is published
            _topic(f"{topics.prefix}queue.", ("DESCRIBE", "CREATE"), prefixed=True),
        ],
    }


def default_principals() -> Mapping[Component, str]:
    """`User:escalator-<component>` for every component."""
    return {component: f"User:escalator-{component.value}" for component in Component}
