// Bulk kernels and host logic of the CUDA hash table (id_map_cuda.cuh).
//
// Deterministic insert, in four steps that leave the table untouched until the last:
//   1. look every ID up, counting the absent ones;
//   2. put each absent ID in a temporary table that keeps, per distinct ID, the smallest
//      batch position it occurs at (atomicMin), then mark the positions that are such a first
//      occurrence;
//   3. an inclusive prefix sum over the marks ranks the new IDs in first-occurrence order,
//      and the host learns how many there are and grows the table if they would not fit;
//   4. each new ID is written with row size + rank - 1, and every absent position takes the
//      row of its ID's first occurrence.
// The numbering depends only on the batch, never on thread scheduling, so the GPU map equals
// the CPU map for the same stream of batches.
#include "cuda/id_map_cuda.cuh"

#include <cub/block/block_reduce.cuh>
#include <cub/device/device_scan.cuh>

#include <algorithm>
#include <new>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>

namespace lfe {
namespace cuda {
namespace {

constexpr int kBlockSize = 256;
// Keys each lookup thread has in flight: their first slot loads are issued together, so a
// warp waits for one round of memory latency instead of four.
constexpr int kLookupKeysPerThread = 4;
// Resident blocks per multiprocessor that grid-stride kernels aim for: 2048 threads, the
// most sm_80 and sm_90 hold, for the light kernels; the lookup kernel keeps more state per
// thread (about 50 registers), and its launch bounds guarantee this many blocks of it.
constexpr int kBlocksPerMultiprocessor = 8;
constexpr int kLookupBlocksPerMultiprocessor = 4;
constexpr int64_t kMinSlotCount = 64;
constexpr int64_t kMinIdsCapacity = 64;
// Far beyond any device memory, and small enough that slot counts and byte sizes never
// overflow int64.
constexpr int64_t kMaxIds = int64_t(1) << 56;
// Position stored in a temporary slot before any position is recorded: larger than all.
constexpr int64_t kNoPosition = INT64_MAX;

static_assert(sizeof(Slot) == 16 && alignof(Slot) == 16, "a slot must be one 16-byte vector");
static_assert(sizeof(long long) == sizeof(int64_t), "atomics on int64 go through long long");

void check_cuda(cudaError_t status, const char* what) {
  if (status != cudaSuccess) {
    throw std::runtime_error(std::string("lfe CUDA hash table: ") + what + " failed: " +
                             cudaGetErrorString(status));
  }
}

// Smallest power of two >= 2 * num_ids (and >= kMinSlotCount): load factor <= 0.5.
int64_t slot_count_for(int64_t num_ids) {
  int64_t slot_count = kMinSlotCount;
  while (slot_count < 2 * num_ids) slot_count *= 2;
  return slot_count;
}

// A typed device array from a DeviceAllocator, freed on the stream it was allocated on. Used
// for temporaries, and for new table buffers until they are committed with swap_into().
template <typename T>
class DeviceArray {
 public:
  DeviceArray(DeviceAllocator& allocator, int64_t count, cudaStream_t stream)
      : allocator_(allocator), count_(count), stream_(stream) {
    if (count_ > 0) {
      data_ = static_cast<T*>(allocator_.allocate(bytes(), stream_));
      if (data_ == nullptr) throw std::bad_alloc();
    }
  }
  ~DeviceArray() {
    if (data_ != nullptr) allocator_.deallocate(data_, bytes(), stream_);
  }
  DeviceArray(const DeviceArray&) = delete;
  DeviceArray& operator=(const DeviceArray&) = delete;

  T* data() const { return data_; }

  // Exchange with an owned buffer: the owner gets this array, and this object frees the old
  // buffer (stream-ordered after the work already enqueued on it).
  void swap_into(T*& owner_data, int64_t& owner_count) {
    std::swap(owner_data, data_);
    std::swap(owner_count, count_);
  }

 private:
  std::size_t bytes() const { return static_cast<std::size_t>(count_) * sizeof(T); }

  DeviceAllocator& allocator_;
  T* data_ = nullptr;
  int64_t count_;
  cudaStream_t stream_;
};

// A temporary table from ID to the smallest batch position it occurs at. Same slots, hash and
// probing as the main table; the row field holds the position.
struct FirstPositionTable {
  Slot* slots;
  uint64_t slot_mask;

  // Record that `key` occurs at `position`. The key's slot is claimed with a compare-and-swap
  // (two threads with the same key agree on one slot), and the position is lowered with
  // atomicMin, which makes the result independent of the order the threads arrive in.
  __device__ __forceinline__ void record(int64_t key, int64_t position) const {
    constexpr auto kEmpty = static_cast<unsigned long long>(kEmptyKey);
    const auto wanted = static_cast<unsigned long long>(key);
    uint64_t index = mix_hash(key) & slot_mask;
    for (uint64_t probes = 0; probes <= slot_mask; ++probes) {
      auto* slot_key = reinterpret_cast<unsigned long long*>(&slots[index].key);
      const unsigned long long previous = atomicCAS(slot_key, kEmpty, wanted);
      if (previous == kEmpty || previous == wanted) {
        atomicMin(reinterpret_cast<long long*>(&slots[index].row),
                  static_cast<long long>(position));
        return;
      }
      index = (index + 1) & slot_mask;
    }
  }

  // The first position of a recorded `key`. Only for kernels that do not record.
  __device__ __forceinline__ int64_t first_position(int64_t key) const {
    const DeviceIdMapRef view{slots, slot_mask};
    return view.find(key);
  }
};

/// Set every slot of `slots[0, slot_count)` to {kEmptyKey, fill_row}.
__global__ void __launch_bounds__(kBlockSize)
    fill_slots_kernel(Slot* slots, int64_t slot_count, int64_t fill_row) {
  const int64_t stride = int64_t(gridDim.x) * kBlockSize;
  for (int64_t index = int64_t(blockIdx.x) * kBlockSize + threadIdx.x; index < slot_count;
       index += stride) {
    reinterpret_cast<longlong2*>(slots)[index] = make_longlong2(kEmptyKey, fill_row);
  }
}

/// Insert ids_by_row[row] with `row` for every row in [0, num_ids) into an empty `table`.
/// The IDs are distinct, so every thread claims its own slot.
__global__ void __launch_bounds__(kBlockSize)
    rebuild_kernel(DeviceIdMapRef table, const int64_t* ids_by_row, int64_t num_ids) {
  const int64_t stride = int64_t(gridDim.x) * kBlockSize;
  for (int64_t row = int64_t(blockIdx.x) * kBlockSize + threadIdx.x; row < num_ids;
       row += stride) {
    table.insert_absent(ids_by_row[row], row);
  }
}

/// Look up ids[0, count) (int64) in `table`. Writes results[i] = row of ids[i] or kNotFound
/// when Result is int64_t, and whether ids[i] is present when Result is bool. When
/// kCountAbsent, also adds the number of absent IDs to *absent_count.
///
/// Each thread takes kLookupKeysPerThread keys a block-width apart (coalesced loads of
/// `ids`) and issues their first 16-byte slot loads before resolving any of them.
template <typename Result, bool kCountAbsent>
__global__ void __launch_bounds__(kBlockSize, kLookupBlocksPerMultiprocessor)
    lookup_kernel(DeviceIdMapRef table, const int64_t* ids, int64_t count, Result* results,
                  unsigned long long* absent_count) {
  constexpr int64_t kTile = int64_t(kBlockSize) * kLookupKeysPerThread;
  const int64_t stride = int64_t(gridDim.x) * kTile;
  int64_t absent_here = 0;

  for (int64_t base = int64_t(blockIdx.x) * kTile + threadIdx.x; base < count; base += stride) {
    int64_t keys[kLookupKeysPerThread];
    uint64_t indices[kLookupKeysPerThread];
    Slot slots[kLookupKeysPerThread];
#pragma unroll
    for (int k = 0; k < kLookupKeysPerThread; ++k) {
      const int64_t position = base + int64_t(k) * kBlockSize;
      if (position < count) {
        keys[k] = ids[position];
        indices[k] = table.home_index(keys[k]);
        slots[k] = table.load_read_only(indices[k]);
      }
    }
#pragma unroll
    for (int k = 0; k < kLookupKeysPerThread; ++k) {
      const int64_t position = base + int64_t(k) * kBlockSize;
      if (position < count) {
        const int64_t row = table.finish_find(keys[k], indices[k], slots[k]);
        if constexpr (std::is_same_v<Result, bool>) {
          results[position] = row != kNotFound;
        } else {
          results[position] = row;
        }
        absent_here += row == kNotFound;
      }
    }
  }

  if constexpr (kCountAbsent) {
    // One atomic per block instead of one per absent ID.
    using BlockReduce = cub::BlockReduce<int64_t, kBlockSize>;
    __shared__ typename BlockReduce::TempStorage reduce_storage;
    const int64_t block_absent = BlockReduce(reduce_storage).Sum(absent_here);
    if (threadIdx.x == 0 && block_absent > 0) {
      atomicAdd(absent_count, static_cast<unsigned long long>(block_absent));
    }
  }
}

/// For every position i in [0, count) whose rows[i] is kNotFound (an ID absent from the
/// table), record in `first_positions` that ids[i] occurs at i.
__global__ void __launch_bounds__(kBlockSize)
    record_first_positions_kernel(FirstPositionTable first_positions, const int64_t* ids,
                                  const int64_t* rows, int64_t count) {
  const int64_t stride = int64_t(gridDim.x) * kBlockSize;
  for (int64_t position = int64_t(blockIdx.x) * kBlockSize + threadIdx.x; position < count;
       position += stride) {
    if (rows[position] == kNotFound) first_positions.record(ids[position], position);
  }
}

/// marks[i] = 1 if position i holds an absent ID at its first occurrence in the batch, else
/// 0 (int64, so the prefix sum over it cannot overflow).
__global__ void __launch_bounds__(kBlockSize)
    mark_first_occurrences_kernel(FirstPositionTable first_positions, const int64_t* ids,
                                  const int64_t* rows, int64_t count, int64_t* marks) {
  const int64_t stride = int64_t(gridDim.x) * kBlockSize;
  for (int64_t position = int64_t(blockIdx.x) * kBlockSize + threadIdx.x; position < count;
       position += stride) {
    const bool is_first = rows[position] == kNotFound &&
                          first_positions.first_position(ids[position]) == position;
    marks[position] = is_first ? 1 : 0;
  }
}

/// Give every absent position its row: first_new_row + ranks[first] - 1, where `first` is the
/// first position of its ID and ranks the inclusive prefix sum of the first-occurrence marks.
/// The thread at a first occurrence also appends the ID to ids_by_row and inserts it into
/// `table`; the IDs it inserts are distinct and absent, as insert_absent requires.
__global__ void __launch_bounds__(kBlockSize)
    assign_new_rows_kernel(DeviceIdMapRef table, FirstPositionTable first_positions,
                           const int64_t* ids, int64_t count, const int64_t* ranks,
                           int64_t first_new_row, int64_t* rows, int64_t* ids_by_row) {
  const int64_t stride = int64_t(gridDim.x) * kBlockSize;
  for (int64_t position = int64_t(blockIdx.x) * kBlockSize + threadIdx.x; position < count;
       position += stride) {
    if (rows[position] != kNotFound) continue;
    const int64_t id = ids[position];
    const int64_t first = first_positions.first_position(id);
    const int64_t row = first_new_row + ranks[first] - 1;
    rows[position] = row;
    if (first == position) {
      ids_by_row[row] = id;
      table.insert_absent(id, row);
    }
  }
}

}  // namespace

void* StreamOrderedAllocator::allocate(std::size_t bytes, cudaStream_t stream) {
  void* pointer = nullptr;
  const cudaError_t status = cudaMallocAsync(&pointer, bytes, stream);
  if (status == cudaErrorMemoryAllocation) {
    cudaGetLastError();  // clear the recorded error so a later launch check does not report it
    throw std::bad_alloc();
  }
  check_cuda(status, "cudaMallocAsync");
  return pointer;
}

void StreamOrderedAllocator::deallocate(void* pointer, std::size_t, cudaStream_t stream) {
  cudaFreeAsync(pointer, stream);
}

DeviceIdMap::DeviceIdMap(int64_t capacity_hint, cudaStream_t stream,
                         std::shared_ptr<DeviceAllocator> allocator)
    : allocator_(std::move(allocator)) {
  if (capacity_hint < 0 || capacity_hint > kMaxIds) {
    throw std::length_error("capacity_hint must be in [0, 2**56], got " +
                            std::to_string(capacity_hint));
  }
  int device = 0;
  check_cuda(cudaGetDevice(&device), "cudaGetDevice");
  check_cuda(
      cudaDeviceGetAttribute(&multiprocessor_count_, cudaDevAttrMultiProcessorCount, device),
      "cudaDeviceGetAttribute");

  const int64_t slot_count = slot_count_for(capacity_hint);
  DeviceArray<Slot> slots(*allocator_, slot_count, stream);
  DeviceArray<int64_t> ids_by_row(*allocator_, std::max(capacity_hint, kMinIdsCapacity), stream);
  rebuild_slots(slots.data(), slot_count, 0, stream);
  slots.swap_into(slots_, slot_count_);
  ids_by_row.swap_into(ids_by_row_, ids_capacity_);
}

DeviceIdMap::~DeviceIdMap() {
  // The legacy default stream waits for all blocking streams, so freeing on it is safe
  // whichever stream the table was last used on.
  allocator_->deallocate(slots_, static_cast<std::size_t>(slot_count_) * sizeof(Slot), 0);
  allocator_->deallocate(ids_by_row_, static_cast<std::size_t>(ids_capacity_) * sizeof(int64_t),
                         0);
}

int DeviceIdMap::launch_block_count(int64_t work_items, int blocks_per_multiprocessor) const {
  const int64_t wanted = (work_items + kBlockSize - 1) / kBlockSize;
  const int64_t resident = int64_t(multiprocessor_count_) * blocks_per_multiprocessor;
  return static_cast<int>(std::max<int64_t>(1, std::min(wanted, resident)));
}

int DeviceIdMap::lookup_block_count(int64_t count) const {
  const int64_t threads = (count + kLookupKeysPerThread - 1) / kLookupKeysPerThread;
  return launch_block_count(threads, kLookupBlocksPerMultiprocessor);
}

void DeviceIdMap::lookup_async(const int64_t* ids, int64_t count, int64_t* rows,
                               cudaStream_t stream) const {
  if (count == 0) return;
  const int blocks = lookup_block_count(count);
  lookup_kernel<int64_t, false><<<blocks, kBlockSize, 0, stream>>>(ref(), ids, count, rows,
                                                                    nullptr);
  check_cuda(cudaGetLastError(), "launching the lookup kernel");
}

void DeviceIdMap::contains_async(const int64_t* ids, int64_t count, bool* found,
                                 cudaStream_t stream) const {
  if (count == 0) return;
  const int blocks = lookup_block_count(count);
  lookup_kernel<bool, false><<<blocks, kBlockSize, 0, stream>>>(ref(), ids, count, found,
                                                                 nullptr);
  check_cuda(cudaGetLastError(), "launching the contains kernel");
}

void DeviceIdMap::copy_ids_async(int64_t* ids, cudaStream_t stream) const {
  if (size_ == 0) return;
  check_cuda(cudaMemcpyAsync(ids, ids_by_row_, static_cast<std::size_t>(size_) * sizeof(int64_t),
                             cudaMemcpyDeviceToDevice, stream),
             "copying the IDs in row order");
}

void DeviceIdMap::insert(const int64_t* ids, int64_t count, int64_t* rows, cudaStream_t stream) {
  if (count == 0) return;

  const int64_t absent_count = lookup_counting_absent(ids, count, rows, stream);
  if (absent_count == 0) return;

  insert_absent_batch(ids, count, absent_count, rows, stream);
}

int64_t DeviceIdMap::lookup_counting_absent(const int64_t* ids, int64_t count, int64_t* rows,
                                            cudaStream_t stream) {
  DeviceArray<unsigned long long> absent_counter(*allocator_, 1, stream);
  check_cuda(cudaMemsetAsync(absent_counter.data(), 0, sizeof(unsigned long long), stream),
             "clearing the absent-ID counter");

  const int blocks = lookup_block_count(count);
  lookup_kernel<int64_t, true><<<blocks, kBlockSize, 0, stream>>>(ref(), ids, count, rows,
                                                                   absent_counter.data());
  check_cuda(cudaGetLastError(), "launching the insert's lookup kernel");

  unsigned long long absent_count = 0;
  check_cuda(cudaMemcpyAsync(&absent_count, absent_counter.data(), sizeof(absent_count),
                             cudaMemcpyDeviceToHost, stream),
             "reading the absent-ID count");
  check_cuda(cudaStreamSynchronize(stream), "waiting for the insert's lookup");
  return static_cast<int64_t>(absent_count);
}

void DeviceIdMap::insert_absent_batch(const int64_t* ids, int64_t count, int64_t absent_count,
                                      int64_t* rows, cudaStream_t stream) {
  const int blocks = launch_block_count(count, kBlocksPerMultiprocessor);
  const int64_t temporary_slot_count = slot_count_for(absent_count);
  DeviceArray<Slot> temporary_slots(*allocator_, temporary_slot_count, stream);
  const FirstPositionTable first_positions{temporary_slots.data(),
                                           uint64_t(temporary_slot_count - 1)};
  const int fill_blocks = launch_block_count(temporary_slot_count, kBlocksPerMultiprocessor);
  fill_slots_kernel<<<fill_blocks, kBlockSize, 0, stream>>>(temporary_slots.data(),
                                                            temporary_slot_count, kNoPosition);
  record_first_positions_kernel<<<blocks, kBlockSize, 0, stream>>>(first_positions, ids, rows,
                                                                    count);
  check_cuda(cudaGetLastError(), "launching the first-position kernels");

  DeviceArray<int64_t> marks(*allocator_, count, stream);
  DeviceArray<int64_t> ranks(*allocator_, count, stream);
  mark_first_occurrences_kernel<<<blocks, kBlockSize, 0, stream>>>(first_positions, ids, rows,
                                                                    count, marks.data());
  check_cuda(cudaGetLastError(), "launching the first-occurrence kernel");
  std::size_t scan_bytes = 0;
  check_cuda(cub::DeviceScan::InclusiveSum(nullptr, scan_bytes, marks.data(), ranks.data(),
                                           count, stream),
             "sizing the prefix sum");
  // Never empty: CUB reads a null storage pointer as a size query and would not scan.
  const auto scan_storage_bytes = static_cast<int64_t>(std::max<std::size_t>(scan_bytes, 1));
  DeviceArray<unsigned char> scan_storage(*allocator_, scan_storage_bytes, stream);
  check_cuda(cub::DeviceScan::InclusiveSum(scan_storage.data(), scan_bytes, marks.data(),
                                           ranks.data(), count, stream),
             "the prefix sum over first occurrences");

  int64_t new_count = 0;
  check_cuda(cudaMemcpyAsync(&new_count, ranks.data() + count - 1, sizeof(new_count),
                             cudaMemcpyDeviceToHost, stream),
             "reading the number of new IDs");
  check_cuda(cudaStreamSynchronize(stream), "waiting for the prefix sum");

  // Growth happens here, before any write to the table, so a failed allocation leaves it as
  // it was; growth keeps every row, so the ranks above stay valid.
  grow_to_fit(size_ + new_count, stream);
  assign_new_rows_kernel<<<blocks, kBlockSize, 0, stream>>>(ref(), first_positions, ids, count,
                                                             ranks.data(), size_, rows,
                                                             ids_by_row_);
  check_cuda(cudaGetLastError(), "launching the row assignment kernel");
  size_ += new_count;
}

void DeviceIdMap::reserve(int64_t num_ids, cudaStream_t stream) { grow_to_fit(num_ids, stream); }

void DeviceIdMap::grow_to_fit(int64_t num_ids, cudaStream_t stream) {
  if (num_ids > kMaxIds) {
    throw std::length_error("the CUDA hash table holds at most 2**56 IDs, asked for " +
                            std::to_string(num_ids));
  }
  const int64_t wanted_slot_count = slot_count_for(num_ids);
  const bool grow_slots = wanted_slot_count > slot_count_;
  const bool grow_ids = num_ids > ids_capacity_;
  if (!grow_slots && !grow_ids) return;

  // Allocate everything before changing anything.
  DeviceArray<Slot> new_slots(*allocator_, grow_slots ? wanted_slot_count : 0, stream);
  DeviceArray<int64_t> new_ids_by_row(
      *allocator_, grow_ids ? std::max(num_ids, 2 * ids_capacity_) : 0, stream);

  if (grow_ids) {
    check_cuda(cudaMemcpyAsync(new_ids_by_row.data(), ids_by_row_,
                               static_cast<std::size_t>(size_) * sizeof(int64_t),
                               cudaMemcpyDeviceToDevice, stream),
               "copying the IDs into the grown array");
    new_ids_by_row.swap_into(ids_by_row_, ids_capacity_);
  }
  if (grow_slots) {
    rebuild_slots(new_slots.data(), wanted_slot_count, size_, stream);
    new_slots.swap_into(slots_, slot_count_);
  }
}

void DeviceIdMap::truncate(int64_t num_ids, cudaStream_t stream) {
  if (num_ids < 0 || num_ids > size_) {
    throw std::invalid_argument("num_ids must be in [0, " + std::to_string(size_) + "], got " +
                                std::to_string(num_ids));
  }
  if (num_ids == size_) return;

  rebuild_slots(slots_, slot_count_, num_ids, stream);
  size_ = num_ids;
}

void DeviceIdMap::rebuild_slots(Slot* slots, int64_t slot_count, int64_t num_ids,
                                cudaStream_t stream) const {
  const int fill_blocks = launch_block_count(slot_count, kBlocksPerMultiprocessor);
  fill_slots_kernel<<<fill_blocks, kBlockSize, 0, stream>>>(slots, slot_count, kNotFound);
  if (num_ids > 0) {
    const DeviceIdMapRef table{slots, uint64_t(slot_count - 1)};
    const int rebuild_blocks = launch_block_count(num_ids, kBlocksPerMultiprocessor);
    rebuild_kernel<<<rebuild_blocks, kBlockSize, 0, stream>>>(table, ids_by_row_, num_ids);
  }
  check_cuda(cudaGetLastError(), "launching the rebuild kernels");
}

}  // namespace cuda
}  // namespace lfe
