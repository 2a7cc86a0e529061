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


# ---- matchmaking sessions (issue 7) -------------------------------------------------------------
SESSION_ENTERPRISES = ("星火电池有限公司", "=HYPERLINK(\"x\")科技", "<b>华信</b>通信")


def add_session_demands(settings: Settings, per_enterprise: int = 2) -> list[str]:
    """Demands written from stored patents' abstracts, so their patents are strong (强) matches, as real demands
    of the demo data are not; one enterprise per group of `per_enterprise` patents (the names test escaping).
    Indexes them and returns the patent ids they were written from."""
    from indexer.pipeline import open_store, sync_index
    from indexer.records import Demand

    store = open_store(settings)
    patents = store.list("patents", limit=per_enterprise * len(SESSION_ENTERPRISES))
    demands = [Demand(id=f"SD-{i}", title=p.title, text="我们企业需要这样的技术：" + p.abstract[:200],
                      enterprise=SESSION_ENTERPRISES[i // per_enterprise]) for i, p in enumerate(patents)]
    store.upsert("demands", demands)
    sync_index(settings, kinds=("demands",))
    return [p.id for p in patents]
