"""Timing helpers shared by the GPU benchmarks run from bench/gpu_check.sh."""

from __future__ import annotations

from collections.abc import Callable

import torch


def cuda_time_seconds(fn: Callable[[], object], *, warmup: int = 3, repeats: int = 10) -> float:
    """Median wall time of `fn()` on the current CUDA stream, synchronised with events."""
    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(repeats):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        end.record()
        torch.cuda.synchronize()
        times.append(start.elapsed_time(end) / 1e3)
    return sorted(times)[len(times) // 2]


def copy_bandwidth_gbps(num_bytes: int = 2 * 1024**3) -> float:
    """Device-to-device copy bandwidth in GB/s (bytes read + bytes written per second)."""
    source = torch.empty(num_bytes // 4, dtype=torch.float32, device="cuda")
    target = torch.empty_like(source)
    seconds = cuda_time_seconds(lambda: target.copy_(source))
    return 2 * num_bytes / seconds / 1e9


def markdown_table(header: list[str], rows: list[list[object]]) -> str:
    """A Markdown table, ready to paste into a README."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)
