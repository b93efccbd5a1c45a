"""Kafka ACLs as data: what one principal may do, turned into the broker's bindings.

A `Grant` names a resource (a topic, a consumer group, a transactional id) by its exact name
or by a prefix, and the operations allowed on it. `bindings` turns a principal's grants into
confluent-kafka `AclBinding`s; `apply` creates them with an admin client's credentials.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from confluent_kafka.admin import AdminClient
from confluent_kafka.admin._acl import AclBinding, AclOperation, AclPermissionType
from confluent_kafka.admin._resource import ResourcePatternType, ResourceType


class Resource(StrEnum):
    """What a grant is about."""

    TOPIC = "topic"
    GROUP = "group"
    TRANSACTIONAL_ID = "transactional_id"


_RESOURCE_TYPES = {
    Resource.TOPIC: ResourceType.TOPIC,
    Resource.GROUP: ResourceType.GROUP,
    Resource.TRANSACTIONAL_ID: ResourceType.TRANSACTIONAL_ID,
}


@dataclass(frozen=True)
class Grant:
    """Operations (READ, WRITE, DESCRIBE, CREATE, ...) allowed on one resource or prefix."""

    resource: Resource
    name: str
    operations: tuple[str, ...]
    prefixed: bool = False

    def describe(self) -> str:
        """`topic escalator.messages.inbound: WRITE, DESCRIBE` (a prefix ends in `*`)."""
        star = "*" if self.prefixed else ""
        return f"{self.resource.value} {self.name}{star}: {', '.join(self.operations)}"


def bindings(principal: str, grants: Iterable[Grant], host: str = "*") -> list[AclBinding]:
    """The broker's ALLOW bindings for `principal` (e.g. `User:escalator-ingress`)."""
    found: list[AclBinding] = []
    for grant in grants:
        pattern = ResourcePatternType.PREFIXED if grant.prefixed else ResourcePatternType.LITERAL
        found.extend(
            AclBinding(
                _RESOURCE_TYPES[grant.resource],
                grant.name,
                pattern,
                principal,
                host,
                AclOperation[operation],
                AclPermissionType.ALLOW,
            )
            for operation in grant.operations
        )
    return found


def apply(
    admin_config: Mapping[str, Any], acls: Iterable[AclBinding], timeout_seconds: float = 30.0
) -> int:
    """Create the bindings (existing ones stay as they are); returns how many were sent."""
    wanted = list(acls)
    if not wanted:
        return 0
    admin = AdminClient(dict(admin_config))
    for future in admin.create_acls(wanted, request_timeout=timeout_seconds).values():
        future.result()
    return len(wanted)
