// Key layout and hash shared by the CPU and CUDA hash tables, so both place keys alike.
#pragma once

#include <cstdint>

#if defined(__CUDACC__)
#define LFE_HOST_DEVICE __host__ __device__ __forceinline__
#else
#define LFE_HOST_DEVICE inline
#endif

namespace lfe {

// The one int64 value that is never a valid ID: it marks an empty slot (lfe.RESERVED_ID).
constexpr int64_t kEmptyKey = INT64_MIN;

// Row value of a key that is not in the table.
constexpr int64_t kNotFound = -1;

// Finaliser of MurmurHash3 (fmix64): every input bit affects every output bit, so
// sequential IDs, IDs that differ only in their high bits and IDs equal in their low 32
// bits all spread over the table instead of clustering.
LFE_HOST_DEVICE uint64_t mix_hash(int64_t key) {
  uint64_t h = static_cast<uint64_t>(key);
  h ^= h >> 33;
  h *= 0xff51afd7ed558ccdULL;
  h ^= h >> 33;
  h *= 0xc4ceb9fe1a85ec53ULL;
  h ^= h >> 33;
  return h;
}

// A slot holds the key and its row side by side: one 16-byte pair, so a probe that finds
// its key has the row in the same cache line.
struct alignas(16) Slot {
  int64_t key;
  int64_t row;
};

}  // namespace lfe
