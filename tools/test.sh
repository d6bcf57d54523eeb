#!/usr/bin/env bash
# Run every check this machine can run: ruff (lint and format), pytest (GPU tests skip
# with a reason where there is no GPU; Triton kernels run through the interpreter) and the
# C++ unit tests via ctest.
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "${repo_root}"
.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/python -m pytest "$@"
bash tools/cpp_tests.sh
