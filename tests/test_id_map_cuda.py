"""The "cuda" IdMap backend against the CPU maps: same stream of batches, same map.

Everything here needs a CUDA device and `lfe._C` built with CUDA; without them every test is
skipped with the reason. The CPU reference is the "cpu" backend where it is built and the
pure-PyTorch "torch" backend always.
"""

from __future__ import annotations

import io

import pytest
import torch

from lfe import RESERVED_ID, IdMap
from lfe.id_map.cuda_backend import CudaIdMapBackend, is_built
from lfe.id_map.id_map import compiled_backend_class

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(
        not torch.cuda.is_available(),
        reason="needs a CUDA device; torch.cuda.is_available() is False",
    ),
    pytest.mark.skipif(
        torch.cuda.is_available() and not is_built(),
        reason="lfe._C was built without CUDA: "
        "LFE_FORCE_CUDA=1 pip install --no-build-isolation -e .",
    ),
]

MAX_ID = 2**63 - 1
CPU_REFERENCES = ["torch"] + (["cpu"] if compiled_backend_class("cpu") is not None else [])


def cuda_device() -> torch.device:
    return torch.device("cuda", torch.cuda.current_device())


def cuda_map(**kwargs) -> IdMap:
    return IdMap(device=cuda_device(), backend="cuda", **kwargs)


def random_ids(count: int, generator: torch.Generator) -> torch.Tensor:
    """`count` IDs drawn uniformly from the valid int64 range (RESERVED_ID excluded)."""
    return torch.randint(RESERVED_ID + 1, MAX_ID, (count,), generator=generator)


def insert_both(cuda: IdMap, reference: IdMap, ids: torch.Tensor) -> None:
    """Insert the CPU tensor `ids` into both maps and require equal rows and equal maps."""
    cuda_rows = cuda.insert(ids.to(cuda.device))
    reference_rows = reference.insert(ids)
    assert torch.equal(cuda_rows.cpu(), reference_rows)
    assert len(cuda) == len(reference)
    assert torch.equal(cuda.ids().cpu(), reference.ids())


@pytest.mark.parametrize("reference_backend", CPU_REFERENCES)
def test_random_stream_of_batches_gives_the_cpu_map(reference_backend, generator):
    cuda, reference = cuda_map(), IdMap(backend=reference_backend)
    pool = random_ids(300_000, generator)

    # Odd batch sizes, drawn from a growing prefix of the pool: known IDs, new IDs and repeats.
    for batch, size in enumerate([1, 5, 123, 1025, 4097, 40_000, 77_777, 150_001, 3, 250_000]):
        drawable = min(pool.numel(), (batch + 1) * 30_000)
        ids = pool[torch.randint(0, drawable, (size,), generator=generator)]
        insert_both(cuda, reference, ids)

    queries = torch.cat([pool, random_ids(50_000, generator)])
    assert torch.equal(cuda.lookup(queries.to(cuda.device)).cpu(), reference.lookup(queries))
    assert torch.equal(cuda.contains(queries.to(cuda.device)).cpu(), reference.contains(queries))


def test_same_stream_twice_gives_the_same_map(generator):
    batches = [random_ids(n, generator).remainder(5_000) for n in (10_000, 3, 20_000)]
    maps = [cuda_map(), cuda_map()]
    for id_map in maps:
        for ids in batches:
            id_map.insert(ids.to(id_map.device))
    assert torch.equal(maps[0].ids(), maps[1].ids())


def test_duplicates_in_a_batch_get_rows_in_first_occurrence_order():
    ids = torch.tensor([5, 3, 5, 7, 3, 9, 9, -4], device=cuda_device())

    rows = cuda_map().insert(ids)

    assert rows.tolist() == [0, 1, 0, 2, 1, 3, 3, 4]


def test_large_batch_of_repeats_is_numbered_like_the_cpu_map(generator):
    # Each ID occurs about ten times, at random positions: many threads race to record the same
    # ID, and only the smallest position may decide its row.
    distinct = random_ids(100_000, generator)
    ids = distinct[torch.randint(0, distinct.numel(), (1_000_003,), generator=generator)]
    insert_both(cuda_map(), IdMap(backend="torch"), ids)


def test_growth_across_many_rehashes_keeps_every_row(generator):
    backend = CudaIdMapBackend(cuda_device(), capacity=0)
    ids = torch.unique(random_ids(400_000, generator))
    ids = ids[torch.randperm(ids.numel(), generator=generator)].to(cuda_device())
    capacities = [backend.capacity()]

    # Batches of 997 from a 64-slot table: about ten doublings, each a rehash on the device.
    for start in range(0, ids.numel(), 997):
        backend.insert(ids[start : start + 997])
        capacities.append(backend.capacity())
        assert backend.size() <= backend.capacity() // 2, "load factor above 0.5"

    distinct_capacities = sorted(set(capacities))
    assert len(distinct_capacities) >= 10, f"expected many rehashes, got {distinct_capacities}"
    expected_rows = torch.arange(ids.numel(), device=ids.device)
    assert torch.equal(backend.lookup(ids), expected_rows)
    assert torch.equal(backend.ids(), ids)


def test_reserve_makes_room_without_later_growth(generator):
    backend = CudaIdMapBackend(cuda_device(), capacity=0)
    backend.reserve(100_000)
    capacity = backend.capacity()

    backend.insert(torch.unique(random_ids(100_000, generator)).to(cuda_device()))

    assert backend.capacity() == capacity


ADVERSARIAL_FAMILIES = {
    "sequential": torch.arange(0, 50_000),
    "multiples_of_2_pow_32": torch.arange(0, 50_000) * 2**32,
    "equal_low_32_bits": torch.arange(0, 50_000) * 2**32 + 0x5EED,
    "negatives": -torch.arange(1, 50_001),
    "extremes": torch.tensor([RESERVED_ID + 1, MAX_ID, MAX_ID - 1, -1, 0, 1, RESERVED_ID + 2]),
}


@pytest.mark.parametrize("family", sorted(ADVERSARIAL_FAMILIES))
def test_adversarial_keys_give_the_cpu_map(family):
    ids = ADVERSARIAL_FAMILIES[family]
    cuda, reference = cuda_map(), IdMap(backend="torch")

    insert_both(cuda, reference, ids)
    insert_both(cuda, reference, ids.flip(0))  # all known now: rows unchanged

    neighbours = torch.cat([ids + 1, ids - 1, ids ^ (1 << 40)])
    neighbours = neighbours[neighbours != RESERVED_ID]
    assert torch.equal(cuda.lookup(neighbours.to(cuda.device)).cpu(), reference.lookup(neighbours))


def test_all_adversarial_families_share_one_map():
    cuda, reference = cuda_map(), IdMap(backend="torch")
    for family in sorted(ADVERSARIAL_FAMILIES):
        insert_both(cuda, reference, ADVERSARIAL_FAMILIES[family])


def test_lookup_never_changes_the_map(generator):
    cuda = cuda_map()
    cuda.insert(random_ids(1_000, generator).to(cuda.device))
    before = cuda.ids()

    rows = cuda.lookup(random_ids(10_000, generator).to(cuda.device))

    assert torch.equal(cuda.ids(), before)
    assert rows.eq(-1).all()


def test_empty_batches_and_shapes(generator):
    cuda = cuda_map()
    empty = torch.empty(0, dtype=torch.int64, device=cuda.device)
    assert cuda.insert(empty).numel() == 0 and cuda.lookup(empty).numel() == 0
    assert len(cuda) == 0 and cuda.ids().numel() == 0

    ids = random_ids(24, generator).reshape(2, 3, 4).to(cuda.device)
    rows = cuda.insert(ids)
    assert rows.shape == ids.shape and rows.device == ids.device
    assert torch.equal(cuda.lookup(ids), rows)


@pytest.mark.parametrize("reference_backend", CPU_REFERENCES)
def test_truncate_then_insert_gives_the_cpu_map(reference_backend, generator):
    cuda, reference = cuda_map(), IdMap(backend=reference_backend)
    ids = random_ids(30_000, generator)
    insert_both(cuda, reference, ids)

    cuda.truncate(12_345)
    reference.truncate(12_345)

    assert torch.equal(cuda.lookup(ids.to(cuda.device)).cpu(), reference.lookup(ids))
    insert_both(cuda, reference, torch.cat([random_ids(5_000, generator), ids]))


@pytest.mark.parametrize("cpu_backend", CPU_REFERENCES)
def test_state_dict_loads_across_devices(cpu_backend, generator):
    cuda = cuda_map()
    ids = random_ids(20_000, generator)
    cuda.insert(ids.to(cuda.device))

    buffer = io.BytesIO()
    torch.save(cuda.state_dict(), buffer)
    buffer.seek(0)
    on_cpu = IdMap(backend=cpu_backend)
    on_cpu.load_state_dict(torch.load(buffer))
    assert torch.equal(on_cpu.ids(), cuda.ids().cpu())
    assert torch.equal(on_cpu.lookup(ids), cuda.lookup(ids.to(cuda.device)).cpu())

    back_on_cuda = cuda_map()
    back_on_cuda.load_state_dict(on_cpu.state_dict())
    assert torch.equal(back_on_cuda.ids(), cuda.ids())
    assert torch.equal(back_on_cuda.lookup(ids.to(cuda.device)), cuda.lookup(ids.to(cuda.device)))


def test_map_on_cuda_without_index_takes_tensors_made_on_cuda():
    id_map = IdMap(device="cuda", backend="cuda")

    rows = id_map.insert(torch.tensor([11, 12, 11], device="cuda"))

    assert rows.tolist() == [0, 1, 0]


def test_backend_rejects_tensors_it_cannot_read():
    backend = CudaIdMapBackend(cuda_device())
    with pytest.raises(ValueError, match="cuda"):
        backend.insert(torch.tensor([1, 2]))
    with pytest.raises(TypeError, match="int64"):
        backend.lookup(torch.tensor([1, 2], dtype=torch.int32, device=cuda_device()))
    with pytest.raises(ValueError, match="contiguous 1-D"):
        backend.lookup(torch.arange(8, device=cuda_device())[::2])
    assert backend.size() == 0
