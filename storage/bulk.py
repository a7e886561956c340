"""Statements of one shape whatever the number of rows, for the desks' lots on PostgreSQL.

A multi-row INSERT … VALUES or an IN (…) list renders different SQL for every lot size:
asyncpg then prepares each (one more round trip, and the server parses and plans a
statement of hundreds of parameters) on a path where a lot's statements run one after
the other. Here the values travel as one array per column (unnest()ed, or `= ANY`), so
each statement is prepared once per connection. SQLite keeps the plain forms (in
process, nothing to prepare).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import ColumnElement, Insert, Table, any_, bindparam, func, select
from sqlalchemy.orm import InstrumentedAttribute
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncSession


def unnest_insert(table: Table, names: Sequence[str], returning: Sequence[str] = ()) -> Insert:
    """INSERT INTO table (names) SELECT * FROM unnest(one array per column) [RETURNING …].
    Columns left out get NULL (no Python-side default): a row names every column it needs.
    Execute with `arrays(rows, names)`."""
    rows = func.unnest(*(bindparam(n, type_=ARRAY(table.c[n].type)) for n in names)) \
        .table_valued(*names).render_derived()
    stmt = table.insert().from_select(list(names), select(*(rows.c[n] for n in names)), include_defaults=False)
    return stmt.returning(*(table.c[n] for n in returning)) if returning else stmt


def arrays(rows: Sequence[Mapping[str, Any]], names: Sequence[str]) -> dict[str, list[Any]]:
    """The parameters of an `unnest_insert`: one list per column, in row order."""
    return {n: [r[n] for r in rows] for n in names}


def any_of(column: ColumnElement[Any] | InstrumentedAttribute[Any], name: str) -> ColumnElement[bool]:
    """`column = ANY(:name)` (PostgreSQL): one shape whatever the number of values (a list)."""
    return column == any_(bindparam(name, type_=ARRAY(column.type)))


def on_postgresql(session: AsyncSession) -> bool:
    bind = session.bind
    return bind is not None and bind.dialect.name == "postgresql"


def among(session: AsyncSession, column: ColumnElement[Any] | InstrumentedAttribute[Any], values: Sequence[Any]) -> ColumnElement[bool]:
    """`column IN values`: `= ANY(array)` on PostgreSQL (one shape), IN (…) elsewhere."""
    if on_postgresql(session):
        return column == any_(bindparam(None, value=list(values), type_=ARRAY(column.type)))
    return column.in_(values)
