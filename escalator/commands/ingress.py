"""`escalator ingress keys`: the API keys of `POST /v1/messages` (add, list, rotate, revoke).

A key is printed once, on stdout alone (so `KEY=$(escalator ingress keys add ...)` works), and
stored in the keys file only as its SHA-256. Every ingress reading the file picks up a change
within seconds; on Kubernetes, put the file in the Secret the ingress mounts.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from connectors import ingress_keys
from connectors.ingress_keys import TRUST_FIELDS, IngressKeyError
from escalator.settings import Settings

app = typer.Typer(help="The HTTP ingress (escalator connect http).", no_args_is_help=True)
keys_app = typer.Typer(
    help="API keys of POST /v1/messages: each scoped to channels and trust fields.",
    no_args_is_help=True,
)
app.add_typer(keys_app, name="keys")

FileOption = Annotated[
    Path | None,
    typer.Option("--file", help="The keys file (default ESCALATOR_INGRESS_KEYS_FILE)."),
]


def _keys_file(path: Path | None) -> Path:
    chosen = path or Settings().ingress_keys_file
    if chosen is None:
        raise _fail("give --file or set ESCALATOR_INGRESS_KEYS_FILE")
    return chosen


def _fail(message: str) -> typer.Exit:
    Console(stderr=True, soft_wrap=True).print(message, style="red", markup=False)
    return typer.Exit(code=2)


def _load(path: Path) -> ingress_keys.KeysFile:
    try:
        return ingress_keys.load(path)
    except ValueError as error:
        raise _fail(str(error)) from error


def _split(values: str) -> list[str]:
    return [value.strip() for value in values.split(",") if value.strip()]


@keys_app.command("add")
def add(
    name: Annotated[str, typer.Argument(help="Who holds it: lowercase letters, digits, . _ -")],
    channels: Annotated[
        str, typer.Option(help="Comma-separated channels it may publish to, or * for all.")
    ],
    trust: Annotated[
        str,
        typer.Option(help=f"Comma-separated trust fields it may set: {', '.join(TRUST_FIELDS)}."),
    ] = "",
    file: FileOption = None,
) -> None:
    """Create a key and print it. It is shown this once and stored hashed."""
    path = _keys_file(file)
    keys = _load(path)
    try:
        token = ingress_keys.add(keys, name, _split(channels), _split(trust))
    except IngressKeyError as error:
        raise _fail(str(error)) from error
    ingress_keys.save(path, keys)
    key = keys.find(name)
    Console(stderr=True, soft_wrap=True).print(
        f"ingress key {name} for {', '.join(key.channels)}"
        f"{'; trusted with ' + ', '.join(key.trust) if key.trust else ''}; "
        "key (shown once, store it now):",
        markup=False,
    )
    typer.echo(token)


@keys_app.command("rotate")
def rotate(name: Annotated[str, typer.Argument(help="The key.")], file: FileOption = None) -> None:
    """Replace a key's value and print the new one (the old one stops working)."""
    path = _keys_file(file)
    keys = _load(path)
    try:
        token = ingress_keys.rotate(keys, name)
    except IngressKeyError as error:
        raise _fail(str(error)) from error
    ingress_keys.save(path, keys)
    typer.echo(token)


@keys_app.command("revoke")
def revoke(name: Annotated[str, typer.Argument(help="The key.")], file: FileOption = None) -> None:
    """Revoke a key: it stops working and stays listed as revoked."""
    path = _keys_file(file)
    keys = _load(path)
    try:
        ingress_keys.revoke(keys, name)
    except IngressKeyError as error:
        raise _fail(str(error)) from error
    ingress_keys.save(path, keys)
    Console(stderr=True, soft_wrap=True).print(f"ingress key {name} revoked", markup=False)


@keys_app.command("list")
def list_keys(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    file: FileOption = None,
) -> None:
    """Every key with its channels, trust fields and dates (never the key itself)."""
    keys = _load(_keys_file(file)).keys
    if as_json:
        typer.echo(
            json.dumps([key.model_dump(mode="json", exclude={"sha256"}) for key in keys], indent=2)
        )
        return
    table = Table("name", "channels", "trust", "created", "rotated", "revoked")
    for key in keys:
        table.add_row(
            key.name,
            ", ".join(key.channels),
            ", ".join(key.trust),
            key.created_at.isoformat(timespec="seconds"),
            key.rotated_at.isoformat(timespec="seconds") if key.rotated_at else "",
            key.revoked_at.isoformat(timespec="seconds") if key.revoked_at else "",
        )
    Console(soft_wrap=True).print(table)
