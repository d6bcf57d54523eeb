#!/usr/bin/env bash
# Set up a development environment from scratch: a virtual environment in .venv with the
# CPU build of torch, triton (its interpreter runs the Triton kernels on CPU), lfe with its
# compiled extension (editable), the test tools, and GoogleTest for the C++ tests.
#
# Safe to run again: what is already there is kept. PYTHON picks the interpreter.
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "${repo_root}"
python="${PYTHON:-python3}"
pip_quiet=(--quiet --disable-pip-version-check)

if [ ! -x .venv/bin/python ]; then
  "${python}" -m venv .venv
fi
# torch first and pinned: an unpinned torch (or pip's build isolation) would pull a
# multi-GB CUDA build; the extension then builds against this torch.
.venv/bin/pip install "${pip_quiet[@]}" "torch==2.13.0"
.venv/bin/pip install "${pip_quiet[@]}" "triton==3.9.*" ninja
LFE_STRICT_BUILD=1 .venv/bin/pip install "${pip_quiet[@]}" --no-build-isolation -e ".[dev]"

# GoogleTest for the C++ unit tests (Debian's package; skipped where apt is unavailable).
if [ ! -f /usr/include/gtest/gtest.h ] && command -v apt-get > /dev/null; then
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq && apt-get install -y -qq libgtest-dev > /dev/null
  else
    echo "setup: install GoogleTest (apt-get install libgtest-dev) for the C++ tests" >&2
  fi
fi

.venv/bin/python -c "import lfe, lfe._C; print('lfe', lfe.__version__, 'backends:', lfe.available_backends())"
