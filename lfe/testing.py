"""Helpers for tests of lfe and of code built on it."""

from __future__ import annotations

import torch


def assert_close(actual: torch.Tensor, expected: torch.Tensor, *, atol=0.0, rtol=0.0, msg=""):
    """Assert two tensors are equal within tolerance, naming the first mismatching indices.

    With the default tolerances the comparison is exact (bit-for-bit for finite values).
    """
    if actual.shape != expected.shape:
        raise AssertionError(
            f"{msg} shapes differ: {tuple(actual.shape)} vs {tuple(expected.shape)}"
        )
    actual_f, expected_f = actual.detach().double().cpu(), expected.detach().double().cpu()
    bad = ~torch.isclose(actual_f, expected_f, atol=atol, rtol=rtol, equal_nan=True)
    if bool(bad.any()):
        where = bad.nonzero()[:5].tolist()
        pairs = [(idx, actual_f[tuple(idx)].item(), expected_f[tuple(idx)].item()) for idx in where]
        raise AssertionError(
            f"{msg} {int(bad.sum())} of {bad.numel()} elements differ (atol={atol}, rtol={rtol}); "
            f"first (index, actual, expected): {pairs}"
        )


def id_map_backend_params() -> list:
    """pytest parameters, one per IdMap backend, for `@pytest.mark.parametrize("backend", ...)`.

    "torch" always runs; "cpu" is skipped, with the reason, where the C++ extension is not
    built; "cuda" is marked `gpu` (skipped where no CUDA device is visible) and skipped where
    the CUDA extension is not built. `id_map_device(backend)` gives the device each one uses.
    """
    import pytest

    from lfe.id_map.id_map import compiled_backend_class

    cpu_missing = compiled_backend_class("cpu") is None
    cuda_missing = torch.cuda.is_available() and compiled_backend_class("cuda") is None
    return [
        pytest.param("torch", id="torch"),
        pytest.param(
            "cpu",
            id="cpu",
            marks=pytest.mark.skipif(
                cpu_missing,
                reason="C++ extension lfe._C not built: pip install --no-build-isolation -e .",
            ),
        ),
        pytest.param(
            "cuda",
            id="cuda",
            marks=[
                pytest.mark.gpu,
                pytest.mark.skipif(
                    cuda_missing, reason="CUDA extension of lfe._C not built (needs nvcc)"
                ),
            ],
        ),
    ]


def id_map_device(backend: str) -> torch.device:
    """The device an IdMap of `backend` is tested on: CUDA for "cuda", else the CPU."""
    return torch.device("cuda" if backend == "cuda" else "cpu")
