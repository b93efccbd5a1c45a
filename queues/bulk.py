"""Bulk statements of the case store: one INSERT (or COPY) per table and batch.

`INSERT … ON CONFLICT` is spelled the same on the two dialects the store runs on
(SQLite and PostgreSQL); this module picks the dialect's construct and caches each
statement, so a batch pays for building none of them.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from functools import cache
from typing import Any

from sqlalchemy import ColumnElement, Connection, Insert, Table, any_, bindparam, insert
from sqlalchemy.dialects import postgresql, sqlite

from queues import pg_copy


class UnsupportedDialectError(Exception):
    """The case store runs on SQLite and PostgreSQL only."""


def insert_rows(connection: Connection, table: Table, rows: Sequence[dict[str, Any]]) -> None:
    """Insert `rows`, all new: a row whose primary key exists already fails the statement.

    PostgreSQL gets them through `COPY … FROM STDIN` (`queues.pg_copy`), which streams
    them in one statement where an executemany sends one `INSERT` per row; SQLite, in
    process, takes the executemany.
    """
    if not rows:
        return
    if connection.dialect.name == "postgresql":
        pg_copy.copy_rows(connection, table, rows)
    else:
        connection.execute(_plain(table), rows)


def insert_new_rows(connection: Connection, table: Table, rows: Sequence[dict[str, Any]]) -> None:
    """Insert `rows`, skipping those whose primary key exists already."""
    if rows:
        connection.execute(_ignoring(table, connection.dialect.name), rows)


def upsert_rows(connection: Connection, table: Table, rows: Sequence[dict[str, Any]]) -> None:
    """Insert `rows`, or overwrite every column of the row with the same primary key.

    Each primary key may appear once in `rows` (PostgreSQL cannot update a row twice in
    one statement): callers fold what a batch does to a row into one row first.
    PostgreSQL gets them through `COPY` and a staging table (`queues.pg_copy`), SQLite
    through an executemany.
    """
    if not rows:
        return
    if connection.dialect.name == "postgresql":
        pg_copy.upsert_rows(connection, table, rows)
    else:
        connection.execute(_upsert(table, connection.dialect.name), rows)


def one_of(
    connection: Connection, column: ColumnElement[Any], values: Collection[Any]
) -> ColumnElement[bool]:
    """SQL: `column` is one of `values`, spelled as the connection's dialect reads it fastest.

    PostgreSQL gets one array parameter (`= ANY(%(values)s)`): one statement text, planned
    once and prepared, where `IN (…)` renders a new text with a parameter per value that
    psycopg parses again on every call (it caches only short texts). SQLite, in-process,
    takes `IN (…)`.
    """
    if connection.dialect.name == "postgresql":
        array = bindparam(None, list(values), type_=postgresql.ARRAY(column.type))
        return column == any_(array)
    return column.in_(values)


@cache
def _plain(table: Table) -> Insert:
    return insert(table)


@cache
def _ignoring(table: Table, dialect: str) -> Insert:
    return _dialect_insert(table, dialect).on_conflict_do_nothing(
        index_elements=[column.name for column in table.primary_key.columns]
    )


@cache
def _upsert(table: Table, dialect: str) -> Insert:
    statement = _dialect_insert(table, dialect)
    keys = [column.name for column in table.primary_key.columns]
    return statement.on_conflict_do_update(
        index_elements=keys,
        set_={
            column.name: statement.excluded[column.name]
            for column in table.columns
            if column.name not in keys
        },
    )


def _dialect_insert(table: Table, dialect: str) -> postgresql.Insert | sqlite.Insert:
    if dialect == "postgresql":
        return postgresql.insert(table)
    if dialect == "sqlite":
        return sqlite.insert(table)
    raise UnsupportedDialectError(f"the case store runs on SQLite or PostgreSQL, not {dialect}")
