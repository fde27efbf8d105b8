"""SQLite inserts of many rows, a group of rows a statement."""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Sequence
from functools import lru_cache

from sqlalchemy.engine import Connection

ROWS_A_STATEMENT = 100
_VALUES = re.compile(r"VALUES (\((?:\?, )*\?\))")


def insert_in_groups(connection: Connection, sql: str, values: Sequence[tuple]) -> None:
    """SQLite: the one-row INSERT `sql` (a single `VALUES (?, ...)`) for every tuple of `values`, in order, up to
    ROWS_A_STATEMENT rows a statement (`VALUES (...), (...)`) and within the connection's limit of parameters.

    Not executemany: the driver gives up the interpreter lock for every row and must then wait to take it back.
    While the prefetch threads parse the next batches, each wait lasted up to the interpreter's switch interval
    (5 ms): with one busy thread beside it, saving 10,000 papers took 206 s against 4.4 s alone; in groups, 9.4 s.
    """
    if not values:
        return
    driver = connection.connection.dbapi_connection
    # 999: SQLite's limit before 3.32, for a driver that cannot tell.
    parameters = driver.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER) if isinstance(driver, sqlite3.Connection) else 999
    size = max(1, min(ROWS_A_STATEMENT, parameters // len(values[0])))
    for start in range(0, len(values), size):
        group = values[start:start + size]
        connection.exec_driver_sql(_grouped(sql, len(group)), tuple(value for row in group for value in row))


@lru_cache(maxsize=64)
def _grouped(sql: str, rows: int) -> str:
    found = _VALUES.search(sql)
    if found is None:
        raise ValueError(f"not a one-row INSERT ... VALUES (?, ...): {sql[:80]}")
    return f"{sql[:found.start(1)]}{', '.join([found.group(1)] * rows)}{sql[found.end(1):]}"


__all__ = ["ROWS_A_STATEMENT", "insert_in_groups"]
