#!/usr/bin/env bash
# GPU check of lfe on a machine with an NVIDIA GPU, a CUDA build of torch, triton and nvcc
# (no internet needed): builds the extension with CUDA in place, runs the GPU tests and the
# GPU benchmarks, and prints their Markdown tables. Finishes within 8 minutes: every step runs
# under `timeout`, within what is left of the budget.
#
#   bench/gpu_check.sh OUTPUT_DIR        (PYTHON=... to choose the interpreter)
#
# The full log goes to OUTPUT_DIR/gpu_check.log; the exit status is 0 only if every step
# passed.
set -u -o pipefail

if [[ $# -ne 1 ]]; then
  echo "usage: $0 OUTPUT_DIR" >&2
  exit 2
fi
output_dir=$1
mkdir -p "$output_dir"
output_dir=$(cd "$output_dir" && pwd)
log="$output_dir/gpu_check.log"
exec > >(tee "$log") 2>&1

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"
python=${PYTHON:-python}
unset LFE_BACKEND
# Compiled Triton kernels, not the interpreter the CPU test runs use.
export TRITON_INTERPRET=0

budget_seconds=470  # 8 minutes, less a margin for the summary
deadline=$((SECONDS + budget_seconds))
declare -a summary=()
failed=0

# run_step NAME MAX_SECONDS COMMAND...: run COMMAND under a timeout of MAX_SECONDS or what is
# left of the budget, whichever is less, and record how it ended.
run_step() {
  local name=$1 max_seconds=$2
  shift 2
  local left=$((deadline - SECONDS))
  local limit=$((max_seconds < left ? max_seconds : left))
  if ((limit < 10)); then
    summary+=("| $name | skipped: time budget spent | 0 |")
    failed=1
    return
  fi
  echo
  echo "=== $name (at most ${limit}s) ==="
  local started=$SECONDS status=0
  timeout --kill-after=5 "$limit" "$@" || status=$?
  local took=$((SECONDS - started))
  if ((status == 0)); then
    summary+=("| $name | passed | $took |")
  elif ((status == 124 || status == 137)); then
    summary+=("| $name | timed out after ${limit}s | $took |")
    failed=1
  else
    summary+=("| $name | failed (exit $status) | $took |")
    failed=1
  fi
}

commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
echo "lfe GPU check, $(date -u '+%Y-%m-%d %H:%M:%S UTC'), commit $commit"
nvidia-smi -L || true
"$python" -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda,
      "device", torch.cuda.get_device_name() if torch.cuda.is_available() else None)'
nvcc --version | tail -1 || true

run_step "CUDA device visible to torch" 30 "$python" -c '
import torch
assert torch.cuda.is_available(), "torch sees no CUDA device: GPU tests would only be skipped"'

# One architecture (the GPU's own, default sm_90 for an H200) keeps the build short.
export TORCH_CUDA_ARCH_LIST=${TORCH_CUDA_ARCH_LIST:-9.0}
export MAX_JOBS=${MAX_JOBS:-$(nproc)}
# Editable, so that kernels/ is importable as lfe.kernels and lfe._C is built in place.
run_step "build lfe._C with CUDA" 280 \
  env LFE_STRICT_BUILD=1 LFE_FORCE_CUDA=1 "$python" -m pip install --quiet --no-deps \
  --no-build-isolation -e .
run_step "CUDA backend importable" 30 "$python" -c '
from lfe.id_map.cuda_backend import is_built
assert is_built(), "lfe._C has no CudaIdMap: the CUDA part of the extension was not built"
print("lfe.id_map.cuda_backend.is_built() is True")'

run_step "pytest -m gpu tests/" 100 \
  "$python" -m pytest -m gpu tests/ -q -o addopts=-ra -p no:cacheprovider \
  --continue-on-collection-errors

run_step "device-to-device copy bandwidth" 30 "$python" -c '
import sys; sys.path.insert(0, "bench")
from gpu_common import copy_bandwidth_gbps
print(f"device-to-device copy bandwidth: {copy_bandwidth_gbps():.0f} GB/s (read + write)")'

run_step "bench/gpu_bench_id_map.py" 90 "$python" bench/gpu_bench_id_map.py
if [[ -f bench/gpu_bench_kernels.py ]]; then
  run_step "bench/gpu_bench_kernels.py" 90 "$python" bench/gpu_bench_kernels.py
fi

echo
echo "### GPU check summary"
echo
echo "| step | result | seconds |"
echo "|---|---|---|"
printf '%s\n' "${summary[@]}"
echo
echo "log: $log"
exit "$failed"
