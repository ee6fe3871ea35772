"""The API as served: the core app with every router. One place to add a router."""

from __future__ import annotations

from fastapi import FastAPI

from anpr_stream.api import dpo, investigate, live, watchlist_entries
from anpr_stream.api.app import create_app
from anpr_stream.config import Settings
from anpr_stream.console import routes as console


def build_app(settings: Settings) -> FastAPI:
    routers = (investigate.router, watchlist_entries.router, dpo.router, live.router, console.router)
    app = create_app(settings, routers=routers)
    live.attach(app)  # the live hits feed runs in the app's lifespan
    return app
