"""What a failed database operation means: wait it out (the server or the connection is unavailable), isolate the
records that caused it (the data cannot be stored: retrying the same rows fails forever), or neither (a privilege, a
missing table: an operator's fix)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

import asyncpg
from asyncpg.exceptions import _base as asyncpg_base

log = logging.getLogger(__name__)
T = TypeVar("T")

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


async def retrying(operation: Callable[[], Awaitable[T]], max_delay: float, on_retry: Callable[[], None]) -> T:
    """Retry through connection failures with capped exponential backoff (the caller waits meanwhile: consumption
    stops); whatever else fails is raised."""
    delay = 0.1
    while True:
        try:
            return await operation()
        except Exception as exc:
            if not db_retriable(exc):
                raise
            on_retry()
            log.warning("database unavailable (%s: %s); retrying in %.1f s", type(exc).__name__, exc, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, max_delay)
