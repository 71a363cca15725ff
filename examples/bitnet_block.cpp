// A BitNet b1.58 transformer block at the dimensions of BitNet b1.58 2B4T, built from bitlinear layers, timed
// against the same block with FP32 linear layers, and checkable against PyTorch.
//
//   bitnet_block                      time one token and a 128-token prompt: BitLinear vs FP32 linear layers
//   bitnet_block --write DIR          write DIR/block.safetensors: the block's weights in the Hugging Face BitNet
//                                     packed form (+ norms and a 128-token input) for the PyTorch reference
//   bitnet_block --check DIR          load DIR/block.safetensors through hf_import.hpp, run the prompt, compare with
//                                     DIR/reference.safetensors written by examples/bitnet_block_reference.py
//
// Block (transformers' BitNet model, pre-norm): h = RMSNorm(x); q,k,v = BitLinear(h); RoPE(q,k); causal GQA
// attention; SubLN: o = o_proj(RMSNorm(attn)); x1 = x + o; h2 = RMSNorm(x1); f = relu(gate(h2))^2 * up(h2);
// SubLN: y = x1 + down_proj(RMSNorm(f)).
#include <bitlinear/bitlinear.hpp>
#include <bitlinear/hf_import.hpp>
#include <bitlinear/safetensors.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#if __has_include(<Eigen/Dense>)
#include <Eigen/Dense>
#define BITNET_BLOCK_HAVE_EIGEN 1
#else
#define BITNET_BLOCK_HAVE_EIGEN 0
#endif

namespace {

constexpr std::size_t hidden = 2560, ffn = 6912, heads = 20, kv_heads = 5, head_dim = 128;
constexpr std::size_t kv_dim = kv_heads * head_dim;  // 640
constexpr float rms_eps = 1e-5f;
constexpr float rope_theta = 500000.0f;
constexpr std::size_t prompt = 128;

// Deterministic pseudo-random numbers (splitmix64), so every run builds the same block.
struct Rng {
  std::uint64_t state;
  std::uint64_t next() {
    std::uint64_t z = (state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  float uniform() { return static_cast<float>(next() >> 40) * (1.0f / 16777216.0f) * 2.0f - 1.0f; }  // [-1, 1)
};

// Codes with the proportions of a trained BitNet matrix (about a third zeros) and a plausible beta.
struct TernaryWeights {
  std::size_t out, in;
  std::vector<std::int8_t> codes;
  float beta;
};
TernaryWeights random_ternary(std::size_t out, std::size_t in, Rng& rng) {
  TernaryWeights w{out, in, std::vector<std::int8_t>(out * in), 0.0f};
  for (auto& c : w.codes) c = static_cast<std::int8_t>(rng.next() % 3) - 1;
  w.beta = 0.02f + 0.01f * (rng.uniform() + 1.0f);
  return w;
}

const char* const linear_names[7] = {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"};
const char* const norm_names[4] = {"input_layernorm", "attn_sub_norm", "post_attention_layernorm", "ffn_sub_norm"};
const std::size_t linear_shapes[7][2] = {{hidden, hidden}, {kv_dim, hidden}, {kv_dim, hidden}, {hidden, hidden},
                                         {ffn, hidden},    {ffn, hidden},    {hidden, ffn}};
const std::size_t norm_sizes[4] = {hidden, hidden, hidden, ffn};

// --- the block, generic over how a linear layer is applied ---------------------------------------------------

// linear(index, x [tokens, in], tokens, y [tokens, out])
using LinearFn = std::function<void(int, const float*, std::size_t, float*)>;

void rms_norm(const float* x, std::size_t tokens, std::size_t n, const float* weight, float* y) {
  for (std::size_t t = 0; t < tokens; ++t) {
    double sum = 0.0;
    for (std::size_t i = 0; i < n; ++i) sum += static_cast<double>(x[t * n + i]) * x[t * n + i];
    const float inv = 1.0f / std::sqrt(static_cast<float>(sum / static_cast<double>(n)) + rms_eps);
    for (std::size_t i = 0; i < n; ++i) y[t * n + i] = (x[t * n + i] * inv) * weight[i];
  }
}

// Rotary embedding of transformers' Llama family (rotate_half: pairs (i, i + 64) of each head).
void apply_rope(float* x, std::size_t tokens, std::size_t n_heads) {
  for (std::size_t t = 0; t < tokens; ++t) {
    for (std::size_t i = 0; i < head_dim / 2; ++i) {
      const float inv_freq = 1.0f / std::pow(rope_theta, static_cast<float>(2 * i) / static_cast<float>(head_dim));
      const float angle = static_cast<float>(t) * inv_freq;
      const float c = std::cos(angle), s = std::sin(angle);
      for (std::size_t h = 0; h < n_heads; ++h) {
        float* v = x + t * n_heads * head_dim + h * head_dim;
        const float a = v[i], b = v[i + head_dim / 2];
        v[i] = a * c - b * s;
        v[i + head_dim / 2] = b * c + a * s;
      }
    }
  }
}

// Causal grouped-query attention: query head h reads key/value head h / (heads / kv_heads).
void attention(const float* q, const float* k, const float* v, std::size_t tokens, float* out) {
  const float scale = 1.0f / std::sqrt(static_cast<float>(head_dim));
  std::vector<float> p(tokens);
  for (std::size_t h = 0; h < heads; ++h) {
    const std::size_t g = h / (heads / kv_heads);
    for (std::size_t t = 0; t < tokens; ++t) {
      const float* qt = q + t * hidden + h * head_dim;
      float m = -INFINITY;
      for (std::size_t s = 0; s <= t; ++s) {
        const float* ks = k + s * kv_dim + g * head_dim;
        float dot = 0.0f;
        for (std::size_t i = 0; i < head_dim; ++i) dot += qt[i] * ks[i];
        p[s] = dot * scale;
        m = std::max(m, p[s]);
      }
      float sum = 0.0f;
      for (std::size_t s = 0; s <= t; ++s) sum += (p[s] = std::exp(p[s] - m));
      float* o = out + t * hidden + h * head_dim;
      std::fill(o, o + head_dim, 0.0f);
      for (std::size_t s = 0; s <= t; ++s) {
        const float w = p[s] / sum;
        const float* vs = v + s * kv_dim + g * head_dim;
        for (std::size_t i = 0; i < head_dim; ++i) o[i] += w * vs[i];
      }
    }
  }
}

struct Norms {
  std::vector<float> w[4];
};

void run_block(const LinearFn& linear, const Norms& norms, const float* x, std::size_t tokens, float* y) {
  std::vector<float> h(tokens * hidden), q(tokens * hidden), k(tokens * kv_dim), v(tokens * kv_dim);
  std::vector<float> a(tokens * hidden), x1(tokens * hidden), g(tokens * ffn), u(tokens * ffn);
  rms_norm(x, tokens, hidden, norms.w[0].data(), h.data());
  linear(0, h.data(), tokens, q.data());
  linear(1, h.data(), tokens, k.data());
  linear(2, h.data(), tokens, v.data());
  apply_rope(q.data(), tokens, heads);
  apply_rope(k.data(), tokens, kv_heads);
  attention(q.data(), k.data(), v.data(), tokens, a.data());
  rms_norm(a.data(), tokens, hidden, norms.w[1].data(), h.data());
  linear(3, h.data(), tokens, q.data());  // q reused as the o_proj output
  for (std::size_t i = 0; i < x1.size(); ++i) x1[i] = x[i] + q[i];
  rms_norm(x1.data(), tokens, hidden, norms.w[2].data(), h.data());
  linear(4, h.data(), tokens, g.data());
  linear(5, h.data(), tokens, u.data());
  for (std::size_t i = 0; i < g.size(); ++i) {
    const float r = g[i] > 0.0f ? g[i] : 0.0f;
    g[i] = r * r * u[i];
  }
  rms_norm(g.data(), tokens, ffn, norms.w[3].data(), u.data());
  linear(6, u.data(), tokens, y);
  for (std::size_t i = 0; i < tokens * hidden; ++i) y[i] += x1[i];
}

// --- the model in its two forms --------------------------------------------------------------------------------

struct BitBlock {
  std::vector<bitlinear::TernaryLinear> layers;
  Norms norms;
  LinearFn linear() const {
    return [this](int i, const float* x, std::size_t tokens, float* y) { layers[i].forward(x, tokens, y); };
  }
};

Norms random_norms(Rng& rng) {
  Norms n;
  for (int i = 0; i < 4; ++i) {
    n.w[i].resize(norm_sizes[i]);
    for (float& w : n.w[i]) w = 1.0f + 0.25f * rng.uniform();
  }
  return n;
}

std::vector<TernaryWeights> random_weights(Rng& rng) {
  std::vector<TernaryWeights> w;
  for (const auto& shape : linear_shapes) w.push_back(random_ternary(shape[0], shape[1], rng));
  return w;
}

BitBlock bit_block_from(const std::vector<TernaryWeights>& weights, const Norms& norms) {
  BitBlock block;
  for (const TernaryWeights& w : weights) {
    std::vector<std::uint8_t> packed(bitlinear::packed_size<bitlinear::Ternary>(w.out, w.in));
    bitlinear::pack_codes<bitlinear::Ternary>(w.codes.data(), w.out, w.in, packed.data());
    block.layers.push_back(
        bitlinear::TernaryLinear::from_packed(packed.data(), packed.size(), w.out, w.in, w.beta));
  }
  block.norms = norms;
  return block;
}

// The FP32 baseline: the same weights dequantized (code * beta), y = x W^T.
struct FloatBlock {
  std::vector<std::vector<float>> weights;  // row-major [out, in]
  Norms norms;
  LinearFn linear() const {
    return [this](int i, const float* x, std::size_t tokens, float* y) {
      const std::size_t out = linear_shapes[i][0], in = linear_shapes[i][1];
#if BITNET_BLOCK_HAVE_EIGEN
      using RowMajor = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
      Eigen::Map<const RowMajor> w(weights[i].data(), static_cast<Eigen::Index>(out), static_cast<Eigen::Index>(in));
      Eigen::Map<const RowMajor> xm(x, static_cast<Eigen::Index>(tokens), static_cast<Eigen::Index>(in));
      Eigen::Map<RowMajor> ym(y, static_cast<Eigen::Index>(tokens), static_cast<Eigen::Index>(out));
      ym.noalias() = xm * w.transpose();
#else
      for (std::size_t t = 0; t < tokens; ++t) {
        for (std::size_t j = 0; j < out; ++j) {
          float acc = 0.0f;
          for (std::size_t k = 0; k < in; ++k) acc += x[t * in + k] * weights[i][j * in + k];
          y[t * out + j] = acc;
        }
      }
#endif
    };
  }
};

FloatBlock float_block_from(const std::vector<TernaryWeights>& weights, const Norms& norms) {
  FloatBlock block;
  for (const TernaryWeights& w : weights) {
    std::vector<float> f(w.codes.size());
    for (std::size_t i = 0; i < f.size(); ++i) f[i] = static_cast<float>(w.codes[i]) * w.beta;
    block.weights.push_back(std::move(f));
  }
  block.norms = norms;
  return block;
}

std::vector<float> random_input(Rng& rng) {
  std::vector<float> x(prompt * hidden);
  for (float& v : x) v = rng.uniform();
  return x;
}

double median_ms(const std::function<void()>& fn, int reps) {
  std::vector<double> ms;
  for (int r = 0; r < reps; ++r) {
    const auto t0 = std::chrono::steady_clock::now();
    fn();
    ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
  }
  std::sort(ms.begin(), ms.end());
  return ms[ms.size() / 2];
}

// --- safetensors writing (the Hugging Face packed form) ---------------------------------------------------------

struct OutTensor {
  std::string name, dtype;
  std::vector<std::size_t> shape;
  std::vector<std::uint8_t> bytes;
};

OutTensor float_tensor(const std::string& name, std::vector<std::size_t> shape, const float* v, std::size_t n) {
  OutTensor t{name, "F32", std::move(shape), std::vector<std::uint8_t>(4 * n)};
  for (std::size_t i = 0; i < n; ++i) {
    std::uint32_t bits = 0;
    std::memcpy(&bits, &v[i], 4);
    for (int b = 0; b < 4; ++b) t.bytes[4 * i + b] = static_cast<std::uint8_t>(bits >> (8 * b));
  }
  return t;
}

// transformers' packing: row r = i * (out/4) + j of the codes goes to bits 2i..2i+1 of packed row j, as code + 1.
OutTensor hf_packed_tensor(const std::string& name, const TernaryWeights& w) {
  const std::size_t rows = w.out / 4;
  OutTensor t{name, "U8", {rows, w.in}, std::vector<std::uint8_t>(rows * w.in, 0)};
  for (std::size_t r = 0; r < w.out; ++r) {
    for (std::size_t k = 0; k < w.in; ++k) {
      t.bytes[(r % rows) * w.in + k] |= static_cast<std::uint8_t>((w.codes[r * w.in + k] + 1) << (2 * (r / rows)));
    }
  }
  return t;
}

void write_safetensors(const std::string& path, const std::vector<OutTensor>& tensors) {
  std::string header = "{\"__metadata__\":{\"format\":\"pt\"}";
  std::size_t offset = 0;
  for (const OutTensor& t : tensors) {
    header += ",\"" + t.name + "\":{\"dtype\":\"" + t.dtype + "\",\"shape\":[";
    for (std::size_t i = 0; i < t.shape.size(); ++i) header += (i ? "," : "") + std::to_string(t.shape[i]);
    header += "],\"data_offsets\":[" + std::to_string(offset) + "," + std::to_string(offset + t.bytes.size()) + "]}";
    offset += t.bytes.size();
  }
  header += "}";
  header.append((8 - header.size() % 8) % 8, ' ');
  std::ofstream out(path, std::ios::binary);
  const std::uint64_t n = header.size();
  for (int b = 0; b < 8; ++b) out.put(static_cast<char>(n >> (8 * b)));
  out.write(header.data(), static_cast<std::streamsize>(header.size()));
  for (const OutTensor& t : tensors) out.write(reinterpret_cast<const char*>(t.bytes.data()), static_cast<std::streamsize>(t.bytes.size()));
  if (!out) throw std::runtime_error("cannot write " + path);
}

const std::string layer_prefix = "model.layers.0.";
std::string linear_prefix(int i) { return layer_prefix + (i < 4 ? "self_attn." : "mlp.") + linear_names[i]; }
std::string norm_name(int i) {
  return layer_prefix + (i == 1 ? "self_attn." : i == 3 ? "mlp." : "") + norm_names[i] + ".weight";
}

int write_checkpoint(const std::string& dir) {
  Rng rng{20250417};
  const std::vector<TernaryWeights> weights = random_weights(rng);
  const Norms norms = random_norms(rng);
  const std::vector<float> x = random_input(rng);
  std::filesystem::create_directories(dir);
  std::vector<OutTensor> tensors;
  for (int i = 0; i < 7; ++i) {
    tensors.push_back(hf_packed_tensor(linear_prefix(i) + ".weight", weights[i]));
    const float weight_scale = 1.0f / weights[i].beta;  // transformers BitLinear divides by weight_scale
    tensors.push_back(float_tensor(linear_prefix(i) + ".weight_scale", {1}, &weight_scale, 1));
  }
  for (int i = 0; i < 4; ++i) tensors.push_back(float_tensor(norm_name(i), {norms.w[i].size()}, norms.w[i].data(), norms.w[i].size()));
  tensors.push_back(float_tensor("input", {prompt, hidden}, x.data(), x.size()));
  write_safetensors(dir + "/block.safetensors", tensors);
  std::printf("wrote %s/block.safetensors\n", dir.c_str());
  return 0;
}

// Tolerance of --check, relative to the largest |output - input| (the block's own contribution): see
// docs/interop.md. Linear layers match PyTorch exactly for identical inputs; the non-linear parts (RMSNorm,
// RoPE, softmax) round differently, which moves an int8 activation by one step now and then.
constexpr double check_tolerance = 2e-3;

int check(const std::string& dir) {
  const bitlinear::SafetensorsFile file = bitlinear::SafetensorsFile::open(dir + "/block.safetensors");
  const bitlinear::SafetensorsFile ref = bitlinear::SafetensorsFile::open(dir + "/reference.safetensors");
  BitBlock block;
  for (int i = 0; i < 7; ++i) {
    block.layers.push_back(
        bitlinear::ternary_from_hf_checkpoint(file.view(), linear_prefix(i), bitlinear::HfScaleConvention::divide));
  }
  for (int i = 0; i < 4; ++i) block.norms.w[i] = bitlinear::safetensors_to_float(file.view().at(norm_name(i)));
  const std::vector<float> x = bitlinear::safetensors_to_float(file.view().at("input"));
  const std::vector<float> expected = bitlinear::safetensors_to_float(ref.view().at("output"));
  if (x.size() != prompt * hidden || expected.size() != prompt * hidden) {
    std::fprintf(stderr, "unexpected tensor sizes\n");
    return 1;
  }
  std::vector<float> y(prompt * hidden), y1(hidden);
  run_block(block.linear(), block.norms, x.data(), prompt, y.data());
  run_block(block.linear(), block.norms, x.data(), 1, y1.data());
  double scale = 0.0, worst = 0.0, sum_sq = 0.0;
  for (std::size_t i = 0; i < y.size(); ++i) scale = std::max(scale, std::fabs(static_cast<double>(expected[i]) - x[i]));
  for (std::size_t i = 0; i < y.size(); ++i) {
    const double e = std::fabs(static_cast<double>(y[i]) - expected[i]);
    worst = std::max(worst, e);
    sum_sq += e * e;
  }
  double first_token = 0.0;  // causal: token 0 of the prompt equals a one-token run, bit for bit
  for (std::size_t i = 0; i < hidden; ++i) first_token = std::max(first_token, std::fabs(static_cast<double>(y1[i]) - y[i]));
  std::printf("check vs PyTorch: max |y - y_torch| = %.3g, rms = %.3g, block output scale max|y_torch - x| = %.3g, "
              "relative %.3g (tolerance %.1g); one-token run vs prompt token 0: %.3g\n",
              worst, std::sqrt(sum_sq / static_cast<double>(y.size())), scale, worst / scale, check_tolerance, first_token);
  const bool ok = worst <= check_tolerance * scale && first_token == 0.0;
  std::printf("%s\n", ok ? "PASS" : "FAIL");
  return ok ? 0 : 1;
}

int benchmark() {
  Rng rng{20250417};
  const std::vector<TernaryWeights> weights = random_weights(rng);
  const Norms norms = random_norms(rng);
  const std::vector<float> x = random_input(rng);
  const BitBlock bit = bit_block_from(weights, norms);
  const FloatBlock fp = float_block_from(weights, norms);
  std::vector<float> y(prompt * hidden);
  std::printf("BitNet b1.58 block, 2B4T dims (hidden %zu, ffn %zu, %zu heads / %zu kv heads x %zu), kernels: %s, "
              "FP32 baseline: %s\n",
              hidden, ffn, heads, kv_heads, head_dim, std::string(bitlinear::active_isa()).c_str(),
              BITNET_BLOCK_HAVE_EIGEN ? "Eigen" : "plain loops");
  std::size_t bit_bytes = 0, fp_bytes = 0;
  for (const auto& l : bit.layers) bit_bytes += l.packed_weights_size();
  for (const auto& w : fp.weights) fp_bytes += w.size() * sizeof(float);
  std::printf("linear weights: BitLinear %.1f MiB, FP32 %.1f MiB\n", bit_bytes / 1048576.0, fp_bytes / 1048576.0);
  std::printf("%-22s %12s %12s %8s\n", "", "BitLinear ms", "FP32 ms", "speedup");
  for (std::size_t tokens : {std::size_t{1}, prompt}) {
    const int reps = tokens == 1 ? 21 : 5;
    const double b = median_ms([&] { run_block(bit.linear(), bit.norms, x.data(), tokens, y.data()); }, reps);
    const double f = median_ms([&] { run_block(fp.linear(), fp.norms, x.data(), tokens, y.data()); }, reps);
    std::printf("%-22s %12.2f %12.2f %7.2fx\n", tokens == 1 ? "1 token" : "128-token prompt", b, f, f / b);
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    const std::string mode = argc > 1 ? argv[1] : "";
    if (mode == "--write" && argc == 3) return write_checkpoint(argv[2]);
    if (mode == "--check" && argc == 3) return check(argv[2]);
    if (argc == 1) return benchmark();
    std::fprintf(stderr, "usage: %s [--write DIR | --check DIR]\n", argv[0]);
    return 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
}
