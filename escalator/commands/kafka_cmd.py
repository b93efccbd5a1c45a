"""`escalator kafka acls`: the least-privilege ACLs of every component, printed or applied."""

from __future__ import annotations

from typing import Annotated

import typer

from escalator.settings import KafkaSettings

app = typer.Typer(help="Kafka administration: ACLs per component.", no_args_is_help=True)


def _principals(overrides: list[str]) -> dict[str, str]:
    from escalator.kafka_acls import Component, default_principals

    principals = {component.value: name for component, name in default_principals().items()}
    for override in overrides:
        component, _, principal = override.partition("=")
        if component not in principals or not principal.startswith("User:"):
            known = ", ".join(c.value for c in Component)
            raise typer.BadParameter(
                f"{override!r}: expected COMPONENT=User:NAME with COMPONENT one of {known}",
                param_hint="--principal",
            )
        principals[component] = principal
    return principals


@app.command("acls")
def acls(
    principal: Annotated[
        list[str] | None,
        typer.Option(
            help="COMPONENT=User:NAME (repeatable); default User:escalator-COMPONENT.",
        ),
    ] = None,
    apply: Annotated[
        bool, typer.Option("--apply", help="Create the ACLs (needs an admin principal).")
    ] = False,
) -> None:
    """Print (or --apply) each component's grants for this deployment's topic prefix.

    One principal per component: the ingress may only write inbound messages, the desk
    writes agent actions and presence, only `rules` publishes rule sets.
    """
    from escalator.kafka_acls import Component, component_grants
    from kafkaio.acls import apply as apply_acls
    from kafkaio.acls import bindings
    from queues.projection import DEFAULT_GROUP_ID

    kafka = KafkaSettings()
    names = _principals(principal or [])
    grants = component_grants(kafka.topics, DEFAULT_GROUP_ID)
    wanted = []
    for component in Component:
        typer.echo(f"{component.value} ({names[component.value]}):")
        for grant in grants[component]:
            typer.echo(f"  {grant.describe()}")
        wanted.extend(bindings(names[component.value], grants[component]))
    if apply:
        count = apply_acls(kafka.librdkafka(), wanted)
        typer.echo(f"applied {count} ACL bindings to {kafka.bootstrap_servers}")
