"""The Triton kernels against their plain-PyTorch references.

CPU tensors run through Triton's interpreter, which must be switched on before Triton is
imported, hence the environment line above the imports. The `gpu` tests run the compiled
kernels on CUDA tensors: on a GPU machine use `TRITON_INTERPRET=0 pytest -m gpu`.
"""

import os

os.environ.setdefault("TRITON_INTERPRET", "1")

import pytest  # noqa: E402
import torch  # noqa: E402

from lfe.ops import load_kernels  # noqa: E402

kernels = load_kernels()
if kernels is None:
    pytest.skip("Triton is not installed", allow_module_level=True)
from lfe.kernels import reference  # noqa: E402

INTERPRETED = os.environ["TRITON_INTERPRET"] == "1"

DIMS = [1, 3, 33, 127, 128, 1025]
STORAGE_DTYPES = [torch.float32, torch.bfloat16, torch.float16]
DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.gpu)]

# (rtol, atol) for sums against the float64 reference, which rounds once at the end.
TOLERANCES = {
    # float32 accumulation in another order than the reference: a few float32 ulps.
    torch.float32: (1e-5, 1e-5),
    # The float32 sum and the exact sum may round to neighbouring float16 values (2**-10).
    torch.float16: (2**-10, 1e-5),
    # The same for bfloat16, whose neighbouring values are up to 2**-7 apart.
    torch.bfloat16: (2**-7, 1e-5),
    # float64 storage accumulates in float64; only the order of additions differs.
    torch.float64: (1e-12, 1e-12),
}


def close(actual: torch.Tensor, expected: torch.Tensor) -> None:
    rtol, atol = TOLERANCES[expected.dtype]
    torch.testing.assert_close(actual.cpu(), expected.cpu(), rtol=rtol, atol=atol)


@pytest.fixture
def device(request) -> str:
    name = request.param
    if name == "cpu" and not INTERPRETED:
        pytest.skip("CPU tensors need TRITON_INTERPRET=1 (set before Triton is imported)")
    if name == "cuda" and INTERPRETED:
        pytest.skip("TRITON_INTERPRET=1 would interpret the CUDA run; run with TRITON_INTERPRET=0")
    return name


def table(num_rows: int, dim: int, dtype: torch.dtype, device: str, generator) -> torch.Tensor:
    return torch.randn(num_rows, dim, generator=generator, dtype=torch.float64).to(dtype).to(device)


def random_rows(count: int, high: int, device: str, generator) -> torch.Tensor:
    return torch.randint(0, high, (count,), generator=generator).to(device)


def random_indptr(num_bags: int, nnz: int, device: str, generator) -> torch.Tensor:
    """CSR boundaries with empty bags among them (the first and the last bag on purpose)."""
    cuts = torch.randint(0, nnz + 1, (num_bags - 1,), generator=generator).sort().values
    indptr = torch.cat([torch.tensor([0, 0]), cuts[1:], torch.tensor([nnz, nnz])])
    return indptr[: num_bags + 1].contiguous().to(device) if num_bags > 1 else indptr[:2]


# Gather -------------------------------------------------------------------------------------


@pytest.mark.parametrize("device", DEVICES, indirect=True)
@pytest.mark.parametrize("dtype", STORAGE_DTYPES)
@pytest.mark.parametrize("dim", DIMS)
def test_gather_is_exact(dim, dtype, device, generator):
    weight = table(23, dim, dtype, device, generator)
    rows = random_rows(37, 23, device, generator)
    assert torch.equal(kernels.gather(weight, rows), reference.gather_reference(weight, rows))


@pytest.mark.parametrize("device", DEVICES, indirect=True)
def test_gather_strided_table_and_duplicates(device, generator):
    storage = table(40, 70, torch.float32, device, generator)
    weight = storage[5:30, 3:36]  # row stride 70, the view a table's spare capacity gives
    rows = torch.tensor([4, 4, 4, 0, 24, 4, 4], device=device)
    assert torch.equal(kernels.gather(weight, rows), weight[rows])


@pytest.mark.parametrize("device", DEVICES, indirect=True)
def test_gather_empty(device, generator):
    weight = table(5, 3, torch.float32, device, generator)
    out = kernels.gather(weight, torch.empty(0, dtype=torch.int64, device=device))
    assert out.shape == (0, 3)


# Pooled gather ------------------------------------------------------------------------------


def check_pooled(weight, rows, indptr, mode, per_sample_weights=None):
    out, argmax = kernels.pooled_gather(weight, rows, indptr, mode, per_sample_weights)
    expected, expected_argmax = reference.pooled_gather_reference(
        weight, rows, indptr, mode, per_sample_weights
    )
    if mode == "max":
        # A max selects one stored value, so it is exact in every dtype.
        assert torch.equal(out, expected)
        assert torch.equal(argmax, expected_argmax)
    else:
        close(out, expected)


@pytest.mark.parametrize("device", DEVICES, indirect=True)
@pytest.mark.parametrize("mode", ["sum", "mean", "max"])
@pytest.mark.parametrize("dim", DIMS)
def test_pooled_gather_dims(dim, mode, device, generator):
    weight = table(19, dim, torch.float32, device, generator)
    rows = random_rows(29, 19, device, generator)
    check_pooled(weight, rows, random_indptr(7, 29, device, generator), mode)


@pytest.mark.parametrize("device", DEVICES, indirect=True)
@pytest.mark.parametrize("mode", ["sum", "mean", "max", "weighted sum"])
@pytest.mark.parametrize("dtype", [*STORAGE_DTYPES, torch.float64])
def test_pooled_gather_dtypes(dtype, mode, device, generator):
    weight = table(11, 33, dtype, device, generator)
    rows = random_rows(41, 11, device, generator)  # 41 entries over 11 rows: many repeats
    indptr = random_indptr(6, 41, device, generator)
    per_sample_weights = None
    if mode == "weighted sum":
        mode, per_sample_weights = "sum", table(41, 1, dtype, device, generator)[:, 0]
    check_pooled(weight, rows, indptr, mode, per_sample_weights)


@pytest.mark.parametrize("device", DEVICES, indirect=True)
@pytest.mark.parametrize("mode", ["sum", "mean", "max"])
def test_pooled_gather_empty(mode, device, generator):
    weight = table(5, 3, torch.float32, device, generator)
    rows = torch.empty(0, dtype=torch.int64, device=device)
    out, _ = kernels.pooled_gather(
        weight, rows, torch.zeros(4, dtype=torch.int64, device=device), mode
    )
    assert torch.equal(out, torch.zeros(3, 3, device=device))
    out, _ = kernels.pooled_gather(
        weight, rows, torch.zeros(1, dtype=torch.int64, device=device), mode
    )
    assert out.shape == (0, 3)


# Scatter-add --------------------------------------------------------------------------------


@pytest.mark.parametrize("device", DEVICES, indirect=True)
@pytest.mark.parametrize("dtype", [*STORAGE_DTYPES, torch.float64])
@pytest.mark.parametrize("dim", DIMS)
def test_scatter_add(dim, dtype, device, generator):
    grad = table(45, dim, dtype, device, generator)
    rows = random_rows(45, 6, device, generator)  # heavy duplicates: ~8 entries per row
    unique_rows, grad_rows = kernels.scatter_add(grad, rows)
    expected_rows, expected = reference.scatter_add_reference(grad, rows)
    assert torch.equal(unique_rows, expected_rows)
    close(grad_rows, expected)


@pytest.mark.parametrize("device", DEVICES, indirect=True)
def test_scatter_add_is_deterministic(device, generator):
    grad = table(300, 5, torch.float32, device, generator) * 1e3
    rows = random_rows(300, 3, device, generator)
    first = kernels.scatter_add(grad, rows)[1]
    second = kernels.scatter_add(grad, rows)[1]
    assert torch.equal(first.view(torch.int32), second.view(torch.int32))


@pytest.mark.parametrize("device", DEVICES, indirect=True)
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_scatter_add_bag_backwards(dtype, device, generator):
    """The three shapes of a pooled backward: per-bag source rows, scales, argmax routing."""
    weight = table(9, 33, dtype, device, generator)
    rows = random_rows(31, 9, device, generator)
    indptr = random_indptr(5, 31, device, generator)
    grad_out = table(5, 33, dtype, device, generator)
    source = reference.bag_of_entries(indptr)
    scale = table(31, 1, torch.float32, device, generator)[:, 0]
    _, argmax = kernels.pooled_gather(weight, rows, indptr, "max")
    for extra in [{}, {"scale": scale}, {"argmax": argmax}]:
        unique_rows, grad_rows = kernels.scatter_add(grad_out, rows, source=source, **extra)
        expected_rows, expected = reference.scatter_add_reference(
            grad_out, rows, source=source, **extra
        )
        assert torch.equal(unique_rows, expected_rows)
        close(grad_rows, expected)


@pytest.mark.parametrize("device", DEVICES, indirect=True)
def test_scatter_add_into_table_touches_used_rows_only(device, generator):
    grad = table(16, 130, torch.float32, device, generator)[:, 1:128]  # row stride 130
    rows = random_rows(16, 4, device, generator) * 3  # rows 0, 3, 6, 9 of 12
    out = torch.full((12, 127), 7.0, device=device)
    kernels.scatter_add(grad, rows, out=out)
    expected_rows, expected = reference.scatter_add_reference(grad, rows)
    close(out[expected_rows], expected)
    unused = torch.ones(12, dtype=torch.bool, device=device)
    unused[expected_rows] = False
    assert torch.equal(out[unused], torch.full_like(out[unused], 7.0))


@pytest.mark.parametrize("device", DEVICES, indirect=True)
def test_scatter_add_empty(device):
    grad = torch.empty(0, 3, device=device)
    unique_rows, grad_rows = kernels.scatter_add(
        grad, torch.empty(0, dtype=torch.int64, device=device)
    )
    assert unique_rows.shape == (0,) and grad_rows.shape == (0, 3)


# Segment mean (row initialisation) ----------------------------------------------------------


@pytest.mark.parametrize("device", DEVICES, indirect=True)
@pytest.mark.parametrize("dtype", [*STORAGE_DTYPES, torch.float64])
@pytest.mark.parametrize("dim", DIMS)
def test_segment_mean(dim, dtype, device, generator):
    weight = table(13, dim, dtype, device, generator)
    indices = random_rows(22, 13, device, generator)
    indptr = random_indptr(5, 22, device, generator)
    weights = torch.rand(22, generator=generator).to(device)
    noise = table(5, dim, torch.float32, device, generator)
    for kwargs in [
        {},
        {"weights": weights},
        {"noise": noise},
        {"weights": weights, "noise": noise},
    ]:
        out = kernels.segment_mean(weight, indptr, indices, **kwargs)
        close(out, reference.segment_mean_reference(weight, indptr, indices, **kwargs))


@pytest.mark.parametrize("device", DEVICES, indirect=True)
def test_segment_mean_writes_into_spare_capacity(device, generator):
    storage = table(10, 7, torch.float32, device, generator)
    before = storage.clone()
    indptr = torch.tensor([0, 2, 2, 3, 5], device=device)  # an empty segment, then a zero sum
    indices = torch.tensor([0, 3, 5, 1, 2], device=device)
    weights = torch.tensor([1.0, 3.0, 2.0, 1.0, -1.0], device=device)
    kernels.segment_mean(storage[:6], indptr, indices, weights, out=storage[6:10])
    expected = reference.segment_mean_reference(before[:6], indptr, indices, weights)
    close(storage[6:10], expected)
    assert torch.equal(storage[:6], before[:6])  # existing rows stay bit-for-bit as they were
    assert torch.equal(storage[7], torch.zeros(7, device=device))


@pytest.mark.parametrize("device", DEVICES, indirect=True)
def test_segment_mean_empty(device, generator):
    weight = table(5, 3, torch.float32, device, generator)
    none = torch.empty(0, dtype=torch.int64, device=device)
    assert kernels.segment_mean(
        weight, torch.zeros(1, dtype=torch.int64, device=device), none
    ).shape == (0, 3)
