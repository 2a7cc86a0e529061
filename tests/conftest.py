"""Shared fixtures: throw-away workspaces, and one small real-encoder workspace reused by slow tests."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from indexer.settings import DATASETS_DIR, Settings

DEMO = DATASETS_DIR / "demo"


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings.from_env(home=tmp_path / "ws")


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


def demo_rows(kind: str, n: int) -> list[dict]:
    with open(DEMO / f"{kind}.jsonl", encoding="utf-8") as fh:
        return [json.loads(line) for line, _ in zip(fh, range(n))]


@pytest.fixture(scope="session")
def small_corpus(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The first 80 demo patents and 12 demo demands, as JSONL files (real texts)."""
    d = tmp_path_factory.mktemp("corpus")
    return write_jsonl(d / "patents.jsonl", demo_rows("patents", 80)), write_jsonl(d / "demands.jsonl", demo_rows("demands", 12))


@pytest.fixture(scope="session")
def indexed_settings(tmp_path_factory: pytest.TempPathFactory, small_corpus: tuple[Path, Path]) -> Settings:
    """A workspace with the small corpus ingested and indexed by the real bundled encoder."""
    from indexer.pipeline import ingest_file, sync_index

    s = Settings.from_env(home=tmp_path_factory.mktemp("indexed"))
    ingest_file(s, "patents", small_corpus[0])
    ingest_file(s, "demands", small_corpus[1])
    sync_index(s)
    return s


@pytest.fixture(scope="module")
def writable_indexed_settings(tmp_path_factory: pytest.TempPathFactory, indexed_settings: Settings) -> Settings:
    """A private copy of the indexed workspace, for tests that add or change records."""
    import shutil
    from dataclasses import replace

    home = tmp_path_factory.mktemp("writable") / "ws"
    shutil.copytree(indexed_settings.home, home)
    return replace(indexed_settings, home=home)
