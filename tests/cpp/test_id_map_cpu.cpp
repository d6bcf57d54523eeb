// Unit tests of the torch-free CPU hash table (csrc/cpu/id_map_cpu.h).
#include <gtest/gtest.h>

#include <cstdint>
#include <limits>
#include <new>
#include <numeric>
#include <random>
#include <stdexcept>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "cpu/id_map_cpu.h"

namespace lfe {
namespace {

std::vector<int64_t> insert_all(CpuIdMap& table, const std::vector<int64_t>& ids) {
  std::vector<int64_t> rows(ids.size());
  table.insert(ids.data(), static_cast<int64_t>(ids.size()), rows.data());
  return rows;
}

std::vector<int64_t> lookup_all(const CpuIdMap& table, const std::vector<int64_t>& ids) {
  std::vector<int64_t> rows(ids.size());
  table.lookup(ids.data(), static_cast<int64_t>(ids.size()), rows.data());
  return rows;
}

std::vector<int64_t> exported_ids(const CpuIdMap& table) {
  std::vector<int64_t> ids(static_cast<size_t>(table.size()));
  table.copy_ids(ids.data(), static_cast<int64_t>(ids.size()));
  return ids;
}

std::vector<int64_t> random_ids(int64_t count, uint64_t seed) {
  std::mt19937_64 generator(seed);
  std::vector<int64_t> ids(static_cast<size_t>(count));
  for (auto& id : ids) {
    do {
      id = static_cast<int64_t>(generator());
    } while (id == kEmptyKey);
  }
  return ids;
}

// IDs chosen so that every one of them has home slot `home` in a table of `slot_count` slots.
std::vector<int64_t> ids_with_home(uint64_t home, int64_t slot_count, int64_t count) {
  std::vector<int64_t> ids;
  for (int64_t candidate = 0; static_cast<int64_t>(ids.size()) < count; ++candidate) {
    if ((mix_hash(candidate) & static_cast<uint64_t>(slot_count - 1)) == home) {
      ids.push_back(candidate);
    }
  }
  return ids;
}

TEST(CpuIdMap, NewIdsGetRowsInFirstOccurrenceOrder) {
  CpuIdMap table;

  EXPECT_EQ(insert_all(table, {50, -7, 50, 3, -7, 9}), (std::vector<int64_t>{0, 1, 0, 2, 1, 3}));
  EXPECT_EQ(insert_all(table, {9, 11, 3, 12, 11}), (std::vector<int64_t>{3, 4, 2, 5, 4}));

  EXPECT_EQ(table.size(), 6);
  EXPECT_EQ(exported_ids(table), (std::vector<int64_t>{50, -7, 3, 9, 11, 12}));
}

TEST(CpuIdMap, LookupGivesNotFoundForUnknownIdsAndChangesNothing) {
  CpuIdMap table;
  insert_all(table, {1, 2, 3});

  EXPECT_EQ(lookup_all(table, {3, 4, 1, -1}), (std::vector<int64_t>{2, kNotFound, 0, kNotFound}));

  EXPECT_EQ(table.size(), 3);
  bool found[3];
  const int64_t probe_ids[3] = {2, 5, 3};
  table.contains(probe_ids, 3, found);
  EXPECT_TRUE(found[0]);
  EXPECT_FALSE(found[1]);
  EXPECT_TRUE(found[2]);
}

TEST(CpuIdMap, CollidingIdsProbeLinearlyAndWrapAroundTheTableEnd) {
  CpuIdMap table(0);
  ASSERT_EQ(table.capacity(), 16);

  // Six IDs whose home is the last slot: they fill it and wrap around to slots 0..4.
  const std::vector<int64_t> ids = ids_with_home(15, 16, 6);
  EXPECT_EQ(insert_all(table, ids), (std::vector<int64_t>{0, 1, 2, 3, 4, 5}));

  ASSERT_EQ(table.capacity(), 16);
  EXPECT_EQ(lookup_all(table, ids), (std::vector<int64_t>{0, 1, 2, 3, 4, 5}));
  // The k-th colliding ID is found after k + 1 probes: (1 + 2 + ... + 6) / 6.
  EXPECT_DOUBLE_EQ(table.mean_probe_length(ids.data(), 6), 3.5);
}

TEST(CpuIdMap, GrowthKeepsEveryRowAndBoundsTheLoadFactor) {
  CpuIdMap table(16);
  const std::vector<int64_t> ids = random_ids(300000, 1);

  for (size_t begin = 0, batch = 1; begin < ids.size(); begin += batch, batch = batch * 3 + 1) {
    const size_t end = std::min(ids.size(), begin + batch);
    const std::vector<int64_t> part(ids.begin() + begin, ids.begin() + end);
    insert_all(table, part);
    EXPECT_LE(static_cast<double>(table.size()), 0.5 * static_cast<double>(table.capacity()));
  }

  std::vector<int64_t> expected_rows(ids.size());
  std::iota(expected_rows.begin(), expected_rows.end(), 0);
  EXPECT_EQ(lookup_all(table, ids), expected_rows);
  EXPECT_EQ(exported_ids(table), ids);
  EXPECT_EQ(table.capacity() & (table.capacity() - 1), 0) << "slot count is a power of two";
}

TEST(CpuIdMap, ReserveMakesRoomForExactlyThatManyIdsWithoutGrowth) {
  CpuIdMap table;
  table.reserve(1000);
  const int64_t capacity = table.capacity();

  const std::vector<int64_t> ids = random_ids(1000, 2);
  insert_all(table, ids);

  EXPECT_EQ(table.capacity(), capacity);
  std::vector<int64_t> expected_rows(ids.size());
  std::iota(expected_rows.begin(), expected_rows.end(), 0);
  EXPECT_EQ(lookup_all(table, ids), expected_rows);
}

TEST(CpuIdMap, ReservedKeyIsRejectedAndTheTableIsUnchanged) {
  CpuIdMap table;
  insert_all(table, {1, 2});

  const std::vector<int64_t> bad = {3, kEmptyKey, 4};
  std::vector<int64_t> rows(bad.size());
  EXPECT_THROW(table.insert(bad.data(), 3, rows.data()), std::invalid_argument);

  EXPECT_EQ(table.size(), 2);
  EXPECT_EQ(lookup_all(table, {3, 4, kEmptyKey}),
            (std::vector<int64_t>{kNotFound, kNotFound, kNotFound}));
}

TEST(CpuIdMap, ExtremeAndStructuredKeysAreDistinct) {
  const int64_t max_id = std::numeric_limits<int64_t>::max();
  std::vector<int64_t> ids = {kEmptyKey + 1, max_id, -1, 0, 1};
  for (int64_t i = 1; i <= 2000; ++i) {
    ids.push_back(i << 32);            // equal low 32 bits
    ids.push_back((i << 32) | 12345);  // equal low 32 bits, nonzero
    ids.push_back(-i * 1000003);       // negatives
    ids.push_back(1000000 + i);        // sequential
  }
  CpuIdMap table;

  const std::vector<int64_t> rows = insert_all(table, ids);

  std::vector<int64_t> expected_rows(ids.size());
  std::iota(expected_rows.begin(), expected_rows.end(), 0);
  EXPECT_EQ(rows, expected_rows);
  EXPECT_EQ(lookup_all(table, ids), expected_rows);
  EXPECT_LT(table.mean_probe_length(ids.data(), static_cast<int64_t>(ids.size())), 2.0);
}

TEST(CpuIdMap, TruncateForgetsLaterRowsAndTheirIdsGetNewRows) {
  CpuIdMap table;
  insert_all(table, {10, 20, 30, 40});

  table.truncate(2);

  EXPECT_EQ(table.size(), 2);
  EXPECT_EQ(lookup_all(table, {10, 20, 30, 40}),
            (std::vector<int64_t>{0, 1, kNotFound, kNotFound}));
  EXPECT_EQ(insert_all(table, {40, 30}), (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(exported_ids(table), (std::vector<int64_t>{10, 20, 40, 30}));
}

TEST(CpuIdMap, ConcurrentBulkLookupsFromManyThreadsAgree) {
  CpuIdMap table;
  const std::vector<int64_t> ids = random_ids(200000, 3);
  insert_all(table, ids);
  // Half the queries miss; batches big enough to use OpenMP inside each thread as well.
  std::vector<int64_t> queries = random_ids(200000, 4);
  queries.insert(queries.end(), ids.begin(), ids.end());

  std::vector<std::vector<int64_t>> rows_per_thread(6);
  std::vector<std::thread> threads;
  for (auto& rows : rows_per_thread) {
    threads.emplace_back([&table, &queries, &rows] {
      for (int repeat = 0; repeat < 5; ++repeat) {
        rows = lookup_all(table, queries);
      }
    });
  }
  for (auto& thread : threads) {
    thread.join();
  }

  std::vector<int64_t> expected_rows(queries.size(), kNotFound);
  std::iota(expected_rows.begin() + 200000, expected_rows.end(), 0);
  for (const auto& rows : rows_per_thread) {
    EXPECT_EQ(rows, expected_rows);
  }
}

TEST(CpuIdMap, MatchesAReferenceMapOnRandomBatches) {
  CpuIdMap table;
  std::unordered_map<int64_t, int64_t> reference;
  std::mt19937_64 generator(5);

  for (int batch = 0; batch < 200; ++batch) {
    std::vector<int64_t> ids(generator() % 500);
    for (auto& id : ids) {
      id = static_cast<int64_t>(generator() % 3000) - 1500;  // many repeats across batches
    }

    const std::vector<int64_t> rows = insert_all(table, ids);

    for (size_t i = 0; i < ids.size(); ++i) {
      const auto [entry, added] =
          reference.emplace(ids[i], static_cast<int64_t>(reference.size()));
      ASSERT_EQ(rows[i], entry->second);
    }
  }
  EXPECT_EQ(table.size(), static_cast<int64_t>(reference.size()));
}

TEST(CpuIdMap, RejectsBadConstructionArguments) {
  EXPECT_THROW(CpuIdMap(0, 1.0), std::invalid_argument);
  EXPECT_THROW(CpuIdMap(0, 0.0), std::invalid_argument);
  EXPECT_THROW(CpuIdMap(-1), std::invalid_argument);
}

// Slot counts whose size in bytes wraps around size_t once gave a tiny allocation that clear()
// then overran; they must be refused before anything is allocated.
TEST(CpuIdMap, CapacityHintsBeyondAddressableMemoryAreRejected) {
  const int64_t max_id = std::numeric_limits<int64_t>::max();
  for (const int64_t hint : {int64_t{1} << 58, int64_t{1} << 59, int64_t{1} << 60,
                             int64_t{1} << 61, int64_t{1} << 62, max_id}) {
    try {
      CpuIdMap table(hint);
      ADD_FAILURE() << "capacity_hint " << hint << " was accepted";
    } catch (const std::invalid_argument& error) {
      EXPECT_NE(std::string(error.what()).find("capacity_hint"), std::string::npos)
          << error.what();
    }
  }
  // One ID past the 2**57 that the largest table (2**58 slots) holds at load factor 0.5.
  EXPECT_THROW(CpuIdMap((int64_t{1} << 57) + 1), std::invalid_argument);
  EXPECT_THROW(CpuIdMap((int64_t{1} << 58) - (int64_t{1} << 54), 0.9), std::invalid_argument);
}

TEST(CpuIdMap, AddressableButUnallocatableCapacityHintThrowsBadAlloc) {
  // 2**58 slots of 16 bytes: 4 EiB, a valid size that no machine can provide.
  try {
    CpuIdMap table(int64_t{1} << 57);
    ADD_FAILURE() << "a 4 EiB table was allocated";
  } catch (const std::bad_alloc& error) {
    EXPECT_NE(std::string(error.what()).find("capacity_hint"), std::string::npos)
        << error.what();
  }
}

TEST(CpuIdMap, ReserveBeyondAddressableMemoryThrowsAndChangesNothing) {
  CpuIdMap table;
  insert_all(table, {7, 8, 9});
  const int64_t capacity = table.capacity();

  for (const int64_t num_ids : {int64_t{1} << 59, int64_t{1} << 61,
                                std::numeric_limits<int64_t>::max()}) {
    EXPECT_THROW(table.reserve(num_ids), std::invalid_argument);
  }

  EXPECT_EQ(table.capacity(), capacity);
  EXPECT_EQ(exported_ids(table), (std::vector<int64_t>{7, 8, 9}));
  EXPECT_EQ(lookup_all(table, {9, 8, 7}), (std::vector<int64_t>{2, 1, 0}));
}

TEST(SlotArray, CountsWhoseByteSizeOverflowAreRejected) {
  const int64_t max_count = std::numeric_limits<int64_t>::max();
  for (const int64_t count : {int64_t{-1}, int64_t{1} << 59, int64_t{1} << 60, max_count}) {
    EXPECT_THROW(SlotArray slots(count), std::length_error) << count;
  }
}

}  // namespace
}  // namespace lfe
