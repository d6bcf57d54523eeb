"""`lfe.ops` on the Triton path against the PyTorch path: outputs and gradients.

The Triton path is forced on CPU tensors (LFE_FORCE_TRITON=1) and runs through Triton's
interpreter, switched on before Triton is imported. The `gpu` tests compare CUDA tensors
(compiled kernels) with the CPU path: on a GPU machine use `TRITON_INTERPRET=0 pytest -m gpu`.
"""

import os

os.environ.setdefault("TRITON_INTERPRET", "1")

import pytest  # noqa: E402
import torch  # noqa: E402

from lfe import ops  # noqa: E402
from lfe._autograd import EmbeddingBagFunction, EmbeddingFunction  # noqa: E402
from lfe.init.base import SegmentMean  # noqa: E402

if ops.load_kernels() is None:
    pytest.skip("Triton is not installed", allow_module_level=True)

INTERPRETED = os.environ["TRITON_INTERPRET"] == "1"
needs_interpreter = pytest.mark.skipif(
    not INTERPRETED, reason="CPU tensors need TRITON_INTERPRET=1 (set before Triton is imported)"
)

# (rtol, atol) between the two paths, which sum in different orders.
TOLERANCES = {
    # Both accumulate in float32; the order differs by a few float32 ulps.
    torch.float32: (1e-5, 1e-5),
    # torch's CPU path adds in bfloat16, rounding every partial sum (2**-8 of its size).
    torch.bfloat16: (2**-6, 3e-2),
    # The same in float16 (2**-11 of each partial sum).
    torch.float16: (2**-9, 4e-3),
    # float64 on both paths; only the order differs.
    torch.float64: (1e-12, 1e-12),
}


def close(actual: torch.Tensor, expected: torch.Tensor) -> None:
    rtol, atol = TOLERANCES[expected.dtype]
    actual, expected = actual.cpu(), expected.cpu()
    if actual.is_sparse:
        actual, expected = actual.to_dense(), expected.to_dense()
    torch.testing.assert_close(actual, expected, rtol=rtol, atol=atol)


@pytest.fixture
def triton_path(monkeypatch):
    """Run the body's `ops` calls on the Triton path; the fixture's value switches it."""

    def switch(on: bool) -> None:
        if on:
            monkeypatch.setenv("LFE_FORCE_TRITON", "1")
        else:
            monkeypatch.delenv("LFE_FORCE_TRITON", raising=False)

    return switch


def run_both(triton_path, fn, *tensors):
    """fn(*leaves) on both paths; returns [(output, grads)] for the PyTorch and Triton path."""
    results = []
    for on in (False, True):
        triton_path(on)
        leaves = [t.detach().clone().requires_grad_(t.requires_grad) for t in tensors]
        out = fn(*leaves)
        upstream = torch.randn(out.shape, generator=torch.Generator().manual_seed(7))
        out.backward(upstream.to(out.dtype))
        results.append((out.detach(), [leaf.grad for leaf in leaves if leaf.requires_grad]))
    triton_path(False)
    return results


def table(num_rows, dim, dtype, generator):
    weight = torch.randn(num_rows, dim, generator=generator, dtype=torch.float64).to(dtype)
    return weight.requires_grad_()


@needs_interpreter
def test_dispatch_defaults_to_pytorch_on_cpu(monkeypatch):
    monkeypatch.delenv("LFE_FORCE_TRITON", raising=False)
    assert not ops.uses_triton(torch.zeros(1))
    monkeypatch.setenv("LFE_FORCE_TRITON", "1")
    assert ops.uses_triton(torch.zeros(1))
    monkeypatch.setenv("TRITON_INTERPRET", "0")
    with pytest.raises(RuntimeError, match="TRITON_INTERPRET=1"):
        ops.uses_triton(torch.zeros(1))


@needs_interpreter
@pytest.mark.parametrize("sparse", [False, True])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float16])
def test_embedding_paths_agree(dtype, sparse, triton_path, generator):
    weight = table(17, 33, dtype, generator)
    rows = torch.randint(0, 17, (3, 50), generator=generator)[:, ::2]  # non-contiguous, repeats

    (out, grads), (triton_out, triton_grads) = run_both(
        triton_path, lambda w: ops.embedding(w, rows, sparse=sparse), weight
    )
    assert torch.equal(triton_out, out)
    assert triton_out.shape == (3, 25, 33)
    close(triton_grads[0], grads[0])
    if sparse:
        # Read through autograd.grad: accumulating into .grad drops the coalesced flag.
        triton_path(True)
        (grad,) = torch.autograd.grad(ops.embedding(weight, rows, sparse=True).sum(), weight)
        assert grad.is_sparse and grad.is_coalesced()
        assert torch.equal(grad.indices()[0], rows.unique())


@needs_interpreter
def test_embedding_gradient_is_bit_reproducible(triton_path, generator):
    weight = table(5, 9, torch.float32, generator)
    rows = torch.randint(0, 5, (400,), generator=generator)
    (_, first), (_, second) = [run_both(triton_path, lambda w: ops.embedding(w, rows), weight)[1]
                               for _ in range(2)]  # fmt: skip
    assert torch.equal(first[0].view(torch.int32), second[0].view(torch.int32))


BAG_CASES = {
    # name: (rows, offsets, include_last_offset, padding_idx)
    "offsets with empty bags": ([4, 4, 1, 0, 9, 2, 2, 7, 3], [0, 0, 3, 3, 8], False, None),
    "include_last_offset": ([4, 4, 1, 0, 9, 2, 2, 7, 3], [0, 2, 2, 6, 9], True, None),
    "padded 2-D": ([[1, 2, 3], [3, 3, 0], [8, 5, 5], [0, 0, 0]], None, False, None),
    "padding_idx": ([4, 0, 1, 0, 0, 2, 0, 7, 3], [0, 1, 3, 5, 8], False, 0),
    "negative padding_idx": ([[9, 2, 9], [9, 9, 9], [1, 3, 3]], None, False, -1),
}


@needs_interpreter
@pytest.mark.parametrize("case", BAG_CASES)
@pytest.mark.parametrize("mode", ["sum", "mean", "max", "weighted sum"])
@pytest.mark.parametrize("sparse", [False, True])
def test_embedding_bag_paths_agree(case, mode, sparse, triton_path, generator):
    rows_list, offsets_list, include_last_offset, padding_idx = BAG_CASES[case]
    rows = torch.tensor(rows_list)
    offsets = None if offsets_list is None else torch.tensor(offsets_list)
    weight = table(10, 33, torch.float32, generator)
    per_sample_weights = None
    if mode == "weighted sum":
        mode = "sum"
        per_sample_weights = torch.randn(rows.shape, generator=generator).requires_grad_()
    if sparse and mode == "max":
        for on in (False, True):
            triton_path(on)
            with pytest.raises(ValueError, match="max mode does not support sparse"):
                ops.embedding_bag(weight, rows, offsets, mode, None, sparse, padding_idx)
        return

    def pool(w, *maybe_weights):
        return ops.embedding_bag(
            w, rows, offsets, mode, maybe_weights[0] if maybe_weights else None, sparse,
            padding_idx, include_last_offset=include_last_offset,
        )  # fmt: skip

    tensors = [weight] if per_sample_weights is None else [weight, per_sample_weights]
    (out, grads), (triton_out, triton_grads) = run_both(triton_path, pool, *tensors)
    if mode == "max":
        assert torch.equal(triton_out, out)  # float32 max selects a stored value: exact
    close(triton_out, out)
    for triton_grad, grad in zip(triton_grads, grads, strict=True):
        close(triton_grad, grad)


@needs_interpreter
@pytest.mark.parametrize("mode", ["sum", "mean", "max"])
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_embedding_bag_low_precision_paths_agree(mode, dtype, triton_path, generator):
    weight = table(12, 127, dtype, generator)
    rows = torch.randint(0, 12, (40,), generator=generator)
    offsets = torch.tensor([0, 5, 5, 21, 30])
    (out, grads), (triton_out, triton_grads) = run_both(
        triton_path, lambda w: ops.embedding_bag(w, rows, offsets, mode), weight
    )
    close(triton_out, out)
    close(triton_grads[0], grads[0])


@needs_interpreter
def test_gradcheck_embedding(triton_path, generator):
    triton_path(True)
    weight = table(6, 5, torch.float64, generator)
    rows = torch.tensor([1, 3, 3, 0, 5, 3])
    kernels = ops.load_kernels()
    # Dense gradients only: gradcheck wants the input's layout; sparse ones are compared with
    # the PyTorch path above.
    check = lambda w: EmbeddingFunction.apply(w, rows, False, kernels)  # noqa: E731
    assert torch.autograd.gradcheck(check, (weight,))


@needs_interpreter
@pytest.mark.parametrize("mode", ["sum", "mean", "max", "weighted sum"])
def test_gradcheck_embedding_bag(mode, triton_path, generator):
    triton_path(True)
    weight = table(6, 5, torch.float64, generator)
    rows = torch.tensor([1, 3, 3, 0, 5, 3, 2])
    indptr = torch.tensor([0, 3, 3, 7])
    per_sample_weights = None
    if mode == "weighted sum":
        mode = "sum"
        per_sample_weights = torch.rand(7, generator=generator, dtype=torch.float64)
        per_sample_weights.requires_grad_()
    kernels = ops.load_kernels()

    def pool(w, *maybe_weights):
        sample = maybe_weights[0] if maybe_weights else None
        return EmbeddingBagFunction.apply(w, rows, indptr, mode, sample, False, kernels)

    inputs = (weight,) if per_sample_weights is None else (weight, per_sample_weights)
    assert torch.autograd.gradcheck(pool, inputs)


@needs_interpreter
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("with_weights", [False, True])
@pytest.mark.parametrize("with_noise", [False, True])
def test_row_initialisation_paths_agree(dtype, with_weights, with_noise, triton_path, generator):
    storage = torch.randn(20, 33, generator=generator).to(dtype)
    recipe = SegmentMean(
        indptr=torch.tensor([0, 3, 3, 4, 9]),
        indices=torch.tensor([1, 1, 7, 2, 0, 3, 4, 5, 6]),
        weights=torch.rand(9, generator=generator) if with_weights else None,
        noise=torch.randn(4, 33, generator=generator) if with_noise else None,
    )
    results = {}
    for on in (False, True):
        triton_path(on)
        target = storage.clone()
        ops.write_rows(target, 8, target[:8], recipe)
        results[on] = (target, ops.segment_mean(target[:8], recipe))
    triton_path(False)

    assert torch.equal(results[True][0][:8], storage[:8])  # existing rows untouched
    assert torch.equal(results[True][0][12:], storage[12:])  # capacity past k untouched
    close(results[True][0], results[False][0])
    close(results[True][1], results[False][1])


@needs_interpreter
def test_write_rows_dense_initial(triton_path, generator):
    triton_path(True)
    storage = torch.zeros(6, 4)
    initial = torch.randn(2, 4, generator=generator, dtype=torch.float64)
    ops.write_rows(storage, 3, storage[:3], initial)
    assert torch.equal(storage[3:5], initial.float())


@pytest.mark.gpu
@pytest.mark.skipif(INTERPRETED, reason="run with TRITON_INTERPRET=0 to test compiled kernels")
@pytest.mark.parametrize("mode", ["sum", "mean", "max"])
def test_cuda_matches_cpu(mode, generator):
    weight = table(1000, 129, torch.float32, generator)
    rows = torch.randint(0, 1000, (3000,), generator=generator)
    offsets = torch.arange(0, 3000, 7)
    results = []
    for device in ("cpu", "cuda"):
        w = weight.detach().to(device).requires_grad_()
        bag = ops.embedding_bag(w, rows.to(device), offsets.to(device), mode)
        gathered = ops.embedding(w, rows.to(device))
        (bag.sum() + gathered.square().sum()).backward()
        results.append((bag.detach().cpu(), gathered.detach().cpu(), w.grad.cpu()))
    close(results[1][0], results[0][0])
    assert torch.equal(results[1][1], results[0][1])
    close(results[1][2], results[0][2])
