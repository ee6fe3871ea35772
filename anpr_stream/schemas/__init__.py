"""The JSON Schemas of the service's messages, shipped as package data (an installed wheel finds them here)."""

from __future__ import annotations

import json
from importlib.resources import files
from typing import Any


def load(name: str) -> dict[str, Any]:
    """A schema by file name, e.g. "reading.schema.json"."""
    data: dict[str, Any] = json.loads(files(__name__).joinpath(name).read_text(encoding="utf-8"))
    return data
