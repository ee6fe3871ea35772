"""The database side of the subcommands: the URL from the environment, and one connection for one piece of work."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable
from typing import TypeVar

import asyncpg

from anpr_stream import config

T = TypeVar("T")


def database_url() -> str | None:
    """ANPR_DATABASE_URL, or None after saying on stderr how to get one."""
    url: str | None = config.value("ANPR_DATABASE_URL")
    if not url:
        print('anpr-stream: ANPR_DATABASE_URL is not set (run `eval "$(make -s infra)"` for the local services)',
              file=sys.stderr)  # fmt: skip
    return url or None


def on_connection(url: str, work: Callable[[asyncpg.Connection], Awaitable[T]]) -> T:
    """Run `work` on a fresh connection, closed afterwards whatever happens."""

    async def run() -> T:
        conn = await asyncpg.connect(url)
        try:
            return await work(conn)
        finally:
            await conn.close()

    return asyncio.run(run())
