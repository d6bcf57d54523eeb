#!/usr/bin/env bash
# Run every test that this machine can run: pytest (GPU tests skip with a reason where there
# is no GPU; Triton kernels run through the interpreter) and the C++ unit tests via ctest.
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "${repo_root}"
.venv/bin/python -m pytest "$@"
bash tools/cpp_tests.sh
