// Threading: the ThreadPool itself (and pools nested in cycles, under a watchdog), pooled forward() against the
// single-threaded forward() bit for bit for 1..8 threads, the decode split (RowChunks, decode_chunk_count) in any
// claim order, the row-range API on std::thread, and many concurrent calls on one layer (run under
// ThreadSanitizer by .ci/steps/30-tsan.sh).
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <future>
#include <limits>
#include <numeric>
#include <random>
#include <stdexcept>
#include <thread>
#include <vector>

#include "../test_util.hpp"

namespace {

using bitlinear::ActivationScale;
using bitlinear::ThreadPool;

constexpr float kCanary = -12345.5f;  // pre-fills outputs, so an output nobody wrote is caught

// ---------------------------------------------------------------- ThreadPool

TEST(ThreadPool, RejectsBadSizes) {
  EXPECT_THROW(ThreadPool(0), std::invalid_argument);
  EXPECT_THROW(ThreadPool(ThreadPool::max_threads + 1), std::invalid_argument);
  ThreadPool pool(2);
  EXPECT_THROW(pool.parallel_for(0, 10, 0, [](std::size_t, std::size_t) {}), std::invalid_argument);
}

TEST(ThreadPool, SpinTimeIsBounded) {
  EXPECT_THROW(ThreadPool(2, std::chrono::microseconds(-1)), std::invalid_argument);
  EXPECT_THROW(ThreadPool(2, ThreadPool::max_spin_time + std::chrono::microseconds(1)), std::invalid_argument);
  EXPECT_THROW(ThreadPool(2, std::chrono::hours(1)), std::invalid_argument);
  EXPECT_EQ(ThreadPool(2, ThreadPool::max_spin_time).spin_time(), ThreadPool::max_spin_time);
  EXPECT_EQ(ThreadPool(2).spin_time(), std::chrono::microseconds(50));
}

TEST(ThreadPool, SizeCountsTheCaller) {
  for (std::size_t n = 1; n <= 4; ++n) EXPECT_EQ(ThreadPool(n).size(), n);
  EXPECT_GE(ThreadPool().size(), 1u);
}

TEST(ThreadPool, EveryIndexOnceInDocumentedChunks) {
  for (std::size_t threads = 1; threads <= 8; ++threads) {
    ThreadPool pool(threads);
    for (std::size_t begin : {0u, 3u}) {
      for (std::size_t count : {0u, 1u, 2u, 7u, 64u, 1000u}) {
        for (std::size_t chunk : {1u, 3u, 64u, 5000u}) {
          const std::size_t end = begin + count;
          std::vector<std::atomic<int>> hits(end + 1);
          std::atomic<int> bad_chunks{0};
          pool.parallel_for(begin, end, chunk, [&](std::size_t b, std::size_t e) {
            // Chunks start at begin + i * chunk and hold chunk indices, except the last one.
            if (b < begin || (b - begin) % chunk != 0 || e <= b || e > end || (e - b != chunk && e != end)) {
              bad_chunks.fetch_add(1);
            }
            for (std::size_t i = b; i < e && i <= end; ++i) hits[i].fetch_add(1);
          });
          EXPECT_EQ(bad_chunks.load(), 0) << "threads " << threads << " chunk " << chunk;
          for (std::size_t i = 0; i <= end; ++i) {
            ASSERT_EQ(hits[i].load(), (i >= begin && i < end) ? 1 : 0)
                << "index " << i << " of [" << begin << ", " << end << ") chunk " << chunk << " threads " << threads;
          }
        }
      }
    }
  }
}

TEST(ThreadPool, UsesSeveralThreadsWhenWorkWaits) {
  ThreadPool pool(3);
  // Each task waits (bounded) until a second thread has entered, which only happens if workers take tasks.
  std::atomic<int> inside{0};
  std::atomic<bool> saw_two{false};
  pool.parallel_for(0, 2, 1, [&](std::size_t, std::size_t) {
    inside.fetch_add(1);
    for (int i = 0; i < 2000000 && !saw_two.load(); ++i) {
      if (inside.load() >= 2) saw_two.store(true);
      std::this_thread::yield();
    }
  });
  EXPECT_TRUE(saw_two.load());
}

TEST(ThreadPool, NestedCallOnSamePoolRunsInline) {
  ThreadPool pool(4);
  std::vector<std::atomic<int>> hits(40 * 30);
  pool.parallel_for(0, 40, 1, [&](std::size_t outer, std::size_t) {
    pool.parallel_for(0, 30, 7, [&](std::size_t b, std::size_t e) {
      for (std::size_t i = b; i < e; ++i) hits[outer * 30 + i].fetch_add(1);
    });
  });
  for (auto& h : hits) ASSERT_EQ(h.load(), 1);
}

TEST(ThreadPool, ExceptionReachesCallerAndPoolStaysUsable) {
  ThreadPool pool(4);
  EXPECT_THROW(pool.parallel_for(0, 100, 1,
                                 [&](std::size_t b, std::size_t) {
                                   if (b == 37) throw std::runtime_error("task 37");
                                 }),
               std::runtime_error);
  std::atomic<std::size_t> sum{0};
  pool.parallel_for(0, 100, 1, [&](std::size_t b, std::size_t) { sum.fetch_add(b); });
  EXPECT_EQ(sum.load(), 4950u);
}

TEST(ThreadPool, ConcurrentCallersShareOnePool) {
  ThreadPool pool(3);
  constexpr int kCallers = 4, kRounds = 50;
  std::vector<std::size_t> totals(kCallers, 0);
  std::vector<std::thread> callers;
  for (int c = 0; c < kCallers; ++c) {
    callers.emplace_back([&, c] {
      for (int round = 0; round < kRounds; ++round) {
        std::atomic<std::size_t> sum{0};
        pool.parallel_for(0, 200, 9, [&](std::size_t b, std::size_t e) {
          for (std::size_t i = b; i < e; ++i) sum.fetch_add(i);
        });
        totals[c] += sum.load();
      }
    });
  }
  for (auto& t : callers) t.join();
  for (int c = 0; c < kCallers; ++c) EXPECT_EQ(totals[c], kRounds * 19900u);
}

TEST(ThreadPool, IdleWorkersSleepAndWakeAgain) {
  // Zero spin: workers block at once. Jobs separated by pauses longer than any spin must still complete.
  ThreadPool pool(3, std::chrono::microseconds(0));
  for (int round = 0; round < 5; ++round) {
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
    std::atomic<int> count{0};
    pool.parallel_for(0, 64, 1, [&](std::size_t, std::size_t) { count.fetch_add(1); });
    EXPECT_EQ(count.load(), 64);
  }
}

TEST(ThreadPool, ManyTinyJobsBackToBack) {
  // Races between workers joining late and callers closing a job: every job must still run each task once.
  for (int spin_us : {0, 50}) {
    ThreadPool pool(4, std::chrono::microseconds(spin_us));
    long total = 0;
    for (int job = 0; job < 3000; ++job) {
      std::atomic<int> count{0};
      pool.parallel_for(0, 1 + job % 5, 1, [&](std::size_t, std::size_t) { count.fetch_add(1); });
      total += count.load();
      ASSERT_EQ(count.load(), 1 + job % 5) << "job " << job;
    }
    EXPECT_EQ(total, 3000 + 600 * (1 + 2 + 3 + 4));
  }
}


// ---------------------------------------------------------------- pools nested in cycles (never hang)

// Runs body on a thread of its own and fails the whole test program if it has not returned within `limit`:
// a deadlock must fail CI, not hang it (a deadlocked thread cannot be joined, so the process ends here).
template <class Body>
void within_seconds(int limit, const char* what, Body body) {
  std::promise<void> finished;
  std::future<void> done = finished.get_future();
  std::thread runner([&] {
    try {
      body();
      finished.set_value();
    } catch (...) {
      finished.set_exception(std::current_exception());
    }
  });
  if (done.wait_for(std::chrono::seconds(limit)) != std::future_status::ready) {
    std::fprintf(stderr, "FAILED: %s did not finish within %d s (deadlock)\n", what, limit);
    std::fflush(stderr);
    std::_Exit(3);
  }
  runner.join();
  done.get();  // rethrows a failure of the body
}

// Holds the calling task until `count` reaches `target` or about 200 ms pass: makes both pools busy at once,
// which is what turns a cycle into a deadlock, without hanging the fixed pool if the meeting never happens.
void meet(std::atomic<int>& count, int target) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(200);
  while (count.load() < target && std::chrono::steady_clock::now() < deadline) std::this_thread::yield();
}

TEST(ThreadPoolCycles, InsidePoolOnlyInTasksAndWorkers) {
  EXPECT_FALSE(ThreadPool::inside_pool());
  ThreadPool pool(3);
  std::atomic<int> inside{0}, outside{0};
  pool.parallel_for(0, 64, 1, [&](std::size_t, std::size_t) {
    (ThreadPool::inside_pool() ? inside : outside).fetch_add(1);
    std::this_thread::yield();
  });
  EXPECT_EQ(inside.load(), 64);
  EXPECT_EQ(outside.load(), 0);
  EXPECT_FALSE(ThreadPool::inside_pool());
  // Also after a task threw.
  EXPECT_THROW(pool.parallel_for(0, 8, 1, [](std::size_t, std::size_t) { throw std::runtime_error("x"); }),
               std::runtime_error);
  EXPECT_FALSE(ThreadPool::inside_pool());
}

TEST(ThreadPoolCycles, TaskOfACallsBWhoseTaskCallsA) {
  within_seconds(10, "A -> B -> A", [] {
    ThreadPool a(2), b(2);
    for (int round = 0; round < 20; ++round) {
      std::vector<std::atomic<int>> hits(4 * 4 * 4);
      std::atomic<int> in_a{0};
      a.parallel_for(0, 4, 1, [&](std::size_t i, std::size_t) {
        in_a.fetch_add(1);
        meet(in_a, 2);  // both of A's threads inside A's job
        b.parallel_for(0, 4, 1, [&](std::size_t j, std::size_t) {
          a.parallel_for(0, 4, 1, [&](std::size_t k, std::size_t) { hits[(i * 4 + j) * 4 + k].fetch_add(1); });
        });
      });
      for (auto& h : hits) ASSERT_EQ(h.load(), 1);
    }
  });
}

TEST(ThreadPoolCycles, TwoThreadsEachCallOnePoolFromTheOthersTask) {
  within_seconds(10, "two threads, A -> B and B -> A", [] {
    ThreadPool a(2), b(2);
    for (int round = 0; round < 20; ++round) {
      std::atomic<int> outer_tasks{0};
      std::atomic<std::size_t> sums[2] = {{0}, {0}};
      // Thread 0 runs a job on A whose tasks call B; thread 1 a job on B whose tasks call A. Each outer task
      // waits until both outer jobs are running, so each thread holds its pool when it calls the other.
      const auto caller = [&](int c, ThreadPool& outer, ThreadPool& inner) {
        outer.parallel_for(0, 2, 1, [&](std::size_t, std::size_t) {
          outer_tasks.fetch_add(1);
          meet(outer_tasks, 4);
          inner.parallel_for(0, 100, 7, [&](std::size_t begin, std::size_t end) {
            for (std::size_t i = begin; i < end; ++i) sums[c].fetch_add(i);
          });
        });
      };
      std::thread t0(caller, 0, std::ref(a), std::ref(b));
      std::thread t1(caller, 1, std::ref(b), std::ref(a));
      t0.join();
      t1.join();
      ASSERT_EQ(sums[0].load(), 2 * 4950u);
      ASSERT_EQ(sums[1].load(), 2 * 4950u);
    }
  });
}

TEST(ThreadPoolCycles, CrossPoolForwardIsBitIdentical) {
  // The same cycle through forward(): a task of A runs a layer on B while a task of B runs one on A.
  const std::size_t out = 700, in = 300, batch = 2;
  const auto w = bitlinear_test::random_floats(out * in, 61);
  const auto x = bitlinear_test::random_floats(batch * in, 62, -3.0f, 3.0f);
  const auto layer = bitlinear::TernaryLinear::from_float(w.data(), out, in);
  std::vector<float> expected(batch * out);
  layer.forward(x.data(), batch, expected.data());
  within_seconds(10, "forward() across two pools", [&] {
    ThreadPool a(2), b(2);
    std::atomic<int> outer_tasks{0}, mismatches{0};
    const auto caller = [&](ThreadPool& outer, ThreadPool& inner) {
      outer.parallel_for(0, 2, 1, [&](std::size_t, std::size_t) {
        outer_tasks.fetch_add(1);
        meet(outer_tasks, 4);
        std::vector<float> y(batch * out, kCanary);
        layer.forward(x.data(), batch, y.data(), inner);
        for (std::size_t i = 0; i < y.size(); ++i) {
          if (!bitlinear_test::same_bits(y[i], expected[i])) mismatches.fetch_add(1);
        }
      });
    };
    std::thread t0(caller, std::ref(a), std::ref(b));
    std::thread t1(caller, std::ref(b), std::ref(a));
    t0.join();
    t1.join();
    EXPECT_EQ(mismatches.load(), 0);
  });
}

TEST(ThreadPoolCycles, ExceptionThroughANestedPool) {
  within_seconds(10, "exception through nested pools", [] {
    ThreadPool a(2), b(2);
    EXPECT_THROW(a.parallel_for(0, 8, 1,
                                [&](std::size_t i, std::size_t) {
                                  b.parallel_for(0, 8, 1, [&](std::size_t j, std::size_t) {
                                    if (i == 3 && j == 5) throw std::runtime_error("inner");
                                  });
                                }),
                 std::runtime_error);
    std::atomic<int> count{0};
    b.parallel_for(0, 50, 1, [&](std::size_t, std::size_t) { count.fetch_add(1); });
    a.parallel_for(0, 50, 1, [&](std::size_t, std::size_t) { count.fetch_add(1); });
    EXPECT_EQ(count.load(), 100);
  });
}

// ---------------------------------------------------------------- pooled forward

struct Shape {
  std::size_t out, in, batch;
};
// Small (runs inline), many output chunks, few output chunks (tokens split too), decode (batch <= 4: one
// contiguous part per thread, out not a multiple of 64 or of the row groups), odd tails.
const Shape kShapes[] = {{5, 3, 2},      {1000, 150, 7}, {129, 65, 33}, {70, 1030, 24}, {2000, 129, 1},
                         {64, 1, 1},     {6000, 40, 3},  {200, 513, 9}, {777, 520, 4},  {1283, 300, 2}};

std::vector<float> inputs_with_specials(std::size_t batch, std::size_t in, std::uint32_t seed) {
  auto x = bitlinear_test::random_floats(batch * in, seed, -4.0f, 4.0f);
  if (batch > 2) {
    x[2 * in + in / 2] = std::numeric_limits<float>::quiet_NaN();  // row 2 is NaN
    for (std::size_t k = 0; k < in; ++k) x[1 * in + k] = 0.0f;    // row 1 is all zeros
  }
  return x;
}

template <class Layer>
void expect_pooled_matches_serial(const Shape& s, ActivationScale mode, std::uint32_t seed) {
  const auto w = bitlinear_test::random_floats(s.out * s.in, seed);
  const auto bias = bitlinear_test::random_floats(s.out, seed + 1);
  const auto x = inputs_with_specials(s.batch, s.in, seed + 2);
  bitlinear::Options options;
  options.activation_scale = mode;
  const auto layer = Layer::from_float(w.data(), s.out, s.in, bias.data(), options);
  std::vector<float> expected(s.batch * s.out);
  layer.forward(x.data(), s.batch, expected.data());

  std::vector<unsigned char> workspace(layer.workspace_size(s.batch));
  for (std::size_t threads = 1; threads <= 8; ++threads) {
    ThreadPool pool(threads);
    for (int variant = 0; variant < 3; ++variant) {
      std::vector<float> y(s.batch * s.out, kCanary);
      if (variant == 0) layer.forward(x.data(), s.batch, y.data(), pool);
      if (variant == 1) layer.forward(x.data(), s.batch, s.in, y.data(), s.out, pool);
      if (variant == 2) {
        layer.forward(x.data(), s.batch, s.in, y.data(), s.out, workspace.data(), workspace.size(), pool);
      }
      for (std::size_t i = 0; i < y.size(); ++i) {
        ASSERT_TRUE(bitlinear_test::same_bits(y[i], expected[i]))
            << "out=" << s.out << " in=" << s.in << " batch=" << s.batch << " threads=" << threads
            << " variant=" << variant << " mode=" << static_cast<int>(mode) << " at " << i << ": " << y[i]
            << " vs " << expected[i];
      }
    }
  }
}

TEST(PooledForward, TernaryBitIdenticalForOneToEightThreads) {
  std::uint32_t seed = 10;
  for (const Shape& s : kShapes) {
    for (ActivationScale mode : {ActivationScale::per_token, ActivationScale::per_tensor}) {
      expect_pooled_matches_serial<bitlinear::TernaryLinear>(s, mode, seed += 3);
    }
  }
}

TEST(PooledForward, BinaryBitIdenticalForOneToEightThreads) {
  std::uint32_t seed = 500;
  for (const Shape& s : kShapes) {
    for (ActivationScale mode : {ActivationScale::per_token, ActivationScale::per_tensor}) {
      expect_pooled_matches_serial<bitlinear::BinaryLinear>(s, mode, seed += 3);
    }
  }
}

TEST(PooledForward, NanRowStaysInItsRow) {
  const Shape s{300, 700, 5};
  const auto w = bitlinear_test::random_floats(s.out * s.in, 77);
  const auto x = inputs_with_specials(s.batch, s.in, 78);
  const auto layer = bitlinear::TernaryLinear::from_float(w.data(), s.out, s.in);
  ThreadPool pool(4);
  std::vector<float> y(s.batch * s.out, kCanary);
  layer.forward(x.data(), s.batch, y.data(), pool);
  for (std::size_t t = 0; t < s.batch; ++t) {
    for (std::size_t j = 0; j < s.out; ++j) {
      const float v = y[t * s.out + j];
      if (t == 2) {
        ASSERT_TRUE(std::isnan(v)) << "row 2 holds a NaN input";
      } else {
        ASSERT_TRUE(std::isfinite(v)) << "row " << t << " output " << j;
      }
    }
  }
}

TEST(PooledForward, ChecksArgumentsOnTheCallingThread) {
  const auto w = bitlinear_test::random_floats(100 * 50, 5);
  const auto layer = bitlinear::TernaryLinear::from_float(w.data(), 100, 50);
  ThreadPool pool(2);
  std::vector<float> x(3 * 50, 1.0f), y(3 * 100);
  std::vector<unsigned char> small(layer.workspace_size(3) - 1);
  EXPECT_THROW(layer.forward(nullptr, 3, y.data(), pool), std::invalid_argument);
  EXPECT_THROW(layer.forward(x.data(), 3, nullptr, pool), std::invalid_argument);
  EXPECT_THROW(layer.forward(x.data(), 0, y.data(), pool), std::invalid_argument);
  EXPECT_THROW(layer.forward(x.data(), 3, 49, y.data(), 100, pool), std::invalid_argument);
  EXPECT_THROW(layer.forward(x.data(), 3, 50, y.data(), 99, pool), std::invalid_argument);
  EXPECT_THROW(layer.forward(x.data(), 3, 50, y.data(), 100, small.data(), small.size(), pool),
               std::invalid_argument);
}


// ---------------------------------------------------------------- decode split: RowChunks, any claim order

TEST(DecodeSplit, TaperedSplitFollowsTheRule) {
  struct Case {
    std::size_t rows, row_bytes, threads;
  };
  const Case cases[] = {{6912, 640, 2},  {2560, 1728, 2},  {6912, 640, 4},      {2560, 640, 2}, {640, 640, 2},
                        {2000, 33, 3},   {64, 640, 8},     {1, 1, 2},           {0, 640, 2},    {6912, 640, 1},
                        {4096, 512, 3},  {4096, 512, 8},   {100000, 640, 16},   {200, 640, 8},  {6913, 640, 2},
                        {1 << 20, 4, 2}, {1 << 20, 64, 8}, {1 << 20, 4096, 3},  {6912, 1, 0},   {130, 1 << 20, 2}};
  const std::size_t floor_bytes = bitlinear::detail::min_decode_chunk_bytes;
  for (const Case& c : cases) {
    const bitlinear::RowChunks split(c.rows, bitlinear::DecodeSplit{c.row_bytes, c.threads});
    const std::size_t chunks = split.chunks();
    const std::size_t blocks = (c.rows + 63) / 64;
    const std::string where = std::to_string(c.rows) + " rows of " + std::to_string(c.row_bytes) + " bytes, " +
                              std::to_string(c.threads) + " threads";
    EXPECT_EQ(bitlinear::decode_chunk_count(c.rows, c.row_bytes, c.threads), chunks) << where;
    EXPECT_EQ(split.rows(), c.rows);
    if (blocks == 0) {
      EXPECT_EQ(chunks, 0u) << where;
      continue;
    }
    if (c.threads <= 1 || blocks == 1) {
      ASSERT_EQ(chunks, 1u) << where;
      EXPECT_EQ(split.chunk(0).begin, 0u);
      EXPECT_EQ(split.chunk(0).end, c.rows);
      continue;
    }
    EXPECT_GE(chunks, std::min(c.threads, blocks)) << where << ": at least one chunk per thread";
    EXPECT_LE(chunks, blocks) << where << ": at most one chunk per block";
    std::size_t largest = 0;
    for (std::size_t i = 0; i < chunks; ++i) {
      const bitlinear::RowRange r = split.chunk(i);
      ASSERT_FALSE(r.empty()) << where << ", chunk " << i;
      ASSERT_EQ(r.begin, i == 0 ? 0 : split.chunk(i - 1).end) << where << ": in order, adjacent";
      ASSERT_EQ(r.begin % 64, 0u) << where << ": whole 64-row blocks";
      if (i + 1 < chunks) {
        ASSERT_EQ(r.end % 64, 0u) << where;
      }
      largest = std::max(largest, r.size());
      // More chunks than threads only while each holds the floor of weight bytes (counted in whole blocks: the
      // last block may be short).
      if (chunks > c.threads) {
        EXPECT_GE((r.size() + 63) / 64 * 64 * c.row_bytes, floor_bytes) << where << ", chunk " << i;
      }
    }
    EXPECT_EQ(split.chunk(chunks - 1).end, c.rows) << where;
    EXPECT_EQ(split.chunk(0).size(), largest) << where << ": the first chunk is the largest";
    // Tapered: the first chunk takes about 1/(2 * threads) of the layer when the layer holds more than two
    // minimum chunks per thread; the last chunks are at most twice the floor (or one block).
    const std::size_t min_blocks = (floor_bytes + 64 * c.row_bytes - 1) / (64 * c.row_bytes);
    if (blocks > 2 * c.threads * min_blocks) {
      EXPECT_EQ(split.chunk(0).size(), (blocks + 2 * c.threads - 1) / (2 * c.threads) * 64) << where;
    }
    const std::size_t last_blocks = (split.chunk(chunks - 1).size() + 63) / 64;
    EXPECT_LE(last_blocks, std::max<std::size_t>(2 * min_blocks, 1)) << where << ": small last chunks";
  }
  // The shapes the benchmark measures, on 2 threads: 6912x2560 (640 bytes a row, 108 blocks, floor 7 blocks) as
  // 27, 21, 15, 12, 9 blocks, then 3 chunks of 8; 2560x6912 (1728 bytes a row, 40 blocks, floor 3) as 10, 8, 6,
  // 4, then 4 chunks of 3.
  const std::size_t expected_6912[] = {27, 21, 15, 12, 9, 8, 8, 8};
  const std::size_t expected_2560[] = {10, 8, 6, 4, 3, 3, 3, 3};
  const bitlinear::RowChunks wide(6912, bitlinear::DecodeSplit{640, 2});
  const bitlinear::RowChunks deep(2560, bitlinear::DecodeSplit{1728, 2});
  ASSERT_EQ(wide.chunks(), 8u);
  ASSERT_EQ(deep.chunks(), 8u);
  for (std::size_t i = 0; i < 8; ++i) {
    EXPECT_EQ(wide.chunk(i).size(), expected_6912[i] * 64) << "6912x2560 chunk " << i;
    EXPECT_EQ(deep.chunk(i).size(), expected_2560[i] * 64) << "2560x6912 chunk " << i;
  }
}

TEST(DecodeSplit, RowChunksHandOutEveryRowOnce) {
  EXPECT_THROW(bitlinear::RowChunks(10, 0), std::invalid_argument);
  EXPECT_THROW(bitlinear::RowChunks(10, 1, 0), std::invalid_argument);
  for (std::size_t rows : {0u, 1u, 63u, 64u, 1000u, 6912u}) {
    for (std::size_t count : {1u, 2u, 7u, 14u, 500u}) {
      for (std::size_t block_rows : {1u, 64u}) {
        bitlinear::RowChunks chunks(rows, count, block_rows);
        const std::size_t blocks = (rows + block_rows - 1) / block_rows;
        ASSERT_EQ(chunks.chunks(), std::min(count, blocks));
        std::size_t smallest = rows, largest = 0;
        for (std::size_t i = 0; i < chunks.chunks(); ++i) {
          const bitlinear::RowRange r = chunks.chunk(i);
          ASSERT_EQ(r.begin % block_rows, 0u);
          ASSERT_EQ(r.begin, i == 0 ? 0 : chunks.chunk(i - 1).end);  // in order, adjacent
          ASSERT_FALSE(r.empty());
          if (i + 1 < chunks.chunks()) {
            smallest = std::min(smallest, r.size());
            largest = std::max(largest, r.size());
          }
        }
        if (chunks.chunks() > 0) {
          ASSERT_EQ(chunks.chunk(chunks.chunks() - 1).end, rows);
        }
        if (chunks.chunks() > 2) {
          ASSERT_LE(largest - smallest, block_rows) << "as equal as whole blocks allow";
        }
        for (int pass = 0; pass < 2; ++pass) {  // reset() makes them claimable again
          std::vector<std::atomic<int>> hits(rows);
          std::vector<std::thread> team;
          for (int t = 0; t < 4; ++t) {
            team.emplace_back([&] {
              for (bitlinear::RowRange r = chunks.next(); !r.empty(); r = chunks.next()) {
                for (std::size_t i = r.begin; i < r.end && i < rows; ++i) hits[i].fetch_add(1);
              }
            });
          }
          for (auto& t : team) t.join();
          for (std::size_t i = 0; i < rows; ++i) ASSERT_EQ(hits[i].load(), 1) << "row " << i;
          EXPECT_TRUE(chunks.next().empty());
          EXPECT_TRUE(chunks.chunk(chunks.chunks()).empty());
          chunks.reset();
        }
      }
    }
  }
}

// forward_quantized over chunks claimed in reverse, shuffled, and racing orders: the same bits as forward().
template <class Layer>
void expect_any_claim_order_matches(std::size_t out, std::size_t in, std::size_t batch, std::uint32_t seed) {
  const auto w = bitlinear_test::random_floats(out * in, seed);
  const auto x = bitlinear_test::random_floats(batch * in, seed + 1, -2.0f, 2.0f);
  const auto layer = Layer::from_float(w.data(), out, in);
  std::vector<float> expected(batch * out);
  layer.forward(x.data(), batch, expected.data());
  bitlinear::QuantizedActivations acts;
  layer.quantize(x.data(), batch, in, acts);
  const auto check = [&](const std::vector<float>& y, const char* order, std::size_t chunk_rows) {
    for (std::size_t i = 0; i < y.size(); ++i) {
      ASSERT_TRUE(bitlinear_test::same_bits(y[i], expected[i]))
          << order << " order, chunks of " << chunk_rows << " rows, " << out << "x" << in << " batch " << batch
          << ", at " << i;
    }
  };
  std::mt19937 rng(seed);
  for (std::size_t chunk_rows : {1u, 17u, 64u, 192u, 0u}) {
    // Chunks of chunk_rows rows (blocks of 1 row), or 0: forward()'s decode split for 2 threads.
    const auto make_chunks = [&] {
      return chunk_rows == 0 ? bitlinear::RowChunks(layer, 2)
                             : bitlinear::RowChunks(out, (out + chunk_rows - 1) / chunk_rows, 1);
    };
    const bitlinear::RowChunks chunks = make_chunks();
    const auto compute = [&](std::size_t i, std::vector<float>& y) {
      layer.forward_quantized(acts.view(), chunks.chunk(i).begin, chunks.chunk(i).end, y.data(), out);
    };
    std::vector<std::size_t> order(chunks.chunks());
    std::iota(order.begin(), order.end(), std::size_t{0});
    std::reverse(order.begin(), order.end());
    std::vector<float> y(batch * out, kCanary);
    for (std::size_t i : order) compute(i, y);
    check(y, "reverse", chunk_rows);
    std::shuffle(order.begin(), order.end(), rng);
    std::fill(y.begin(), y.end(), kCanary);
    for (std::size_t i : order) compute(i, y);
    check(y, "shuffled", chunk_rows);
    // Racing threads, one of them slowed down after every chunk: the claim order differs run to run.
    bitlinear::RowChunks shared = make_chunks();
    std::fill(y.begin(), y.end(), kCanary);
    std::vector<std::thread> team;
    for (int t = 0; t < 3; ++t) {
      team.emplace_back([&, t] {
        for (bitlinear::RowRange r = shared.next(); !r.empty(); r = shared.next()) {
          layer.forward_quantized(acts.view(), r.begin, r.end, y.data(), out);
          if (t == 0) std::this_thread::sleep_for(std::chrono::microseconds(50));
        }
      });
    }
    for (auto& t : team) t.join();
    check(y, "racing", chunk_rows);
  }
}

TEST(DecodeSplit, AnyClaimOrderIsBitIdentical) {
  expect_any_claim_order_matches<bitlinear::TernaryLinear>(1000, 2048, 1, 70);
  expect_any_claim_order_matches<bitlinear::TernaryLinear>(517, 260, 3, 71);
  expect_any_claim_order_matches<bitlinear::BinaryLinear>(1000, 2048, 1, 72);
  expect_any_claim_order_matches<bitlinear::CompactTernaryLinear>(1000, 2048, 2, 73);
}

// Layers big enough for several decode chunks per thread (4133 rows of 2048 weights: 6 chunks at 2 threads for
// ternary, 4 for binary, 5 for compact): pooled forward() at batch 1 to 4 against forward(), on 1 to 8 threads.
template <class Layer>
void expect_multi_chunk_decode_matches(std::uint32_t seed) {
  const std::size_t out = 4096 + 37, in = 2048;
  const auto w = bitlinear_test::random_floats(out * in, seed);
  const auto layer = Layer::from_float(w.data(), out, in);
  ASSERT_GE(bitlinear::RowChunks(layer, 2).chunks(), 4u);
  for (std::size_t batch : {1u, 2u, 4u}) {
    const auto x = bitlinear_test::random_floats(batch * in, seed + static_cast<std::uint32_t>(batch), -2.0f, 2.0f);
    std::vector<float> expected(batch * out);
    layer.forward(x.data(), batch, expected.data());
    for (std::size_t threads : {1u, 2u, 3u, 8u}) {
      ThreadPool pool(threads);
      for (int repeat = 0; repeat < 3; ++repeat) {
        std::vector<float> y(batch * out, kCanary);
        layer.forward(x.data(), batch, y.data(), pool);
        for (std::size_t i = 0; i < y.size(); ++i) {
          ASSERT_TRUE(bitlinear_test::same_bits(y[i], expected[i]))
              << "batch " << batch << ", " << threads << " threads, at " << i;
        }
      }
    }
  }
}

TEST(DecodeSplit, PooledForwardWithManyChunksIsBitIdentical) {
  expect_multi_chunk_decode_matches<bitlinear::TernaryLinear>(80);
  expect_multi_chunk_decode_matches<bitlinear::BinaryLinear>(81);
  expect_multi_chunk_decode_matches<bitlinear::CompactTernaryLinear>(82);
}

// ---------------------------------------------------------------- row ranges on the caller's own threads

template <class Layer>
void expect_row_ranges_match(std::uint32_t seed) {
  const std::size_t out = 517, in = 260, batch = 6;
  const auto w = bitlinear_test::random_floats(out * in, seed);
  const auto x = bitlinear_test::random_floats(batch * in, seed + 1);
  const auto layer = Layer::from_float(w.data(), out, in);
  std::vector<float> expected(batch * out);
  layer.forward(x.data(), batch, expected.data());

  bitlinear::QuantizedActivations acts;
  layer.quantize(x.data(), batch, in, acts);
  for (std::size_t threads : {1u, 2u, 3u, 7u}) {
    std::vector<float> y(batch * out, kCanary);
    std::vector<std::thread> team;
    for (std::size_t i = 0; i < threads; ++i) {
      // Uneven, unaligned ranges: results must not depend on the split.
      const std::size_t begin = out * i * i / (threads * threads), end = out * (i + 1) * (i + 1) / (threads * threads);
      team.emplace_back([&, begin, end] { layer.forward_quantized(acts.view(), begin, end, y.data(), out); });
    }
    for (auto& t : team) t.join();
    for (std::size_t i = 0; i < y.size(); ++i) {
      ASSERT_TRUE(bitlinear_test::same_bits(y[i], expected[i])) << threads << " threads, at " << i;
    }
  }
}

TEST(RowRange, StdThreadSplitMatchesForward) {
  expect_row_ranges_match<bitlinear::TernaryLinear>(31);
  expect_row_ranges_match<bitlinear::BinaryLinear>(32);
}

// ---------------------------------------------------------------- concurrency on one layer

template <class Layer>
void concurrent_calls_on_one_layer(std::uint32_t seed) {
  const std::size_t out = 193, in = 300, batch = 3;
  constexpr int kThreads = 8, kCalls = 12;
  const auto w = bitlinear_test::random_floats(out * in, seed);
  const auto layer = Layer::from_float(w.data(), out, in);
  std::vector<std::vector<float>> inputs, expected;
  for (int c = 0; c < kThreads; ++c) {
    inputs.push_back(bitlinear_test::random_floats(batch * in, seed + 10 + c, -2.0f, 2.0f));
    expected.emplace_back(batch * out);
    layer.forward(inputs.back().data(), batch, expected.back().data());
  }
  ThreadPool shared_pool(2);
  std::atomic<int> mismatches{0};
  std::vector<std::thread> team;
  for (int c = 0; c < kThreads; ++c) {
    team.emplace_back([&, c] {
      std::vector<unsigned char> workspace(layer.workspace_size(batch));
      for (int call = 0; call < kCalls; ++call) {
        std::vector<float> y(batch * out, kCanary);
        switch (call % 4) {
          case 0: layer.forward(inputs[c].data(), batch, y.data()); break;
          case 1: layer.forward(inputs[c].data(), batch, in, y.data(), out, workspace.data(), workspace.size()); break;
          case 2: layer.forward(inputs[c].data(), batch, y.data(), shared_pool); break;
          default:
            layer.forward(inputs[c].data(), batch, in, y.data(), out, workspace.data(), workspace.size(), shared_pool);
        }
        for (std::size_t i = 0; i < y.size(); ++i) {
          if (!bitlinear_test::same_bits(y[i], expected[c][i])) mismatches.fetch_add(1);
        }
      }
    });
  }
  for (auto& t : team) t.join();
  EXPECT_EQ(mismatches.load(), 0);
}

TEST(Concurrency, ManyThreadsForwardOneLayer) {
  concurrent_calls_on_one_layer<bitlinear::TernaryLinear>(900);
  concurrent_calls_on_one_layer<bitlinear::BinaryLinear>(901);
}

}  // namespace
