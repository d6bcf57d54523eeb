// The CPU hash table behind lfe.IdMap's "cpu" backend: raw int64 IDs -> dense row indices.
//
// Open addressing over 16-byte {key, row} slots (core/hash.h), linear probing from
// mix_hash(key) & mask, a power-of-two slot count and a bounded load factor. The IDs are
// also kept in row order in a plain array, which makes export, growth and truncation a
// pass over that array instead of a scan of the slots.
//
// This header and its source know nothing of torch: they take pointers and lengths.
#pragma once

#include <cstddef>
#include <cstdint>
#include <shared_mutex>
#include <vector>

#include "core/hash.h"

namespace lfe {

// An owning, zero-overhead array of slots. Large arrays are aligned to 2 MiB and marked for
// transparent huge pages, because every lookup is a random access and 4 KiB pages would add a
// TLB miss to most of them.
class SlotArray {
 public:
  SlotArray() = default;
  // Throws std::length_error when `count` slots cannot be addressed, std::bad_alloc when they
  // cannot be allocated.
  explicit SlotArray(int64_t count);
  ~SlotArray();
  SlotArray(SlotArray&& other) noexcept;
  SlotArray& operator=(SlotArray&& other) noexcept;
  SlotArray(const SlotArray&) = delete;
  SlotArray& operator=(const SlotArray&) = delete;

  Slot* data() { return slots_; }
  const Slot* data() const { return slots_; }
  int64_t size() const { return count_; }

  // Mark every slot empty: key kEmptyKey, row kNotFound.
  void clear();

 private:
  Slot* slots_ = nullptr;
  int64_t count_ = 0;
};

// A growable hash table from int64 ID to row, rows numbered 0, 1, 2, ... in insertion order.
//
// Thread safety: any number of threads may call the const methods (lookup, contains, ...) at
// once; insert, reserve and truncate take the table exclusively. Bulk lookups of large batches
// are also spread over OpenMP threads.
//
// Failure safety: every mutating method either completes or throws before changing anything
// (std::invalid_argument for bad arguments, std::bad_alloc when memory runs out).
class CpuIdMap {
 public:
  static constexpr double kDefaultMaxLoadFactor = 0.5;

  // `capacity_hint` IDs fit without growth. `max_load_factor` (in (0, 1)) bounds the fraction
  // of occupied slots; lower means shorter probes and more memory. A hint too large for any
  // addressable table throws std::invalid_argument; one that cannot be allocated, std::bad_alloc.
  explicit CpuIdMap(int64_t capacity_hint = 0, double max_load_factor = kDefaultMaxLoadFactor);

  CpuIdMap(const CpuIdMap&) = delete;
  CpuIdMap& operator=(const CpuIdMap&) = delete;

  // rows[i] = row of ids[i]. Unseen IDs get rows size(), size() + 1, ... in the order of their
  // first occurrence in `ids`. Throws std::invalid_argument, changing nothing, if any ID is
  // kEmptyKey. Single-threaded placement, so the numbering is deterministic.
  void insert(const int64_t* ids, int64_t count, int64_t* rows);

  // rows[i] = row of ids[i], or kNotFound. Never changes the table.
  void lookup(const int64_t* ids, int64_t count, int64_t* rows) const;

  // found[i] = whether ids[i] is in the table.
  void contains(const int64_t* ids, int64_t count, bool* found) const;

  // Number of IDs (and rows).
  int64_t size() const;

  // Number of slots currently allocated.
  int64_t capacity() const;

  double max_load_factor() const { return max_load_factor_; }

  // Copy the IDs of rows 0 .. min(size(), max_count) - 1 into `ids`; returns how many.
  int64_t copy_ids(int64_t* ids, int64_t max_count) const;

  // Grow so that `num_ids` IDs fit without further growth. Never shrinks. Throws
  // std::invalid_argument, changing nothing, if no addressable table holds that many.
  void reserve(int64_t num_ids);

  // Forget every ID whose row is >= `num_ids`. Keeps the slot count.
  void truncate(int64_t num_ids);

  // Mean number of slots a lookup of `ids` examines (1.0 = every key found in its home slot or
  // proved absent there). A diagnostic for benchmarks and tests.
  double mean_probe_length(const int64_t* ids, int64_t count) const;

 private:
  // Whether `num_ids` IDs fit in `slot_count` slots within the load factor.
  bool fits(int64_t num_ids, int64_t slot_count) const;
  // The fewest slots (a power of two) that hold `num_ids` IDs; throws std::invalid_argument,
  // naming the argument `what`, when no addressable table is that large.
  int64_t slot_count_for(int64_t num_ids, const char* what) const;
  int64_t lookup_unlocked(const int64_t* ids, int64_t count, int64_t* rows) const;
  // Rehash into `slot_count` slots if that is more than now; the row order must have room.
  void grow_to(int64_t slot_count);
  void reserve_row_order(int64_t num_ids);
  // Find or add ids[positions[j]] for j in [0, count) (positions null: j itself), in order,
  // writing rows[positions[j]]. The caller has reserved room for every one to be new.
  void place_in_order(const int64_t* ids, const int64_t* positions, int64_t count,
                      int64_t* rows);
  void rebuild(SlotArray& slots) const;

  const double max_load_factor_;
  SlotArray slots_;
  uint64_t mask_ = 0;
  std::vector<int64_t> ids_by_row_;
  mutable std::shared_mutex mutex_;
};

}  // namespace lfe
