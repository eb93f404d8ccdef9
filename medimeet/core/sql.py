"""Reads written in SQL, for the few statements every booking or API request makes.

The ORM spends 0.5–1 ms of Python building and compiling a query, against ~0.1 ms for the same
statement through a cursor (docs/performance.md, History "2026-11-22 (later)"). Everything else
reads through the ORM; a read moves here only when a benchmark shows its cost, keeps to plain
columns, and has a test holding it to the ORM's answer on SQLite and PostgreSQL.
"""

from __future__ import annotations

from datetime import UTC, datetime
from functools import cache

from django.db import connection
from django.db.models import Model


def rows(sql: str, params: list) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


def placeholders(values) -> str:
    """``%s, %s, %s`` for an ``IN (...)`` of these values."""
    return ", ".join(["%s"] * len(values))


def utc(value: datetime | None) -> datetime | None:
    """A timestamp column as the ORM gives it: SQLite returns them naive, in UTC."""
    return value.replace(tzinfo=UTC) if value is not None and value.tzinfo is None else value


def db_datetime(value: datetime):
    """A timestamp parameter as the ORM passes it (SQLite compares naive UTC text)."""
    return connection.ops.adapt_datetimefield_value(value)


@cache
def columns(model: type[Model], alias: str) -> str:
    """Every column of ``model`` under the table alias, in its fields' order (what
    ``instances`` takes), never ``*``: a table's column order follows its migrations."""
    return ", ".join(f"{alias}.{connection.ops.quote_name(field.column)}" for field in model._meta.concrete_fields)


def instances(row: tuple, *models: type[Model]) -> list[Model]:
    """Model instances from a row of ``columns(model, ...)`` for each model in turn, with the
    conversions the ORM applies (SQLite's text timestamps, UUIDs, JSON, booleans, decimals)."""
    found, at = [], 0
    for model in models:
        fields = model._meta.concrete_fields
        values = list(row[at : at + len(fields)])
        for i, converters, expression in _converters(model, connection.vendor):
            for converter in converters:
                values[i] = converter(values[i], expression, connection)
        found.append(model.from_db(connection.alias, None, values))
        at += len(fields)
    return found


@cache
def _converters(model: type[Model], vendor: str) -> list[tuple[int, list, object]]:
    # What the compiler's get_converters finds for these columns, once per model: the backend's
    # converters use settings shared by every connection of the database, never the thread's.
    found = []
    for i, field in enumerate(model._meta.concrete_fields):
        expression = field.get_col(model._meta.db_table)
        converters = connection.ops.get_db_converters(expression) + expression.get_db_converters(connection)
        if converters:
            found.append((i, converters, expression))
    return found
