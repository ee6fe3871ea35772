"""Where local infrastructure keeps downloads (`.cache/`) and state (`.local/`): inside the checkout, git-ignored."""

from __future__ import annotations

import os
from pathlib import Path


def project_root() -> Path:
    """The checkout: ANPR_PROJECT_DIR if set, else the directory holding this package's pyproject.toml, else cwd."""
    explicit = os.environ.get("ANPR_PROJECT_DIR")
    if explicit:
        return Path(explicit).resolve()
    candidate = Path(__file__).resolve().parents[2]
    if (candidate / "pyproject.toml").is_file() and (candidate / "deploy" / "local").is_dir():
        return candidate
    return Path.cwd().resolve()


def cache_dir() -> Path:
    return project_root() / ".cache"


def state_dir() -> Path:
    explicit = os.environ.get("ANPR_LOCAL_STATE_DIR")
    return Path(explicit).resolve() if explicit else project_root() / ".local"
