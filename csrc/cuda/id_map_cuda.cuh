// The CUDA hash table behind lfe.IdMap's "cuda" backend: raw int64 IDs -> dense row indices.
//
// Open addressing in device memory over the same 16-byte {key, row} slots, hash and empty key
// as the CPU table (core/hash.h): linear probing from mix_hash(key) & mask, a power-of-two
// slot count and at most one occupied slot in two. The IDs are also kept in row order in a
// plain device array, which makes export, growth and truncation a pass over that array.
//
// Two layers, in the style of cuCollections:
//   DeviceIdMapRef  a small, non-owning view of the slots that kernels receive by value;
//   DeviceIdMap     the owning host object with the bulk operations.
//
// Nothing here knows torch: pointers, lengths and a cudaStream_t. Memory comes from a
// DeviceAllocator, so the torch binding can hand out torch's caching allocator.
//
// Streams: every call is enqueued on the stream it is given. Calls on one map must be ordered
// with respect to each other (use one stream, or synchronise between streams), the same rule
// as for a torch tensor used on several streams.
#pragma once

#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>
#include <memory>

#include "core/hash.h"

namespace lfe {
namespace cuda {

// Where device memory comes from. Both calls are stream-ordered: memory allocated on `stream`
// may be used by work enqueued on it, and deallocate may hand it out again to later work on
// `stream`. allocate throws (std::bad_alloc or std::runtime_error) when memory runs out.
class DeviceAllocator {
 public:
  virtual ~DeviceAllocator() = default;
  virtual void* allocate(std::size_t bytes, cudaStream_t stream) = 0;
  virtual void deallocate(void* pointer, std::size_t bytes, cudaStream_t stream) = 0;
};

// cudaMallocAsync / cudaFreeAsync on the device's default memory pool: what the standalone
// driver uses. The torch binding passes torch's caching allocator instead.
class StreamOrderedAllocator final : public DeviceAllocator {
 public:
  void* allocate(std::size_t bytes, cudaStream_t stream) override;
  void deallocate(void* pointer, std::size_t bytes, cudaStream_t stream) override;
};

// A non-owning view of a table's slots, passed to kernels by value. The slot count is a power
// of two and at most half the slots are occupied, so every probe sequence meets an empty slot.
struct DeviceIdMapRef {
  Slot* slots;
  uint64_t slot_mask;  // slot count - 1

  __device__ __forceinline__ uint64_t home_index(int64_t key) const {
    return mix_hash(key) & slot_mask;
  }

  // One 16-byte load of a slot through the read-only data cache: only for kernels that do
  // not modify these slots.
  __device__ __forceinline__ Slot load_read_only(uint64_t index) const {
    const longlong2 pair = __ldg(reinterpret_cast<const longlong2*>(slots) + index);
    return Slot{pair.x, pair.y};
  }

  // Row of `key`, continuing a probe that loaded `slot` at `index`; kNotFound if absent.
  // Split from find() so that a thread can issue the first loads of several keys at once.
  __device__ __forceinline__ int64_t finish_find(int64_t key, uint64_t index, Slot slot) const {
    for (uint64_t probes = 0; probes <= slot_mask; ++probes) {
      if (slot.key == key) return slot.row;
      if (slot.key == kEmptyKey) return kNotFound;
      index = (index + 1) & slot_mask;
      slot = load_read_only(index);
    }
    return kNotFound;
  }

  // Row of `key`, or kNotFound. Only for kernels that do not modify the slots.
  __device__ __forceinline__ int64_t find(int64_t key) const {
    const uint64_t index = home_index(key);
    return finish_find(key, index, load_read_only(index));
  }

  // Place `key`, which must not be in the table, with `row`. Safe when many threads insert
  // distinct keys at once: the compare-and-swap on the key claims a slot for one thread only.
  // The row is written after the claim with a plain store, which is enough because no thread
  // reads rows until a later kernel.
  __device__ __forceinline__ void insert_absent(int64_t key, int64_t row) const {
    constexpr auto kEmpty = static_cast<unsigned long long>(kEmptyKey);
    uint64_t index = home_index(key);
    for (uint64_t probes = 0; probes <= slot_mask; ++probes) {
      auto* slot_key = reinterpret_cast<unsigned long long*>(&slots[index].key);
      if (atomicCAS(slot_key, kEmpty, static_cast<unsigned long long>(key)) == kEmpty) {
        slots[index].row = row;
        return;
      }
      index = (index + 1) & slot_mask;
    }
  }
};

// An owning hash table in device memory, rows numbered 0, 1, 2, ... in insertion order.
//
// Failure safety: a mutating call either completes or throws before changing the table
// (std::runtime_error for CUDA errors, std::length_error past the largest size, whatever the
// allocator throws when memory runs out). Output buffers may be partly written on a throw.
class DeviceIdMap {
 public:
  static constexpr double kMaxLoadFactor = 0.5;

  // A table on the current device where `capacity_hint` IDs fit without growth.
  DeviceIdMap(int64_t capacity_hint, cudaStream_t stream,
              std::shared_ptr<DeviceAllocator> allocator);
  ~DeviceIdMap();

  DeviceIdMap(const DeviceIdMap&) = delete;
  DeviceIdMap& operator=(const DeviceIdMap&) = delete;

  // rows[i] = row of ids[i]. Unseen IDs get rows size(), size() + 1, ... in the order of
  // their first occurrence in `ids`, so the result equals the CPU table's. No ID may be
  // kEmptyKey (checked by the caller). Synchronises with the host once or twice: to learn
  // whether any ID is new and how many new IDs there are (the host keeps size()).
  void insert(const int64_t* ids, int64_t count, int64_t* rows, cudaStream_t stream);

  // rows[i] = row of ids[i], or kNotFound. Never changes the table; does not synchronise.
  void lookup_async(const int64_t* ids, int64_t count, int64_t* rows,
                    cudaStream_t stream) const;

  // found[i] = whether ids[i] is in the table. Does not synchronise.
  void contains_async(const int64_t* ids, int64_t count, bool* found,
                      cudaStream_t stream) const;

  // Copy the size() IDs, in row order, into the device array `ids`. Does not synchronise.
  void copy_ids_async(int64_t* ids, cudaStream_t stream) const;

  // Grow so that `num_ids` IDs fit without further growth. Never shrinks.
  void reserve(int64_t num_ids, cudaStream_t stream);

  // Forget every ID whose row is >= `num_ids` (the table is rebuilt from the IDs kept).
  // Keeps the slot count.
  void truncate(int64_t num_ids, cudaStream_t stream);

  // Number of IDs (and rows).
  int64_t size() const { return size_; }

  // Number of slots currently allocated.
  int64_t capacity() const { return slot_count_; }

  DeviceIdMapRef ref() const { return DeviceIdMapRef{slots_, uint64_t(slot_count_ - 1)}; }

 private:
  // Rows of the IDs already present (kNotFound elsewhere); returns how many are absent.
  int64_t lookup_counting_absent(const int64_t* ids, int64_t count, int64_t* rows,
                                 cudaStream_t stream);
  // Give the absent IDs of a batch their rows and insert the new ones.
  void insert_absent_batch(const int64_t* ids, int64_t count, int64_t absent_count,
                           int64_t* rows, cudaStream_t stream);
  // Allocate first, then commit: make room for `num_ids` IDs or throw, changing nothing.
  void grow_to_fit(int64_t num_ids, cudaStream_t stream);
  // Empty `slots` and insert the IDs of rows 0 .. num_ids - 1 into it.
  void rebuild_slots(Slot* slots, int64_t slot_count, int64_t num_ids,
                     cudaStream_t stream) const;
  // Blocks for a grid-stride kernel over `work_items` threads' worth of work: enough to
  // fill the device once, fewer for small batches.
  int launch_block_count(int64_t work_items, int blocks_per_multiprocessor) const;
  int lookup_block_count(int64_t count) const;

  std::shared_ptr<DeviceAllocator> allocator_;
  int multiprocessor_count_ = 1;

  Slot* slots_ = nullptr;
  int64_t slot_count_ = 0;
  int64_t* ids_by_row_ = nullptr;
  int64_t ids_capacity_ = 0;
  int64_t size_ = 0;
};

}  // namespace cuda
}  // namespace lfe
