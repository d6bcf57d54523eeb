#!/usr/bin/env bash
# Configure, build and run the C++ unit tests of lfe's hash-table core.
#
# Needs cmake, ninja, a C++17 compiler and GoogleTest (Debian/Ubuntu: libgtest-dev).
# Installs nothing. Builds into build/cmake (override with LFE_CMAKE_BUILD_DIR). The CUDA core
# is compiled too when nvcc is found, unless LFE_SKIP_CUDA=1.
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build_dir="${LFE_CMAKE_BUILD_DIR:-${repo_root}/build/cmake}"

cmake -S "${repo_root}" -B "${build_dir}" -G Ninja -DCMAKE_BUILD_TYPE=Release \
  -DLFE_SKIP_CUDA="${LFE_SKIP_CUDA:-OFF}"
cmake --build "${build_dir}" --parallel
ctest --test-dir "${build_dir}" --output-on-failure --no-tests=error "$@"
