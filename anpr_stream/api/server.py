"""The API as served: the core app with every router. One place to add a router."""

from __future__ import annotations

from fastapi import FastAPI

from anpr_stream.api import dpo
from anpr_stream.api.app import create_app
from anpr_stream.config import Settings


def build_app(settings: Settings) -> FastAPI:
    return create_app(settings, routers=(dpo.router,))
