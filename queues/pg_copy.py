"""Rows written through PostgreSQL's `COPY … FROM STDIN`: the bulk insert of new rows.

psycopg's `executemany` sends one prepared `INSERT` per row and handles each row in
Python; `COPY` streams the rows in one statement, which took the projection's batch
writer from 41 to 33 µs of CPU per event. It is only for rows that must all be new: it
knows no `ON CONFLICT`, a row whose key exists fails the whole statement, as a plain
`INSERT` does.

The values go through the same SQLAlchemy bind processing as an `INSERT` of the table
(aware datetimes to UTC, JSON through the engine's serializer), and a failure is raised
as the `DBAPIError` SQLAlchemy would have raised for it (an `IntegrityError` for a
duplicate key, an `OperationalError` for a lost connection, which is then invalidated),
so the batch writer retries and classifies it as it does any statement's. `COPY` runs on
the driver's connection, outside SQLAlchemy's execution: statement events
(`before_cursor_execute`) do not see it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from functools import lru_cache
from typing import Any

from sqlalchemy import Connection, Dialect, Table
from sqlalchemy.exc import DBAPIError

_Processor = Callable[[Any], Any] | None


def copy_rows(
    connection: Connection,
    table: Table,
    rows: Sequence[Mapping[str, Any]],
    into: str | None = None,
) -> None:
    """Write `rows` (one value per column of `table`) into `table` in one `COPY`.

    `into` names another table with the same columns to write them to instead (a staging
    table of `upsert_rows`).
    """
    statement, columns = _plan(table, connection.dialect, into)
    driver_connection: Any = connection.connection.driver_connection
    driver_error: Any = connection.dialect.loaded_dbapi.Error
    cursor: Any = None
    try:
        cursor = driver_connection.cursor()
        with cursor.copy(statement) as copy:
            write_row = copy.write_row
            for row in rows:
                write_row(
                    [
                        row[name] if process is None else process(row[name])
                        for name, process in columns
                    ]
                )
    except driver_error as error:
        disconnected = connection.dialect.is_disconnect(error, driver_connection, cursor)
        if disconnected:
            connection.invalidate(error)
        raise DBAPIError.instance(
            statement,
            None,
            error,
            driver_error,
            connection_invalidated=disconnected,
            dialect=connection.dialect,
        ) from error
    finally:
        if cursor is not None and not cursor.closed:
            cursor.close()


def upsert_rows(connection: Connection, table: Table, rows: Sequence[Mapping[str, Any]]) -> None:
    """Insert `rows`, or overwrite every column of the row with the same primary key.

    The rows are copied into a temporary staging table shaped like `table` (created in
    the transaction if the session has none yet), then moved out of it by one
    `INSERT … SELECT … ON CONFLICT DO UPDATE` in key order, which leaves it empty. An
    executemany of the same upsert sent one statement per row: a quarter of a batch's
    time when every batch changes cases already stored, as on a live topic. Each primary
    key may appear once in `rows`.
    """
    if not rows:
        return
    create, move = _staging(table, connection.dialect)
    connection.exec_driver_sql(create)
    copy_rows(connection, table, rows, into=_staging_name(table))
    connection.exec_driver_sql(move)


def _staging_name(table: Table) -> str:
    return f"staging_{table.name}"


@lru_cache(maxsize=32)
def _staging(table: Table, dialect: Dialect) -> tuple[str, str]:
    """The statements that create `table`'s staging table and upsert what it holds."""
    quote = dialect.identifier_preparer
    target = quote.format_table(table)
    staging = quote.quote(_staging_name(table))
    keys = [quote.quote(column.name) for column in table.primary_key.columns]
    names = [quote.quote(column.name) for column in table.columns]
    listed = ", ".join(names)
    updates = ", ".join(f"{name} = EXCLUDED.{name}" for name in names if name not in keys)
    create = f"CREATE TEMPORARY TABLE IF NOT EXISTS {staging} (LIKE {target})"
    move = (
        f"WITH staged AS (DELETE FROM {staging} RETURNING {listed}) "
        f"INSERT INTO {target} ({listed}) SELECT {listed} FROM staged "
        f"ORDER BY {', '.join(keys)} "
        f"ON CONFLICT ({', '.join(keys)}) DO UPDATE SET {updates}"
    )
    return create, move


@lru_cache(maxsize=32)
def _plan(
    table: Table, dialect: Dialect, into: str | None = None
) -> tuple[str, tuple[tuple[str, _Processor], ...]]:
    """The `COPY` statement of `table` (or `into`) and each column's name and bind processor."""
    quote = dialect.identifier_preparer
    names = ", ".join(quote.quote(column.name) for column in table.columns)
    target = quote.format_table(table) if into is None else quote.quote(into)
    statement = f"COPY {target} ({names}) FROM STDIN"
    columns = tuple(
        (column.key, column.type.dialect_impl(dialect).bind_processor(dialect))
        for column in table.columns
    )
    return statement, columns
