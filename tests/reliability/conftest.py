"""Reliability fixtures: a private copy of the small indexed workspace with the harness accounts and tokens."""
from __future__ import annotations

import shutil
from dataclasses import dataclass, replace
from pathlib import Path

import pytest

from indexer.settings import Settings
from tests.reliability.live_server import seed_accounts


@dataclass(frozen=True)
class LiveWorkspace:
    settings: Settings
    accounts: dict[str, str]  # see live_server.seed_accounts


@pytest.fixture
def live_workspace(indexed_settings: Settings, tmp_path: Path) -> LiveWorkspace:
    home = tmp_path / "ws"
    shutil.copytree(indexed_settings.home, home)
    return LiveWorkspace(replace(indexed_settings, home=home), seed_accounts(home / "ptm.sqlite"))
