"""Every adapter by format name, and the detection of a payload's format for sources declared "auto"."""

from __future__ import annotations

import importlib
from collections.abc import Callable

from anpr_stream.gateway.model import Adapter, Payload, PayloadError

# Detection tries them in this order: ours first, then the vendors whose payloads carry a distinctive marker.
MODULES = ("native", "openalpr", "platerecognizer", "genetec", "verkada", "survision", "axis", "frigate")
_MODULES = [importlib.import_module(f"anpr_stream.gateway.adapters.{name}") for name in MODULES]
ADAPTERS: dict[str, Adapter] = {name: adapt for module in _MODULES for name, adapt in module.ADAPTERS.items()}
DETECTORS: dict[str, Callable[[Payload], bool]] = {
    name: detect for module in _MODULES for name, detect in module.DETECTORS.items()
}
AUTO = "auto"


def formats() -> list[str]:
    return sorted(ADAPTERS)


def detect(payload: Payload) -> str:
    """The format a payload is in, by the adapters' own checks in a fixed order (ours first); PayloadError if none
    recognises it."""
    for name, looks_like in DETECTORS.items():
        try:
            if looks_like(payload):
                return name
        except Exception:
            continue
    raise PayloadError(f"the payload is in none of the known formats ({', '.join(formats())})")


def adapter_for(format_name: str, payload: Payload) -> tuple[str, Adapter]:
    name = detect(payload) if format_name == AUTO else format_name
    return name, ADAPTERS[name]
