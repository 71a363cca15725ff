// bitlinear: ThreadPool, a small persistent pool for multithreaded forward() (see parallel_forward.hpp).
//
// Model: a pool of `size()` threads is the calling thread plus size() - 1 workers started once, in the
// constructor. parallel_for() publishes one job (a function pointer and a context pointer: nothing is copied
// or allocated), wakes the workers, works on the job itself, and returns when every task has run. Tasks are
// claimed from an atomic counter, so which thread runs a task varies from call to call; callers that need
// reproducible results (forward() does) make each task's output independent of the thread that computes it.
//
// Idle workers spin for at most `spin_time` (default 50 µs, at most max_spin_time = 1 ms; cheap wake-up for
// back-to-back layers) and then block on a condition variable: a pool with nothing to do uses no CPU. A caller
// waiting for workers to leave its job spins for at most spin_time too, then blocks.
//
// Thread safety: parallel_for() may be called from any number of threads; calls run one at a time.
// Nesting rule: a thread that is a worker of any ThreadPool, or is running a task of any ThreadPool, never waits
// for a pool: its parallel_for() runs every task serially on itself (same results; forward() is bit-identical
// either way). So a task may call parallel_for() on its own pool or on any other, and pools nested in a cycle
// (a task of A calls B and a task of B calls A, from one thread or two) cannot deadlock. Not covered: a thread
// that a task starts (or otherwise waits for) and that calls a pool the task's own job is holding.
// An exception thrown by a task is rethrown by parallel_for() after every started task has finished (remaining
// tasks are skipped). Built without exceptions, errors end the process (error.hpp) and none can cross threads.
#pragma once

#include "config.hpp"
#include "error.hpp"

#if !BITLINEAR_HAS_THREADS
// No std::thread: MinGW-w64's win32 thread model before GCC 13, or BITLINEAR_HAS_THREADS=0 (config.hpp).
#error "bitlinear/thread_pool.hpp needs std::thread, which this build lacks: see BITLINEAR_HAS_THREADS in config.hpp"
#endif

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <mutex>
#include <string>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

#include "config.hpp"

#if BITLINEAR_ARCH_X86_64
#include <immintrin.h>
#endif

BITLINEAR_NAMESPACE_BEGIN

namespace detail {
inline void cpu_relax() noexcept {
#if BITLINEAR_ARCH_X86_64
  _mm_pause();
#elif BITLINEAR_ARCH_AARCH64 && (defined(__GNUC__) || defined(__clang__))
  __asm__ __volatile__("yield");
#endif
}

// How many ThreadPool tasks (of any pool) the calling thread is inside; workers count 1 for their whole life.
// Non-zero means: do not wait for a pool (see the nesting rule above).
inline unsigned& pool_task_depth() noexcept {
  static thread_local unsigned depth = 0;
  return depth;
}

struct PoolTaskScope {
  PoolTaskScope() noexcept { ++pool_task_depth(); }
  ~PoolTaskScope() { --pool_task_depth(); }
  PoolTaskScope(const PoolTaskScope&) = delete;
  PoolTaskScope& operator=(const PoolTaskScope&) = delete;
};
}  // namespace detail

class ThreadPool {
 public:
  static constexpr std::size_t max_threads = 1024;
  // Longest spin_time a pool accepts: beyond it a waiting thread would burn its core for little gain (a blocked
  // thread wakes in tens of µs).
  static constexpr std::chrono::microseconds max_spin_time{1000};

  // True if the calling thread is a pool worker or inside a pool task: parallel_for() then runs serially here.
  static bool inside_pool() noexcept { return detail::pool_task_depth() != 0; }

  // Threads the hardware runs at once (at least 1).
  static std::size_t hardware_threads() noexcept {
    const unsigned n = std::thread::hardware_concurrency();
    return n == 0 ? 1 : n;
  }

  // A pool of hardware_threads() threads (the caller included).
  ThreadPool() : ThreadPool(hardware_threads()) {}

  // A pool of `threads` threads, the calling thread included: threads - 1 workers are started now.
  // Throws std::invalid_argument unless 1 <= threads <= max_threads and 0 <= spin_time <= max_spin_time;
  // std::system_error if a thread cannot start.
  explicit ThreadPool(std::size_t threads, std::chrono::microseconds spin_time = std::chrono::microseconds(50))
      : spin_time_(spin_time) {
    BITLINEAR_REQUIRE(threads >= 1 && threads <= max_threads,
                      "ThreadPool of " + std::to_string(threads) + " threads; it must have 1 to " +
                          std::to_string(max_threads));
    BITLINEAR_REQUIRE(spin_time.count() >= 0 && spin_time <= max_spin_time,
                      "ThreadPool spin_time of " + std::to_string(spin_time.count()) +
                          " microseconds; it must be 0 to " + std::to_string(max_spin_time.count()));
    workers_.reserve(threads - 1);
#if BITLINEAR_EXCEPTIONS
    try {
      for (std::size_t i = 0; i + 1 < threads; ++i) workers_.emplace_back([this] { worker_loop(); });
    } catch (...) {
      stop_workers();
      throw;
    }
#else
    for (std::size_t i = 0; i + 1 < threads; ++i) workers_.emplace_back([this] { worker_loop(); });
#endif
  }

  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  // Joins the workers. No parallel_for() may be running.
  ~ThreadPool() { stop_workers(); }

  // Threads that run tasks: the workers plus the calling thread.
  std::size_t size() const noexcept { return workers_.size() + 1; }

  std::chrono::microseconds spin_time() const noexcept { return spin_time_; }

  // Runs body(chunk_begin, chunk_end) for the chunks [begin + i * chunk, min(begin + (i + 1) * chunk, end)),
  // i = 0, 1, ..., spread over the pool's threads. The chunks depend only on the arguments. Allocation-free.
  template <class Body>
  void parallel_for(std::size_t begin, std::size_t end, std::size_t chunk, Body&& body) {
    BITLINEAR_REQUIRE(chunk > 0, "parallel_for chunk is 0; it must be at least 1");
    if (begin >= end) return;
    using BodyType = std::remove_reference_t<Body>;
    struct Context {
      BodyType* body;
      std::size_t begin, end, chunk;
    };
    const Context context{&body, begin, end, chunk};
    const TaskFunction invoke = [](const void* opaque, std::size_t task) {
      const Context& c = *static_cast<const Context*>(opaque);
      const std::size_t chunk_begin = c.begin + task * c.chunk;
      const std::size_t chunk_end = c.end - chunk_begin > c.chunk ? chunk_begin + c.chunk : c.end;
      (*c.body)(chunk_begin, chunk_end);
    };
    run(Job{invoke, &context, (end - begin - 1) / chunk + 1});
  }

 private:
  using TaskFunction = void (*)(const void* context, std::size_t task);
  // One published job: tasks 0 .. tasks - 1, each run once as function(context, task).
  struct Job {
    TaskFunction function = nullptr;
    const void* context = nullptr;
    std::size_t tasks = 0;
  };

  void run(const Job& job) {
    // A thread inside any pool runs the job itself: were it to wait for this pool (its submit lock, or its
    // workers), it could be waiting for itself through a chain of pools (A's task waits for B, B's for A).
    // Outside every pool, a thread holds nothing a pool waits for, so waiting here cannot close a cycle.
    if (job.tasks == 1 || workers_.empty() || inside_pool()) {
      for (std::size_t task = 0; task < job.tasks; ++task) job.function(job.context, task);
      return;
    }
    std::lock_guard<std::mutex> one_job_at_a_time(submit_mutex_);
    job_ = job;
    next_task_.store(0, std::memory_order_relaxed);
#if BITLINEAR_EXCEPTIONS
    failed_.store(false, std::memory_order_relaxed);
#endif
    const std::uint64_t generation = (generation_.load(std::memory_order_relaxed) + 1) & 0xFFFFFFFFu;  // wraps
    entry_.store(generation << 32 | entry_open, std::memory_order_release);
    {
      std::lock_guard<std::mutex> lock(mutex_);
      generation_.store(generation, std::memory_order_release);
    }
    wake_.notify_all();
    work_on(job_);
    // Every task has been claimed. Close the entry so that workers still waking up skip this job instead of
    // making us wait for them, then wait for the workers that joined: job_ and its context die when we return.
    entry_.fetch_and(~entry_open, std::memory_order_acq_rel);
    const auto all_left = [this] { return (entry_.load(std::memory_order_acquire) & entry_count_mask) == 0; };
    if (!spin_until(all_left)) {
      std::unique_lock<std::mutex> lock(mutex_);
      done_.wait(lock, all_left);
    }
#if BITLINEAR_EXCEPTIONS
    if (failed_.load(std::memory_order_acquire)) {
      std::exception_ptr error = std::exchange(error_, nullptr);
      std::rethrow_exception(error);
    }
#endif
  }

  // A worker that has seen a new generation joins its job if the entry is still open. Returns false (and the
  // worker skips the job) if the caller has already closed it.
  bool try_join(std::uint64_t& seen) noexcept {
    std::uint64_t entry = entry_.load(std::memory_order_acquire);
    for (;;) {
      seen = entry >> 32;
      if ((entry & entry_open) == 0) return false;
      if (entry_.compare_exchange_weak(entry, entry + 1, std::memory_order_acq_rel, std::memory_order_acquire)) {
        return true;
      }
    }
  }

  // Claims and runs tasks of `job` until none is left.
  void work_on(const Job& job) noexcept {
    const detail::PoolTaskScope inside_task;  // nested parallel_for() calls from the tasks run serially
    for (;;) {
      const std::size_t task = next_task_.fetch_add(1, std::memory_order_relaxed);
      if (task >= job.tasks) return;
#if BITLINEAR_EXCEPTIONS
      try {
        job.function(job.context, task);
      } catch (...) {
        std::lock_guard<std::mutex> lock(error_mutex_);
        if (!failed_.load(std::memory_order_relaxed)) {
          error_ = std::current_exception();
          failed_.store(true, std::memory_order_release);
        }
        next_task_.store(job.tasks, std::memory_order_relaxed);  // skip the tasks nobody has started
      }
#else
      job.function(job.context, task);  // without exceptions, an error inside a task ends the process
#endif
    }
  }

  // Spins (politely) for at most spin_time_ until ready() is true; returns ready()'s last value.
  template <class Ready>
  bool spin_until(Ready ready) const noexcept {
    if (ready()) return true;
    if (spin_time_.count() == 0) return false;
    const auto deadline = std::chrono::steady_clock::now() + spin_time_;
    for (;;) {
      for (int i = 0; i < 64; ++i) {
        detail::cpu_relax();
        if (ready()) return true;
      }
      if (std::chrono::steady_clock::now() >= deadline) return ready();
    }
  }

  void worker_loop() noexcept {
    const detail::PoolTaskScope worker;  // a worker is inside a pool for its whole life
    std::uint64_t seen = 0;
    for (;;) {
      const auto has_news = [&] {
        return generation_.load(std::memory_order_acquire) != seen || stop_.load(std::memory_order_acquire);
      };
      if (!spin_until(has_news)) {
        std::unique_lock<std::mutex> lock(mutex_);
        wake_.wait(lock, has_news);
      }
      if (stop_.load(std::memory_order_acquire)) return;
      if (!try_join(seen)) continue;
      work_on(job_);
      const std::uint64_t before = entry_.fetch_sub(1, std::memory_order_acq_rel);
      if ((before & entry_count_mask) == 1 && (before & entry_open) == 0) {
        // Last one out of a closed job: wake the caller if it went to sleep. Taking the mutex orders this
        // notify after the caller's check of the count, so the wake-up cannot be lost.
        { std::lock_guard<std::mutex> lock(mutex_); }
        done_.notify_one();
      }
    }
  }

  void stop_workers() noexcept {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      stop_.store(true, std::memory_order_release);
    }
    wake_.notify_all();
    for (std::thread& worker : workers_) {
      if (worker.joinable()) worker.join();
    }
  }

  std::chrono::microseconds spin_time_;
  std::vector<std::thread> workers_;

  std::mutex submit_mutex_;  // one parallel_for at a time
  std::mutex mutex_;         // guards the sleeps on wake_ and done_
  std::condition_variable wake_;
  std::condition_variable done_;
  std::atomic<std::uint64_t> generation_{0};  // bumped once per published job, modulo 2^32
  // The current job's entry: generation << 32 | entry_open while workers may join | workers inside it.
  static constexpr std::uint64_t entry_open = std::uint64_t{1} << 31;
  static constexpr std::uint64_t entry_count_mask = entry_open - 1;
  std::atomic<std::uint64_t> entry_{0};
  std::atomic<bool> stop_{false};
  Job job_;
  std::atomic<std::size_t> next_task_{0};

#if BITLINEAR_EXCEPTIONS
  std::mutex error_mutex_;
  std::atomic<bool> failed_{false};
  std::exception_ptr error_;
#endif
};

BITLINEAR_NAMESPACE_END
