// Zero allocation: the workspace forward() (single-threaded and pooled, batch 1 and > 1, ternary and binary,
// strided) makes no call to any global operator new/delete or to malloc, calloc, realloc, free, aligned_alloc,
// posix_memalign or memalign, on any thread. The counter is proven live: the convenience forward(), a direct
// malloc and a new expression inside the same kind of window must be counted.
//
// This program replaces the global allocator (glibc: the __libc_* entry points do the real work), so it is
// its own executable, not built under sanitizers (they replace the allocator themselves). Plain main(), no
// test framework: nothing else allocates behind our back while a window is open. With Eigen found, the Eigen
// adaptor's workspace overloads are checked too.
#include <bitlinear/bitlinear.hpp>
#if defined(BITLINEAR_TEST_EIGEN)
#include <bitlinear/eigen.hpp>
#endif

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <new>
#include <random>
#include <string>
#include <vector>

extern "C" {
void* __libc_malloc(std::size_t size) noexcept;
void* __libc_calloc(std::size_t count, std::size_t size) noexcept;
void* __libc_realloc(void* p, std::size_t size) noexcept;
void* __libc_memalign(std::size_t alignment, std::size_t size) noexcept;
void __libc_free(void* p) noexcept;
}

namespace {
std::atomic<long> g_allocations{0};    // calls that obtain memory
// Calls that release memory. free(nullptr) / delete nullptr release nothing and are not counted: Eigen's
// Ref<const T> destroys its (empty, never used) temporary matrix with free(nullptr).
std::atomic<long> g_deallocations{0};

void* counted_malloc(std::size_t size) {
  g_allocations.fetch_add(1, std::memory_order_relaxed);
  return __libc_malloc(size == 0 ? 1 : size);
}
void* counted_aligned(std::size_t alignment, std::size_t size) {
  g_allocations.fetch_add(1, std::memory_order_relaxed);
  return __libc_memalign(alignment, size == 0 ? 1 : size);
}
void counted_free(void* p) {
  if (p != nullptr) g_deallocations.fetch_add(1, std::memory_order_relaxed);
  __libc_free(p);
}
void* new_or_throw(void* p) {
  if (p == nullptr) throw std::bad_alloc();
  return p;
}
}  // namespace

// ------------------------------------------------------------------ the C allocator
extern "C" {
void* malloc(std::size_t size) noexcept { return counted_malloc(size); }
void* calloc(std::size_t count, std::size_t size) noexcept {
  g_allocations.fetch_add(1, std::memory_order_relaxed);
  return __libc_calloc(count, size);
}
void* realloc(void* p, std::size_t size) noexcept {
  g_allocations.fetch_add(1, std::memory_order_relaxed);
  return __libc_realloc(p, size);
}
void free(void* p) noexcept { counted_free(p); }
void* aligned_alloc(std::size_t alignment, std::size_t size) noexcept { return counted_aligned(alignment, size); }
void* memalign(std::size_t alignment, std::size_t size) noexcept { return counted_aligned(alignment, size); }
int posix_memalign(void** out, std::size_t alignment, std::size_t size) noexcept {
  void* p = counted_aligned(alignment, size);
  if (p == nullptr) return ENOMEM;
  *out = p;
  return 0;
}
}

// ------------------------------------------------------------------ every replaceable operator new / delete
void* operator new(std::size_t size) { return new_or_throw(counted_malloc(size)); }
void* operator new[](std::size_t size) { return new_or_throw(counted_malloc(size)); }
void* operator new(std::size_t size, const std::nothrow_t&) noexcept { return counted_malloc(size); }
void* operator new[](std::size_t size, const std::nothrow_t&) noexcept { return counted_malloc(size); }
void* operator new(std::size_t size, std::align_val_t a) {
  return new_or_throw(counted_aligned(static_cast<std::size_t>(a), size));
}
void* operator new[](std::size_t size, std::align_val_t a) {
  return new_or_throw(counted_aligned(static_cast<std::size_t>(a), size));
}
void* operator new(std::size_t size, std::align_val_t a, const std::nothrow_t&) noexcept {
  return counted_aligned(static_cast<std::size_t>(a), size);
}
void* operator new[](std::size_t size, std::align_val_t a, const std::nothrow_t&) noexcept {
  return counted_aligned(static_cast<std::size_t>(a), size);
}
void operator delete(void* p) noexcept { counted_free(p); }
void operator delete[](void* p) noexcept { counted_free(p); }
void operator delete(void* p, std::size_t) noexcept { counted_free(p); }
void operator delete[](void* p, std::size_t) noexcept { counted_free(p); }
void operator delete(void* p, const std::nothrow_t&) noexcept { counted_free(p); }
void operator delete[](void* p, const std::nothrow_t&) noexcept { counted_free(p); }
void operator delete(void* p, std::align_val_t) noexcept { counted_free(p); }
void operator delete[](void* p, std::align_val_t) noexcept { counted_free(p); }
void operator delete(void* p, std::size_t, std::align_val_t) noexcept { counted_free(p); }
void operator delete[](void* p, std::size_t, std::align_val_t) noexcept { counted_free(p); }
void operator delete(void* p, std::align_val_t, const std::nothrow_t&) noexcept { counted_free(p); }
void operator delete[](void* p, std::align_val_t, const std::nothrow_t&) noexcept { counted_free(p); }

namespace {

int g_failures = 0;

// Runs `call` between two snapshots of the counters and returns {allocations, deallocations} it made.
template <class Call>
std::pair<long, long> count_during(Call&& call) {
  const long a0 = g_allocations.load(), d0 = g_deallocations.load();
  call();
  return {g_allocations.load() - a0, g_deallocations.load() - d0};
}

void check(bool ok, const std::string& what) {
  std::printf("%s %s\n", ok ? "[ ok ]" : "[FAIL]", what.c_str());
  if (!ok) ++g_failures;
}

void expect_no_allocation(const std::string& what, std::pair<long, long> counts) {
  check(counts.first == 0 && counts.second == 0, what + ": " + std::to_string(counts.first) + " allocations, " +
                                                     std::to_string(counts.second) + " deallocations (want 0, 0)");
}

std::vector<float> random_floats(std::size_t n, unsigned seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> dist(-2.0f, 2.0f);
  std::vector<float> v(n);
  for (float& f : v) f = dist(rng);
  return v;
}

template <class Layer>
void check_layer(const char* kind, bitlinear::ActivationScale mode, bitlinear::ThreadPool& pool,
                 bitlinear::Isa isa = bitlinear::Isa::automatic, std::size_t in = 300) {
  const std::size_t out = in > 10000 ? 5 : 700, max_batch = 9;  // long rows: a few are enough
  const auto w = random_floats(out * in, 1);
  const auto bias = random_floats(out, 2);
  bitlinear::Options options;
  options.activation_scale = mode;
  options.isa = isa;
  const auto layer = Layer::from_float(w.data(), out, in, bias.data(), options);
  // A strided slice: x rows of width 3 * in (read the middle third), y rows of width out + 5.
  const std::size_t x_stride = 3 * in, y_stride = out + 5;
  const auto x = random_floats(max_batch * x_stride, 3);
  std::vector<float> y(max_batch * y_stride);
  std::vector<unsigned char> workspace(layer.workspace_size(max_batch) + 3);
  const std::string name = std::string(kind) + " " + std::string(bitlinear::isa_name(layer.isa())) + " in " +
                           std::to_string(in) +
                           (mode == bitlinear::ActivationScale::per_token ? " per_token" : " per_tensor");

  for (std::size_t batch : {std::size_t{1}, std::size_t{2}, max_batch}) {
    const std::string label = name + " batch " + std::to_string(batch);
    // Warm-up (first-use statics such as the process default kernel family), outside any window.
    layer.forward(x.data() + in, batch, x_stride, y.data(), y_stride, workspace.data() + 3, workspace.size() - 3);
    layer.forward(x.data() + in, batch, x_stride, y.data(), y_stride, workspace.data() + 3, workspace.size() - 3, pool);

    expect_no_allocation(label + ", workspace forward", count_during([&] {
      layer.forward(x.data() + in, batch, x_stride, y.data(), y_stride, workspace.data() + 3, workspace.size() - 3);
    }));
    expect_no_allocation(label + ", pooled workspace forward (" + std::to_string(pool.size()) + " threads)",
                         count_during([&] {
                           for (int repeat = 0; repeat < 3; ++repeat) {
                             layer.forward(x.data() + in, batch, x_stride, y.data(), y_stride, workspace.data() + 3,
                                           workspace.size() - 3, pool);
                           }
                         }));
    expect_no_allocation(label + ", quantized row range", count_during([&] {
      const bitlinear::MutableActivationsView acts =
          bitlinear::activation_view_in(workspace.data(), workspace.size(), batch, in);
      bitlinear::quantize_activations(x.data(), batch, in, in, mode, acts, layer.isa());
      layer.forward_quantized(acts, 0, out / 2, y.data(), y_stride);
      layer.forward_quantized(acts, out / 2, out, y.data(), y_stride);
    }));
    // The convenience overloads allocate their workspace: the counter must see it.
    const auto convenience = count_during([&] { layer.forward(x.data(), batch, y.data()); });
    check(convenience.first > 0 && convenience.second > 0,
          label + ", convenience forward is counted: " + std::to_string(convenience.first) + " allocations");
    const auto pooled_convenience = count_during([&] { layer.forward(x.data(), batch, y.data(), pool); });
    check(pooled_convenience.first > 0,
          label + ", pooled convenience forward is counted: " + std::to_string(pooled_convenience.first) +
              " allocations");
  }
}

#if defined(BITLINEAR_TEST_EIGEN)
// The Eigen adaptor's workspace overloads on row-major strided views allocate nothing either.
void check_eigen(bitlinear::ThreadPool& pool) {
  const Eigen::Index out = 300, in = 500, batch = 4;
  const auto w = random_floats(static_cast<std::size_t>(out * in), 11);
  const auto layer = bitlinear::TernaryLinear::from_float(w.data(), out, in);
  bitlinear::RowMajorMatrixXf fused = bitlinear::RowMajorMatrixXf::Random(batch, 3 * in);
  bitlinear::RowMajorMatrixXf y_wide(batch, out + 3);
  std::vector<unsigned char> workspace(layer.workspace_size(batch));
  bitlinear::forward(layer, fused.middleCols(in, in), y_wide.leftCols(out), workspace.data(), workspace.size(), pool);
  expect_no_allocation("eigen strided workspace forward", count_during([&] {
    bitlinear::forward(layer, fused.middleCols(in, in), y_wide.leftCols(out), workspace.data(), workspace.size());
  }));
  expect_no_allocation("eigen strided pooled workspace forward (" + std::to_string(pool.size()) + " threads)",
                       count_during([&] {
                         bitlinear::forward(layer, fused.middleCols(in, in), y_wide.leftCols(out), workspace.data(),
                                            workspace.size(), pool);
                       }));
}
#endif

}  // namespace

int main() {
  // The counters themselves: a direct malloc/free and a new/delete pair are seen (through volatile pointers so
  // the compiler cannot elide them).
  void* (*volatile do_malloc)(std::size_t) = &std::malloc;
  void (*volatile do_free)(void*) = &std::free;
  const auto c_calls = count_during([&] { do_free(do_malloc(64)); });
  check(c_calls.first == 1 && c_calls.second == 1, "malloc/free are counted");
  const auto cpp_calls = count_during([&] {
    int* volatile p = new int(7);
    delete p;
  });
  check(cpp_calls.first == 1 && cpp_calls.second == 1, "new/delete are counted");

  for (std::size_t threads : {std::size_t{1}, std::size_t{2}, std::size_t{4}}) {
    bitlinear::ThreadPool pool(threads);
    for (auto mode : {bitlinear::ActivationScale::per_token, bitlinear::ActivationScale::per_tensor}) {
      check_layer<bitlinear::TernaryLinear>("ternary", mode, pool);
      check_layer<bitlinear::BinaryLinear>("binary", mode, pool);
    }
    // The 1.6-bit format on every family this CPU runs, native slot or shared fallback (kernels/grid.hpp), and
    // rows longer than the fallback's stack buffer (in_features > 131072).
    for (bitlinear::Isa isa : bitlinear::all_isas) {
      if (!bitlinear::detail::isa_runnable(isa)) continue;
      check_layer<bitlinear::CompactTernaryLinear>("compact", bitlinear::ActivationScale::per_token, pool, isa);
      if (threads == 1) {
        check_layer<bitlinear::CompactTernaryLinear>("compact", bitlinear::ActivationScale::per_token, pool, isa,
                                                     140000);
      }
    }
#if defined(BITLINEAR_TEST_EIGEN)
    check_eigen(pool);
#endif
  }
  std::printf("%s: %d failure(s)\n", g_failures == 0 ? "PASSED" : "FAILED", g_failures);
  return g_failures == 0 ? 0 : 1;
}
