"""Statements written in SQL, for the few that every booking or API request makes.

The ORM spends 0.5–1 ms of Python building and compiling a query, against ~0.1 ms for the same
statement through a cursor (docs/performance.md, History "2026-11-22 (later)"). Everything else
goes through the ORM; a statement moves here only when a benchmark shows its cost, keeps to
plain columns, and has a test holding it to the ORM's answer on SQLite and PostgreSQL. Reads use
``rows`` (with ``columns``/``instances`` for whole models); ``insert`` writes one new row of a
model exactly as ``Model.save()`` would, without its compiler.
"""

from __future__ import annotations

from datetime import UTC, datetime
from functools import cache

from django.db import connection
from django.db.models import Model
from django.db.models.expressions import DatabaseDefault


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


def insert(instance: Model) -> Model:
    """INSERT ``instance`` as a new row, as ``instance.save()`` would (defaults and
    ``auto_now_add`` filled in on the instance, each field's own preparation: encryption, JSON,
    UUIDs; an auto-increment key read back; a constraint's refusal raised as Django's
    ``IntegrityError``; an unsaved related object refused as ``save()`` refuses it) in one
    statement. Only for models without a ``save()`` of their own to run and without signal
    receivers (the project has none); the instance is saved afterwards as far as the ORM can
    tell."""
    model = type(instance)
    statement, fields, returned = _insert_statement(model, connection.vendor)
    instance._prepare_related_fields_for_save(operation_name="save")
    values = []
    for field in fields:
        value = field.pre_save(instance, True)
        if isinstance(value, DatabaseDefault):
            raise ValueError(f"sql.insert does not write database defaults ({model.__name__}.{field.name})")
        values.append(field.get_db_prep_save(value, connection))
    with connection.cursor() as cursor:
        cursor.execute(statement, values)
        if returned is not None:
            value = cursor.fetchone()[0] if connection.features.can_return_columns_from_insert else connection.ops.last_insert_id(cursor, model._meta.db_table, returned.column)
            setattr(instance, returned.attname, value)
    instance._state.adding = False
    instance._state.db = connection.alias
    return instance


@cache
def _insert_statement(model: type[Model], vendor: str) -> tuple[str, list, object | None]:
    # The statement once per model: every concrete column but a database-generated key (an
    # auto-increment primary key, read back with RETURNING where the database has it) and
    # generated columns, which the database computes.
    meta, quote = model._meta, connection.ops.quote_name
    returned = meta.pk if meta.pk in meta.db_returning_fields else None
    fields = [field for field in meta.local_concrete_fields if field is not returned and not field.generated]
    if meta.parents or len(meta.db_returning_fields) > (returned is not None):
        raise ValueError(f"sql.insert writes one table and reads back only an auto-increment key: not {model.__name__}")
    statement = f"INSERT INTO {quote(meta.db_table)} ({', '.join(quote(field.column) for field in fields)}) VALUES ({placeholders(fields)})"
    if returned is not None and connection.features.can_return_columns_from_insert:
        statement += f" RETURNING {quote(returned.column)}"
    return statement, fields, returned
