"""The index backend contract (test_backend_contract.py) on the FAISS + bm25s backend (indexer/index.py)."""
from __future__ import annotations

import pytest

from indexer.backends import BACKENDS, get_backend
from indexer.settings import Settings
from tests.indexer.test_backend_contract import BackendContract


class TestFaissBackend(BackendContract):
    backend = "faiss"


def test_an_unknown_backend_is_refused_with_the_options():
    with pytest.raises(ValueError, match="backend must be one of faiss, qdrant, not 'milvus'"):
        Settings.from_env(backend="milvus")
    with pytest.raises(ValueError, match="faiss, qdrant"):
        get_backend(Settings(backend="milvus"))  # type: ignore[arg-type]  # bypasses validate()
    assert BACKENDS == ("faiss", "qdrant")
