// Checks the CUDA hash table (csrc/cuda/id_map_cuda.cuh) against a host reference: a random
// stream of batches with repeats through many rehashes, adversarial keys, lookups of absent
// keys and truncation. Exits 0 with a message where no GPU is visible, so that ctest passes
// on build machines; exits 1 if any check fails, printing the first mismatch of each.
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <limits>
#include <memory>
#include <random>
#include <stdexcept>
#include <string>
#include <unordered_map>
#include <vector>

#include "cuda/id_map_cuda.cuh"

namespace {

using lfe::cuda::DeviceIdMap;

// The semantics every backend shares: unseen IDs get rows size, size + 1, ... in the order of
// their first occurrence in the batch.
class HostReference {
 public:
  std::vector<int64_t> insert(const std::vector<int64_t>& ids) {
    std::vector<int64_t> rows(ids.size());
    for (std::size_t i = 0; i < ids.size(); ++i) {
      const auto [entry, is_new] = row_of_.emplace(ids[i], int64_t(ids_by_row_.size()));
      if (is_new) ids_by_row_.push_back(ids[i]);
      rows[i] = entry->second;
    }
    return rows;
  }

  std::vector<int64_t> lookup(const std::vector<int64_t>& ids) const {
    std::vector<int64_t> rows(ids.size());
    for (std::size_t i = 0; i < ids.size(); ++i) {
      const auto entry = row_of_.find(ids[i]);
      rows[i] = entry == row_of_.end() ? lfe::kNotFound : entry->second;
    }
    return rows;
  }

  void truncate(int64_t num_ids) {
    for (std::size_t row = std::size_t(num_ids); row < ids_by_row_.size(); ++row) {
      row_of_.erase(ids_by_row_[row]);
    }
    ids_by_row_.resize(std::size_t(num_ids));
  }

  const std::vector<int64_t>& ids() const { return ids_by_row_; }

 private:
  std::unordered_map<int64_t, int64_t> row_of_;
  std::vector<int64_t> ids_by_row_;
};

void check_cuda(cudaError_t status, const char* what) {
  if (status != cudaSuccess) {
    throw std::runtime_error(std::string(what) + ": " + cudaGetErrorString(status));
  }
}

// A device copy of a host vector, freed when it goes out of scope.
class DeviceVector {
 public:
  explicit DeviceVector(std::size_t count) : count_(count) {
    check_cuda(cudaMalloc(&data_, std::max<std::size_t>(count, 1) * sizeof(int64_t)),
               "cudaMalloc");
  }
  explicit DeviceVector(const std::vector<int64_t>& values) : DeviceVector(values.size()) {
    check_cuda(cudaMemcpy(data_, values.data(), values.size() * sizeof(int64_t),
                          cudaMemcpyHostToDevice),
               "copy to device");
  }
  ~DeviceVector() { cudaFree(data_); }
  DeviceVector(const DeviceVector&) = delete;
  DeviceVector& operator=(const DeviceVector&) = delete;

  int64_t* data() { return data_; }
  std::vector<int64_t> to_host() const {
    std::vector<int64_t> values(count_);
    check_cuda(cudaMemcpy(values.data(), data_, count_ * sizeof(int64_t), cudaMemcpyDeviceToHost),
               "copy to host");
    return values;
  }

 private:
  int64_t* data_ = nullptr;
  std::size_t count_;
};

int failures = 0;

void expect_equal(const std::vector<int64_t>& got, const std::vector<int64_t>& expected,
                  const std::string& what) {
  if (got.size() != expected.size()) {
    std::printf("FAIL %s: %zu values, expected %zu\n", what.c_str(), got.size(), expected.size());
    ++failures;
    return;
  }
  for (std::size_t i = 0; i < got.size(); ++i) {
    if (got[i] != expected[i]) {
      std::printf("FAIL %s: at %zu got %lld, expected %lld\n", what.c_str(), i,
                  static_cast<long long>(got[i]), static_cast<long long>(expected[i]));
      ++failures;
      return;
    }
  }
}

// Insert `ids` into both tables and compare the rows; then compare the IDs in row order.
void insert_and_compare(DeviceIdMap& table, HostReference& reference,
                        const std::vector<int64_t>& ids, const std::string& what) {
  DeviceVector device_ids(ids);
  DeviceVector device_rows(ids.size());
  table.insert(device_ids.data(), int64_t(ids.size()), device_rows.data(), nullptr);
  expect_equal(device_rows.to_host(), reference.insert(ids), what + " rows");

  DeviceVector exported(std::size_t(table.size()));
  table.copy_ids_async(exported.data(), nullptr);
  expect_equal(exported.to_host(), reference.ids(), what + " ids in row order");
}

void lookup_and_compare(const DeviceIdMap& table, const HostReference& reference,
                        const std::vector<int64_t>& ids, const std::string& what) {
  DeviceVector device_ids(ids);
  DeviceVector device_rows(ids.size());
  table.lookup_async(device_ids.data(), int64_t(ids.size()), device_rows.data(), nullptr);
  expect_equal(device_rows.to_host(), reference.lookup(ids), what + " lookup");
}

void check_random_stream(const std::shared_ptr<lfe::cuda::DeviceAllocator>& allocator) {
  std::mt19937_64 random(20240611);
  std::vector<int64_t> pool(200000);
  for (auto& id : pool) {
    do {
      id = int64_t(random());
    } while (id == lfe::kEmptyKey);
  }
  DeviceIdMap table(0, nullptr, allocator);
  HostReference reference;
  const int64_t first_capacity = table.capacity();

  for (int batch = 0; batch < 30; ++batch) {
    // Draws from a growing prefix of the pool: batches mix known IDs, new IDs and repeats.
    const std::size_t batch_size = 1 + random() % 40000;
    const std::size_t drawable = std::min(pool.size(), std::size_t(batch + 1) * 8000);
    std::vector<int64_t> ids(batch_size);
    for (auto& id : ids) id = pool[random() % drawable];
    insert_and_compare(table, reference, ids, "random batch " + std::to_string(batch));
  }
  if (table.capacity() < first_capacity * 1024) {
    std::printf("FAIL random stream: capacity %lld, expected many doublings of %lld\n",
                static_cast<long long>(table.capacity()),
                static_cast<long long>(first_capacity));
    ++failures;
  }
  lookup_and_compare(table, reference, pool, "random stream, all pool IDs");
  std::vector<int64_t> empty_batch;
  insert_and_compare(table, reference, empty_batch, "empty batch");

  table.truncate(table.size() / 2, nullptr);
  reference.truncate(int64_t(reference.ids().size() / 2));
  lookup_and_compare(table, reference, pool, "after truncate");
  insert_and_compare(table, reference, pool, "re-insert after truncate");
}

void check_adversarial_keys(const std::shared_ptr<lfe::cuda::DeviceAllocator>& allocator) {
  constexpr int64_t kCount = 5000;
  std::vector<std::vector<int64_t>> families(5);
  for (int64_t i = 0; i < kCount; ++i) {
    families[0].push_back(i);                               // sequential
    families[1].push_back(i << 32);                         // multiples of 2**32
    families[2].push_back((i << 32) | 0x7fffffff);          // equal low 32 bits
    families[3].push_back(-1 - i);                          // negatives
    families[4].push_back(std::numeric_limits<int64_t>::max() - i);  // top of the range
  }
  families[4].push_back(lfe::kEmptyKey + 1);

  DeviceIdMap table(0, nullptr, allocator);
  HostReference reference;
  for (std::size_t family = 0; family < families.size(); ++family) {
    insert_and_compare(table, reference, families[family],
                       "adversarial family " + std::to_string(family));
  }
  std::vector<int64_t> absent = {kCount, int64_t(kCount) << 32, -1 - kCount, 12345678901LL};
  lookup_and_compare(table, reference, absent, "absent adversarial keys");
}

}  // namespace

int main() {
  int device_count = 0;
  const cudaError_t status = cudaGetDeviceCount(&device_count);
  if (status != cudaSuccess || device_count == 0) {
    std::printf("lfe_cuda_id_map_driver: no CUDA device is visible (%s); the CUDA hash table "
                "compiled, nothing to run.\n",
                status != cudaSuccess ? cudaGetErrorString(status) : "0 devices");
    return 0;
  }

  try {
    auto allocator = std::make_shared<lfe::cuda::StreamOrderedAllocator>();
    check_random_stream(allocator);
    check_adversarial_keys(allocator);
  } catch (const std::exception& error) {
    std::printf("FAIL: %s\n", error.what());
    return 1;
  }
  if (failures > 0) {
    std::printf("lfe_cuda_id_map_driver: %d check(s) failed\n", failures);
    return 1;
  }
  std::printf("lfe_cuda_id_map_driver: all checks passed\n");
  return 0;
}
