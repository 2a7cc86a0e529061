"""Ray Data batch embedding (indexer/ray_embed.py) in local mode: the cache it fills lets the normal sync
build the same artefacts as a single-machine build, with no text reaching the model again."""
from __future__ import annotations

import json
import sys

import numpy as np
import pytest

from indexer import encoder as encoder_mod
from indexer import index as index_mod
from indexer.pipeline import ingest_file, sync_index
from indexer.settings import Settings
from tests.conftest import demo_rows, write_jsonl
from tests.indexer import test_index
from tests.indexer.test_index import hash_embed

MODEL = "test:hash-encoder"


class HashEncoder:
    """The Encoder surface the indexer uses, with hash vectors instead of a model (prefixes applied)."""

    dim = test_index.DIM
    cache_key = encoder_mod.cache_key_for(Settings(model=MODEL))  # the model plus the precision it runs at
    name = MODEL

    def __init__(self, settings: Settings):
        self.prefixes = {"query": settings.query_prefix, "passage": settings.passage_prefix}

    def prefix(self, kind: str) -> str:
        return self.prefixes[kind]

    def encode(self, texts, kind: str, shapes: str = "exact") -> np.ndarray:  # shapes only matter to a model
        return hash_embed([self.prefix(kind) + t for t in texts])


class RefusingEncoder(HashEncoder):
    def encode(self, texts, kind: str, shapes: str = "exact") -> np.ndarray:
        if texts:
            raise AssertionError(f"{len(texts)} texts reached the model although Ray embedded them all")
        return super().encode(texts, kind, shapes)


@pytest.fixture(scope="module")
def local_ray():
    import ray
    from ray import cloudpickle  # Ray's vendored copy is the one that pickles for its workers

    from indexer.ray_embed import start_ray

    # Ray ships the encoder factory to its workers; these test modules are not importable there.
    for module in (sys.modules[__name__], test_index):
        cloudpickle.register_pickle_by_value(module)
    start_ray(num_cpus=1)
    yield
    ray.shutdown()


def _workspace(root, name: str, n_patents: int = 30, n_demands: int = 8) -> Settings:
    settings = Settings.from_env(home=root / name, model=MODEL)
    ingest_file(settings, "patents", write_jsonl(root / f"{name}-p.jsonl", demo_rows("patents", n_patents)))
    ingest_file(settings, "demands", write_jsonl(root / f"{name}-d.jsonl", demo_rows("demands", n_demands)))
    return settings


def _generation(settings: Settings, kind: str) -> tuple[str, dict, list[dict]]:
    gen = index_mod.kind_dir(settings.index_dir, kind) / index_mod.current_generation(settings.index_dir, kind)
    manifest = json.loads((gen / "manifest.json").read_text(encoding="utf-8"))
    manifest.pop("created")
    docs = [json.loads(line) for line in (gen / "docs.jsonl").read_text(encoding="utf-8").splitlines()]
    return gen.name, manifest, docs


def test_ptm_index_ray_builds_the_same_index_as_one_machine(tmp_path, monkeypatch, capsys, local_ray):
    from api.cli import main
    from indexer import ray_embed

    monkeypatch.setenv("PTM_MODEL", MODEL)
    single = _workspace(tmp_path, "single")
    monkeypatch.setattr(encoder_mod, "load_encoder", HashEncoder)
    sync_index(single)

    distributed = _workspace(tmp_path, "ray")
    monkeypatch.setattr(ray_embed, "default_factory", HashEncoder)  # what the Ray actors build
    monkeypatch.setattr(encoder_mod, "load_encoder", RefusingEncoder)  # the sync after Ray must embed nothing
    assert main(["--home", str(distributed.home), "index", "--ray", "--ray-workers", "1"]) == 0
    out = capsys.readouterr().out
    assert "patents: 30 texts, 0 already cached, 30 embedded on Ray" in out
    assert "demands: 8 texts, 0 already cached, 8 embedded on Ray" in out

    for kind in ("patents", "demands"):
        assert _generation(distributed, kind) == _generation(single, kind)
        a = index_mod.load_snapshot(single.index_dir, kind)
        b = index_mod.load_snapshot(distributed.index_dir, kind)
        assert b.hashes == a.hashes
        for i in a.hashes:
            np.testing.assert_allclose(b.vector(i), a.vector(i), rtol=1e-6)
            assert (b.tokens[i], b.words[i]) == (a.tokens[i], a.words[i])

    again = ray_embed.embed_with_ray(distributed, factory=HashEncoder)  # everything cached: no Ray job at all
    assert [(r.cached, r.embedded) for r in again] == [(30, 0), (8, 0)]


def test_workers_with_another_encoder_are_refused(tmp_path, local_ray):
    from indexer.ray_embed import embed_with_ray

    class Elsewhere(HashEncoder):
        cache_key = "another-model"

    settings = _workspace(tmp_path, "ws", n_patents=3, n_demands=1)
    with pytest.raises(RuntimeError, match="same model"):
        embed_with_ray(settings, ("patents",), factory=Elsewhere)
