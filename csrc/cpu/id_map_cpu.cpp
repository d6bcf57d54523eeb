#include "cpu/id_map_cpu.h"

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdlib>
#include <limits>
#include <mutex>
#include <new>
#include <stdexcept>
#include <string>
#include <utility>

#if defined(__linux__)
#include <sys/mman.h>
#endif

#if defined(_OPENMP)
#include <omp.h>
#endif

namespace lfe {
namespace {

// How many keys ahead of the one being probed the home slot is prefetched: enough misses in
// flight to hide DRAM latency, few enough that the lines are still cached when probed.
constexpr int64_t kPrefetchDistance = 16;
static_assert((kPrefetchDistance & (kPrefetchDistance - 1)) == 0, "ring index uses a mask");

// Below this many keys a bulk lookup runs on the calling thread: starting an OpenMP team
// costs more than it saves.
constexpr int64_t kParallelLookupThreshold = int64_t{1} << 15;

constexpr int64_t kMinSlotCount = 16;
constexpr size_t kHugePageBytes = size_t{2} << 20;

// The most slots one array may hold: its size in bytes must fit in ptrdiff_t, or the byte count
// wraps around and a tiny allocation is taken for a huge one.
constexpr int64_t kMaxSlotArrayCount =
    static_cast<int64_t>(std::numeric_limits<std::ptrdiff_t>::max() / sizeof(Slot));

constexpr int64_t largest_power_of_two_at_most(int64_t value) {
  int64_t power = 1;
  while (power <= value / 2) {
    power *= 2;
  }
  return power;
}

// Slot counts are powers of two, so this is the largest a table can have.
constexpr int64_t kMaxSlotCount = largest_power_of_two_at_most(kMaxSlotArrayCount);
static_assert(kMaxSlotCount >= kMinSlotCount, "the smallest table must be addressable");

// std::bad_alloc with a message: pybind11 raises it as a MemoryError that says what failed.
class AllocationError : public std::bad_alloc {
 public:
  explicit AllocationError(std::string message) : message_(std::move(message)) {}
  const char* what() const noexcept override { return message_.c_str(); }

 private:
  std::string message_;
};

inline void prefetch_slot(const Slot* slot) {
#if defined(__GNUC__) || defined(__clang__)
  __builtin_prefetch(slot, 0 /* read */, 1 /* low temporal locality */);
#endif
}

inline uint64_t home_of(int64_t key, uint64_t mask) { return mix_hash(key) & mask; }

// Row of `key` probing from `position`, or kNotFound. Empty slots hold row kNotFound, so a
// lookup of kEmptyKey itself also answers kNotFound.
inline int64_t find_row(const Slot* slots, uint64_t mask, uint64_t position, int64_t key) {
  while (true) {
    const Slot& slot = slots[position];
    if (slot.key == key || slot.key == kEmptyKey) {
      return slot.key == key ? slot.row : kNotFound;
    }
    position = (position + 1) & mask;
  }
}

// Calls visit(i, key_i, home_i) for i in [begin, end) in order, where key_i = key_at(i), with
// the home slot of key i + kPrefetchDistance prefetched; each key is read and hashed once.
template <typename KeyAt, typename Visit>
inline void for_each_prefetched(const Slot* slots, uint64_t mask, KeyAt key_at, int64_t begin,
                                int64_t end, Visit visit) {
  int64_t keys[kPrefetchDistance];
  uint64_t homes[kPrefetchDistance];
  constexpr int64_t ring_mask = kPrefetchDistance - 1;
  const auto fetch = [&](int64_t i) {
    keys[i & ring_mask] = key_at(i);
    homes[i & ring_mask] = home_of(keys[i & ring_mask], mask);
    prefetch_slot(slots + homes[i & ring_mask]);
  };

  for (int64_t i = begin; i < std::min(end, begin + kPrefetchDistance); ++i) {
    fetch(i);
  }
  for (int64_t i = begin; i < end; ++i) {
    const int64_t key = keys[i & ring_mask];
    const uint64_t home = homes[i & ring_mask];
    if (i + kPrefetchDistance < end) {
      fetch(i + kPrefetchDistance);
    }
    visit(i, key, home);
  }
}

// Runs body(begin, end) over [0, count) in contiguous chunks, one per OpenMP thread when the
// batch is large enough to pay for the team; returns the sum of what the chunks return.
template <typename Body>
int64_t parallel_sum_over(int64_t count, Body body) {
#if defined(_OPENMP)
  if (count >= kParallelLookupThreshold && omp_get_max_threads() > 1) {
    int64_t total = 0;
#pragma omp parallel reduction(+ : total)
    {
      const int64_t threads = omp_get_num_threads();
      const int64_t thread = omp_get_thread_num();
      const int64_t chunk = (count + threads - 1) / threads;
      const int64_t begin = std::min(count, thread * chunk);
      const int64_t end = std::min(count, begin + chunk);
      total += body(begin, end);
    }
    return total;
  }
#endif
  return body(int64_t{0}, count);
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// SlotArray

SlotArray::SlotArray(int64_t count) : count_(count) {
  if (count < 0 || count > kMaxSlotArrayCount) {
    throw std::length_error("a slot array of " + std::to_string(count) + " slots of " +
                            std::to_string(sizeof(Slot)) + " bytes cannot be addressed");
  }

  // No overflow: bytes <= PTRDIFF_MAX, so rounding up to 2 MiB still fits in size_t.
  const size_t bytes = static_cast<size_t>(count) * sizeof(Slot);
  const size_t alignment = bytes >= kHugePageBytes ? kHugePageBytes : alignof(Slot);
  const size_t rounded = (bytes + alignment - 1) / alignment * alignment;
  slots_ = static_cast<Slot*>(std::aligned_alloc(alignment, rounded));
  if (slots_ == nullptr) {
    throw AllocationError("could not allocate " + std::to_string(rounded) + " bytes for " +
                          std::to_string(count) + " hash-table slots");
  }
#if defined(__linux__) && defined(MADV_HUGEPAGE)
  if (alignment == kHugePageBytes) {
    madvise(slots_, rounded, MADV_HUGEPAGE);  // advisory: failure only costs speed
  }
#endif
  clear();
}

SlotArray::~SlotArray() { std::free(slots_); }

SlotArray::SlotArray(SlotArray&& other) noexcept
    : slots_(std::exchange(other.slots_, nullptr)), count_(std::exchange(other.count_, 0)) {}

SlotArray& SlotArray::operator=(SlotArray&& other) noexcept {
  if (this != &other) {
    std::free(slots_);
    slots_ = std::exchange(other.slots_, nullptr);
    count_ = std::exchange(other.count_, 0);
  }
  return *this;
}

void SlotArray::clear() {
  Slot* slots = slots_;
  const int64_t count = count_;
#pragma omp parallel for schedule(static) if (count >= kParallelLookupThreshold)
  for (int64_t i = 0; i < count; ++i) {
    slots[i] = Slot{kEmptyKey, kNotFound};
  }
}

// ---------------------------------------------------------------------------------------------
// CpuIdMap

CpuIdMap::CpuIdMap(int64_t capacity_hint, double max_load_factor)
    : max_load_factor_(max_load_factor) {
  if (!(max_load_factor > 0.0 && max_load_factor < 1.0)) {
    throw std::invalid_argument("max_load_factor must be in (0, 1), got " +
                                std::to_string(max_load_factor));
  }
  if (capacity_hint < 0) {
    throw std::invalid_argument("capacity_hint must be >= 0, got " +
                                std::to_string(capacity_hint));
  }

  const int64_t slot_count = slot_count_for(capacity_hint, "capacity_hint");
  try {
    slots_ = SlotArray(slot_count);
    ids_by_row_.reserve(static_cast<size_t>(capacity_hint));
  } catch (const std::bad_alloc&) {
    throw AllocationError("capacity_hint " + std::to_string(capacity_hint) + " needs " +
                          std::to_string(slot_count) + " slots of " +
                          std::to_string(sizeof(Slot)) +
                          " bytes, which could not be allocated; a smaller hint will do, the "
                          "table grows as needed");
  }
  mask_ = static_cast<uint64_t>(slots_.size() - 1);
}

bool CpuIdMap::fits(int64_t num_ids, int64_t slot_count) const {
  // slot_count is a power of two, so the product is exact; dividing num_ids by the load factor
  // instead would round away the difference between 2**57 and 2**57 + 1 IDs.
  const double most_ids = std::floor(static_cast<double>(slot_count) * max_load_factor_);
  // Strictly more slots than IDs, so every probe sequence reaches an empty slot.
  return slot_count > num_ids && num_ids <= static_cast<int64_t>(most_ids);
}

int64_t CpuIdMap::slot_count_for(int64_t num_ids, const char* what) const {
  if (!fits(num_ids, kMaxSlotCount)) {
    throw std::invalid_argument(
        std::string(what) + " " + std::to_string(num_ids) + " is too large: at max_load_factor " +
        std::to_string(max_load_factor_) + " that many IDs need more than " +
        std::to_string(kMaxSlotCount) + " slots of " + std::to_string(sizeof(Slot)) +
        " bytes, the most one table can address");
  }

  // Stops at kMaxSlotCount at the latest, so the doubling cannot overflow.
  int64_t slot_count = kMinSlotCount;
  while (!fits(num_ids, slot_count)) {
    slot_count *= 2;
  }
  return slot_count;
}

int64_t CpuIdMap::size() const {
  std::shared_lock<std::shared_mutex> lock(mutex_);
  return static_cast<int64_t>(ids_by_row_.size());
}

int64_t CpuIdMap::capacity() const {
  std::shared_lock<std::shared_mutex> lock(mutex_);
  return slots_.size();
}

int64_t CpuIdMap::copy_ids(int64_t* ids, int64_t max_count) const {
  std::shared_lock<std::shared_mutex> lock(mutex_);
  const int64_t count = std::min<int64_t>(max_count, static_cast<int64_t>(ids_by_row_.size()));
  std::copy(ids_by_row_.begin(), ids_by_row_.begin() + count, ids);
  return count;
}

int64_t CpuIdMap::lookup_unlocked(const int64_t* ids, int64_t count, int64_t* rows) const {
  const Slot* slots = slots_.data();
  const uint64_t mask = mask_;

  return parallel_sum_over(count, [&](int64_t begin, int64_t end) {
    int64_t missing = 0;
    const auto key_at = [ids](int64_t i) { return ids[i]; };
    const auto visit = [&](int64_t i, int64_t key, uint64_t home) {
      rows[i] = find_row(slots, mask, home, key);
      missing += rows[i] == kNotFound;
    };
    for_each_prefetched(slots, mask, key_at, begin, end, visit);
    return missing;
  });
}

void CpuIdMap::lookup(const int64_t* ids, int64_t count, int64_t* rows) const {
  std::shared_lock<std::shared_mutex> lock(mutex_);
  lookup_unlocked(ids, count, rows);
}

void CpuIdMap::contains(const int64_t* ids, int64_t count, bool* found) const {
  std::shared_lock<std::shared_mutex> lock(mutex_);
  const Slot* slots = slots_.data();
  const uint64_t mask = mask_;

  parallel_sum_over(count, [&](int64_t begin, int64_t end) {
    const auto key_at = [ids](int64_t i) { return ids[i]; };
    const auto visit = [&](int64_t i, int64_t key, uint64_t home) {
      found[i] = find_row(slots, mask, home, key) != kNotFound;
    };
    for_each_prefetched(slots, mask, key_at, begin, end, visit);
    return int64_t{0};
  });
}

void CpuIdMap::insert(const int64_t* ids, int64_t count, int64_t* rows) {
  std::unique_lock<std::shared_mutex> lock(mutex_);
  if (std::find(ids, ids + count, kEmptyKey) != ids + count) {
    throw std::invalid_argument(
        "ids contains the reserved value -2**63 (kEmptyKey), which marks empty slots");
  }

  // Fast path: even if every ID is new the table stays within its load factor, so one
  // find-or-place pass does it all.
  const int64_t size_before = static_cast<int64_t>(ids_by_row_.size());
  if (fits(size_before + count, slots_.size())) {
    reserve_row_order(size_before + count);
    place_in_order(ids, nullptr, count, rows);
    return;
  }

  // Otherwise grow by the number of unknown IDs, not the batch size, so that a large batch of
  // known IDs does not inflate the table: a read-only lookup finds them first.
  const int64_t missing = lookup_unlocked(ids, count, rows);
  if (missing == 0) {
    return;
  }
  std::vector<int64_t> missing_positions;
  if (missing < count) {
    missing_positions.reserve(static_cast<size_t>(missing));
    for (int64_t i = 0; i < count; ++i) {
      if (rows[i] == kNotFound) {
        missing_positions.push_back(i);
      }
    }
  }

  // Allocate before anything changes, so that the placement below cannot fail halfway.
  const int64_t size_after = size_before + missing;
  const int64_t slot_count = slot_count_for(size_after, "the number of IDs after this insert");
  reserve_row_order(size_after);
  grow_to(slot_count);

  place_in_order(ids, missing < count ? missing_positions.data() : nullptr, missing, rows);
}

void CpuIdMap::place_in_order(const int64_t* ids, const int64_t* positions, int64_t count,
                              int64_t* rows) {
  // In input order, so new rows follow first occurrence; a repeat of an ID placed earlier in
  // the batch finds it and takes its row. Single-threaded, hence deterministic.
  Slot* slots = slots_.data();
  const uint64_t mask = mask_;
  const auto position_of = [positions](int64_t j) { return positions ? positions[j] : j; };
  const auto key_at = [ids, &position_of](int64_t j) { return ids[position_of(j)]; };

  for_each_prefetched(slots, mask, key_at, 0, count, [&](int64_t j, int64_t key, uint64_t home) {
    uint64_t position = home;
    while (slots[position].key != key && slots[position].key != kEmptyKey) {
      position = (position + 1) & mask;
    }
    if (slots[position].key == kEmptyKey) {
      slots[position] = Slot{key, static_cast<int64_t>(ids_by_row_.size())};
      ids_by_row_.push_back(key);  // capacity reserved by the caller: never reallocates
    }
    rows[position_of(j)] = slots[position].row;
  });
}

void CpuIdMap::reserve_row_order(int64_t num_ids) {
  // Geometric, so that a stream of small inserts copies the row-order array O(1) times per ID.
  const size_t wanted = static_cast<size_t>(num_ids);
  if (wanted > ids_by_row_.capacity()) {
    const size_t doubled = std::min(2 * ids_by_row_.capacity(), ids_by_row_.max_size());
    ids_by_row_.reserve(std::max(wanted, doubled));
  }
}

void CpuIdMap::reserve(int64_t num_ids) {
  std::unique_lock<std::shared_mutex> lock(mutex_);
  if (num_ids < 0) {
    throw std::invalid_argument("num_ids must be >= 0, got " + std::to_string(num_ids));
  }

  const int64_t slot_count = slot_count_for(num_ids, "num_ids");
  reserve_row_order(num_ids);
  grow_to(slot_count);
}

void CpuIdMap::grow_to(int64_t slot_count) {
  if (slot_count <= slots_.size()) {
    return;
  }

  // Build the grown table completely before swapping it in: if allocation throws, the old
  // table is untouched. Rows come from ids_by_row_, so no ID changes its row.
  SlotArray grown(slot_count);
  rebuild(grown);
  slots_ = std::move(grown);
  mask_ = static_cast<uint64_t>(slot_count - 1);
}

void CpuIdMap::rebuild(SlotArray& slots) const {
  Slot* data = slots.data();
  const uint64_t mask = static_cast<uint64_t>(slots.size() - 1);
  const int64_t* keys = ids_by_row_.data();
  const int64_t count = static_cast<int64_t>(ids_by_row_.size());

  // Keys are distinct, so placing one needs no comparison: take the first empty slot.
  const auto key_at = [keys](int64_t row) { return keys[row]; };
  for_each_prefetched(data, mask, key_at, 0, count, [&](int64_t row, int64_t key, uint64_t home) {
    uint64_t position = home;
    while (data[position].key != kEmptyKey) {
      position = (position + 1) & mask;
    }
    data[position] = Slot{key, row};
  });
}

void CpuIdMap::truncate(int64_t num_ids) {
  std::unique_lock<std::shared_mutex> lock(mutex_);
  if (num_ids < 0) {
    throw std::invalid_argument("num_ids must be >= 0, got " + std::to_string(num_ids));
  }
  if (num_ids >= static_cast<int64_t>(ids_by_row_.size())) {
    return;
  }

  // Rebuilding in place allocates nothing, so it cannot fail halfway.
  ids_by_row_.resize(static_cast<size_t>(num_ids));
  slots_.clear();
  rebuild(slots_);
}

double CpuIdMap::mean_probe_length(const int64_t* ids, int64_t count) const {
  std::shared_lock<std::shared_mutex> lock(mutex_);
  if (count == 0) {
    return 0.0;
  }

  const Slot* slots = slots_.data();
  const uint64_t mask = mask_;
  int64_t probes = 0;
  for (int64_t i = 0; i < count; ++i) {
    uint64_t position = home_of(ids[i], mask);
    ++probes;
    while (slots[position].key != ids[i] && slots[position].key != kEmptyKey) {
      position = (position + 1) & mask;
      ++probes;
    }
  }
  return static_cast<double>(probes) / static_cast<double>(count);
}

}  // namespace lfe
