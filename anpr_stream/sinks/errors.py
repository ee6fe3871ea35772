"""What a failed database operation means: wait it out (the server or the connection is unavailable), isolate the
records that caused it (the data cannot be stored: retrying the same rows fails forever), or neither (a privilege, a
missing table: an operator's fix)."""

from __future__ import annotations

import asyncpg
from asyncpg.exceptions import _base as asyncpg_base

# SQLSTATE classes that mean "the server or the connection is unavailable", or a conflict that a retry resolves:
# 08 connection exception, 40 transaction rollback (serialization failure, deadlock), 53 insufficient resources,
# 57 operator intervention (shutdown, cannot connect now), 58 system error.
_RETRIABLE_SQLSTATE_CLASSES = frozenset({"08", "40", "53", "57", "58"})
# The statement's data is wrong: 22 data exception (NUL in text, untranslatable character, value out of range, invalid
# JSON), 23 integrity constraint violation (a check or not-null), 54 program limit exceeded (an index row too large).
_DATA_SQLSTATE_CLASSES = frozenset({"22", "23", "54"})


def _sqlstate(exc: BaseException) -> str:
    return str(getattr(exc, "sqlstate", "") or "")


def db_retriable(exc: BaseException) -> bool:
    """Connection trouble with PostgreSQL is waited out (consumption stops meanwhile)."""
    if isinstance(exc, asyncpg_base.DataError):
        return False  # asyncpg could not encode a value: the data's fault, a subclass of InterfaceError
    if isinstance(exc, OSError | TimeoutError | asyncpg.InterfaceError | asyncpg.exceptions.InternalClientError):
        # InternalClientError: asyncpg's state after the server dropped the connection under it (seen when a
        # pooled connection is reset during a server shutdown).
        return True
    if isinstance(exc, asyncpg.PostgresError):
        return _sqlstate(exc)[:2] in _RETRIABLE_SQLSTATE_CLASSES
    return False


def data_error(exc: BaseException) -> bool:
    """The rows cannot be stored as they are: retrying them cannot succeed; the records responsible are isolated."""
    if isinstance(exc, asyncpg_base.DataError | UnicodeError | OverflowError):
        return True
    if isinstance(exc, asyncpg.PostgresError):
        return _sqlstate(exc)[:2] in _DATA_SQLSTATE_CLASSES
    return isinstance(exc, ValueError | TypeError)  # encoding a value for the wire (orjson, asyncpg's codecs)


def describe(exc: BaseException) -> str:
    """The store's error as a dead letter's reason."""
    state = _sqlstate(exc)
    text = str(exc).strip() or type(exc).__name__
    return f"the database refused the read ({type(exc).__name__}{f' SQLSTATE {state}' if state else ''}: {text})"
