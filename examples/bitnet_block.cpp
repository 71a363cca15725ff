// A BitNet b1.58 transformer block at the dimensions of BitNet b1.58 2B4T, built from bitlinear layers, timed
// against the same block with FP32 linear layers, and checkable against PyTorch.
//
//   bitnet_block                      time one token and a 128-token prompt: BitLinear vs FP32 linear layers
//   bitnet_block --check DIR          load the checkpoint directory DIR written by examples/bitnet_checkpoint.py
//                                     (config.json + model.safetensors or shards: the real 2B4T tensor names,
//                                     shapes and dtypes) through checkpoint.hpp, run its 128 input tokens through
//                                     every block and the final norm, and compare with the PyTorch reference the
//                                     script wrote (DIR/reference.safetensors)
//
// Block (transformers' BitNet model, pre-norm): h = RMSNorm(x); q,k,v = BitLinear(h); RoPE(q,k); causal GQA
// attention; SubLN: o = o_proj(RMSNorm(attn)); x1 = x + o; h2 = RMSNorm(x1); f = relu(gate(h2))^2 * up(h2);
// SubLN: y = x1 + down_proj(RMSNorm(f)). The BitLinear block fuses each SubLN RMSNorm into its layer's int8 input
// (ActivationFrontend, frontend.hpp); the FP32 baseline normalizes by hand.
#include <bitlinear/bitlinear.hpp>
#include <bitlinear/io/checkpoint.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
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
// sub_norm_linear(index, norm, x, tokens, y): y = linear(index, RMSNorm(x) with norm weight `norm`) (SubLN)
using SubNormLinearFn = std::function<void(int, int, const float*, std::size_t, float*)>;

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

// SubLN by hand: RMSNorm into a float buffer, then the linear layer (the FP32 baseline).
SubNormLinearFn sub_norm_by_hand(LinearFn linear, const Norms& norms) {
  return [linear, &norms](int i, int norm, const float* x, std::size_t tokens, float* y) {
    const std::size_t n = norms.w[norm].size();
    std::vector<float> h(tokens * n);
    rms_norm(x, tokens, n, norms.w[norm].data(), h.data());
    linear(i, h.data(), tokens, y);
  };
}

// SubLN fused into the BitLinear input: the front-end (frontend.hpp) normalizes and quantizes each row in one pass,
// straight into the int8 activations that forward_quantized reads; no normalized float copy is stored.
struct FusedSubNorms {
  std::vector<bitlinear::ActivationFrontend> frontends;  // attn_sub_norm (norm 1, hidden), ffn_sub_norm (norm 3, ffn)
  mutable std::vector<unsigned char> workspace;          // reused: no allocation once it is large enough
  explicit FusedSubNorms(const Norms& norms) {
    for (int i : {1, 3}) {
      bitlinear::FrontendOptions o;
      o.rms_norm = true;
      o.norm_weight = norms.w[i].data();
      o.norm_weight_size = norms.w[i].size();
      o.norm_eps = rms_eps;
      frontends.emplace_back(norms.w[i].size(), o);
    }
  }
  void run(const bitlinear::TernaryLinear& layer, int norm, const float* x, std::size_t tokens, float* y) const {
    const bitlinear::ActivationFrontend& fe = frontends[norm == 1 ? 0 : 1];
    const std::size_t need = fe.workspace_size(tokens);
    if (workspace.size() < need) workspace.resize(need);
    const bitlinear::MutableActivationsView acts =
        fe.quantize(x, tokens, fe.in_features(), workspace.data(), workspace.size());
    layer.forward_quantized(acts, 0, layer.out_features(), y, layer.out_features());
  }
};

void run_block(const LinearFn& linear, const SubNormLinearFn& sub_norm_linear, const Norms& norms, const float* x,
               std::size_t tokens, float* y) {
  std::vector<float> h(tokens * hidden), q(tokens * hidden), k(tokens * kv_dim), v(tokens * kv_dim);
  std::vector<float> a(tokens * hidden), x1(tokens * hidden), g(tokens * ffn), u(tokens * ffn);
  rms_norm(x, tokens, hidden, norms.w[0].data(), h.data());
  linear(0, h.data(), tokens, q.data());
  linear(1, h.data(), tokens, k.data());
  linear(2, h.data(), tokens, v.data());
  apply_rope(q.data(), tokens, heads);
  apply_rope(k.data(), tokens, kv_heads);
  attention(q.data(), k.data(), v.data(), tokens, a.data());
  sub_norm_linear(3, 1, a.data(), tokens, q.data());  // SubLN + o_proj; q reused as the output
  for (std::size_t i = 0; i < x1.size(); ++i) x1[i] = x[i] + q[i];
  rms_norm(x1.data(), tokens, hidden, norms.w[2].data(), h.data());
  linear(4, h.data(), tokens, g.data());
  linear(5, h.data(), tokens, u.data());
  for (std::size_t i = 0; i < g.size(); ++i) {
    const float r = g[i] > 0.0f ? g[i] : 0.0f;
    g[i] = r * r * u[i];
  }
  sub_norm_linear(6, 3, g.data(), tokens, y);  // SubLN + down_proj
  for (std::size_t i = 0; i < tokens * hidden; ++i) y[i] += x1[i];
}

// --- the model in its two forms --------------------------------------------------------------------------------

struct BitBlock {
  std::vector<bitlinear::TernaryLinear> layers;
  Norms norms;
  std::shared_ptr<const FusedSubNorms> sub_norms;
  LinearFn linear() const {
    return [this](int i, const float* x, std::size_t tokens, float* y) { layers[i].forward(x, tokens, y); };
  }
  SubNormLinearFn sub_norm_linear() const {
    return [this](int i, int norm, const float* x, std::size_t tokens, float* y) {
      sub_norms->run(layers[i], norm, x, tokens, y);
    };
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
  block.sub_norms = std::make_shared<const FusedSubNorms>(norms);
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

// --- loading a checkpoint directory (checkpoint.hpp) -----------------------------------------------------------

std::vector<float> bf16_or_float(const bitlinear::SafetensorsTensor& t) { return bitlinear::safetensors_to_float(t); }

// Row `row` of a 2-D BF16 tensor (the embedding) as floats, read from the mapping without converting the rest.
std::vector<float> bf16_row(const bitlinear::SafetensorsTensor& t, std::size_t row) {
  if (t.dtype != "BF16" || t.shape.size() != 2 || row >= t.shape[0]) throw std::runtime_error("bad embedding row");
  const std::size_t n = static_cast<std::size_t>(t.shape[1]);
  std::vector<float> out(n);
  const std::uint8_t* p = t.data + 2 * n * row;
  for (std::size_t i = 0; i < n; ++i) {
    const std::uint32_t bits = (static_cast<std::uint32_t>(p[2 * i]) | static_cast<std::uint32_t>(p[2 * i + 1]) << 8) << 16;
    std::memcpy(&out[i], &bits, 4);
  }
  return out;
}

// One decoder block of a loaded model: its seven layers and four norms, in the order run_block uses them.
struct LoadedBlock {
  std::vector<const bitlinear::TernaryLinear*> layers;
  Norms norms;
  std::shared_ptr<const FusedSubNorms> sub_norms;
  LinearFn linear() const {
    return [this](int i, const float* x, std::size_t tokens, float* y) { layers[i]->forward(x, tokens, y); };
  }
  SubNormLinearFn sub_norm_linear() const {
    return [this](int i, int norm, const float* x, std::size_t tokens, float* y) {
      sub_norms->run(*layers[i], norm, x, tokens, y);
    };
  }
};

std::string linear_module(std::size_t block, int i) {
  return "model.layers." + std::to_string(block) + "." + (i < 4 ? "self_attn." : "mlp.") + linear_names[i];
}
std::string norm_tensor(std::size_t block, int i) {
  return "model.layers." + std::to_string(block) + "." + (i == 1 ? "self_attn." : i == 3 ? "mlp." : "") +
         norm_names[i] + ".weight";
}

double max_abs_diff(const std::vector<float>& a, const std::vector<float>& b, double* rms = nullptr) {
  double worst = 0.0, sum_sq = 0.0;
  for (std::size_t i = 0; i < a.size(); ++i) {
    const double e = std::fabs(static_cast<double>(a[i]) - b[i]);
    worst = std::max(worst, e);
    sum_sq += e * e;
  }
  if (rms != nullptr) *rms = std::sqrt(sum_sq / static_cast<double>(a.size()));
  return worst;
}

// --check compares each block on the reference's own input for it (the embedding rows for block 0, PyTorch's
// hidden states of block N-1 for block N), so that differences do not compound from block to block. The
// linear layers are exact for identical int8 inputs; the glue (softmax, RoPE, RMSNorm) rounds differently from
// PyTorch in the last bit, and where that moves an activation across an int8 rounding boundary (BF16 inputs hit
// exact ties often) the token's outputs move by one quantization step, which the ReLU^2 gate can amplify to a
// few percent. So: the median token must agree to 1e-4 of the block's contribution (most tokens agree to float
// rounding), every token to 5e-2; a wrong convention, bit order or tensor mapping is off by order 1 everywhere.
constexpr double median_tolerance = 1e-4, max_tolerance = 5e-2;

// Loads the checkpoint directory written by examples/bitnet_checkpoint.py through checkpoint.hpp (mapped,
// convention from config.json), runs the input tokens through every block and the final norm, and compares
// with the PyTorch reference the script wrote.
int check(const std::string& dir) {
  const auto t0 = std::chrono::steady_clock::now();
  const bitlinear::HfCheckpoint checkpoint = bitlinear::HfCheckpoint::open(dir);
  const bitlinear::BitNetModel model = bitlinear::load_bitnet_layers(checkpoint);
  const double load_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  const bitlinear::HfModelConfig& config = checkpoint.config();
  if (config.hidden_size != hidden || config.intermediate_size != ffn || config.num_attention_heads != heads ||
      config.num_key_value_heads != kv_heads || config.rms_norm_eps != 1e-5 || config.rope_theta != 500000.0) {
    std::fprintf(stderr, "config.json does not describe a 2B4T-shaped model\n");
    return 1;
  }
  const std::size_t blocks = static_cast<std::size_t>(config.num_hidden_layers);
  std::printf("loaded %s: %zu shard(s), %s, %zu BitLinear layers (%.1f MiB), %zu other tensors, %zu blocks, in %.0f ms\n",
              dir.c_str(), checkpoint.shard_names().size(),
              model.format == bitlinear::HfWeightFormat::packed_divide ? "divide (bitlinear)" : "multiply (autobitlinear)",
              model.layers.size(), static_cast<double>(model.weight_bytes()) / 1048576.0, model.tensors.size(), blocks,
              load_ms);
  if (model.layers.size() != 7 * blocks) {
    std::fprintf(stderr, "expected %zu BitLinear layers\n", 7 * blocks);
    return 1;
  }
  std::vector<LoadedBlock> loaded(blocks);
  for (std::size_t b = 0; b < blocks; ++b) {
    for (int i = 0; i < 7; ++i) loaded[b].layers.push_back(&model.layer(linear_module(b, i)));
    for (int i = 0; i < 4; ++i) loaded[b].norms.w[i] = bf16_or_float(model.tensor(norm_tensor(b, i)));
    loaded[b].sub_norms = std::make_shared<const FusedSubNorms>(loaded[b].norms);
  }
  const std::vector<float> final_norm = bf16_or_float(model.tensor("model.norm.weight"));
  const bitlinear::SafetensorsTensor& embedding = model.tensor("model.embed_tokens.weight");

  const bitlinear::SafetensorsFile ref = bitlinear::SafetensorsFile::open(dir + "/reference.safetensors");
  const bitlinear::SafetensorsTensor& ids = ref.view().at("input_ids");
  if (ids.dtype != "I64" || ids.element_count() != prompt) throw std::runtime_error("unexpected input_ids");
  std::vector<float> x(prompt * hidden);
  for (std::size_t t = 0; t < prompt; ++t) {
    std::int64_t id = 0;
    std::memcpy(&id, ids.data + 8 * t, 8);  // little-endian, like this machine
    const std::vector<float> row = bf16_row(embedding, static_cast<std::size_t>(id));
    std::copy(row.begin(), row.end(), x.begin() + static_cast<std::ptrdiff_t>(t * hidden));
  }
  bool ok = true;
  std::vector<float> input = x, y(prompt * hidden);
  for (std::size_t b = 0; b < blocks; ++b) {
    const std::vector<float> expected = bitlinear::safetensors_to_float(ref.view().at("hidden." + std::to_string(b)));
    if (expected.size() != prompt * hidden) throw std::runtime_error("unexpected reference hidden states");
    run_block(loaded[b].linear(), loaded[b].sub_norm_linear(), loaded[b].norms, input.data(), prompt, y.data());
    double scale = 0.0;
    for (std::size_t i = 0; i < y.size(); ++i) scale = std::max(scale, std::fabs(static_cast<double>(expected[i]) - input[i]));
    std::vector<double> token_error(prompt);
    for (std::size_t t = 0; t < prompt; ++t) {
      for (std::size_t i = t * hidden; i < (t + 1) * hidden; ++i) {
        token_error[t] = std::max(token_error[t], std::fabs(static_cast<double>(y[i]) - expected[i]) / scale);
      }
    }
    std::sort(token_error.begin(), token_error.end());
    const double median = token_error[prompt / 2], worst = token_error.back();
    std::size_t exactish = 0;
    for (double e : token_error) exactish += e <= median_tolerance;
    std::printf("block %zu vs PyTorch (on PyTorch's input): per-token max error relative to the block's contribution "
                "(max %.3g): median %.3g, worst %.3g; %zu of %zu tokens within %.0e\n",
                b, scale, median, worst, exactish, prompt, median_tolerance);
    ok = ok && median <= median_tolerance && worst <= max_tolerance;
    input = expected;  // the next block starts from PyTorch's hidden states
  }
  const std::vector<float> output_ref = bitlinear::safetensors_to_float(ref.view().at("output"));
  std::vector<float> out(prompt * hidden);
  rms_norm(input.data(), prompt, hidden, final_norm.data(), out.data());
  double out_scale = 0.0;
  for (float v : output_ref) out_scale = std::max(out_scale, std::fabs(static_cast<double>(v)));
  const double norm_error = max_abs_diff(out, output_ref) / out_scale;
  // The whole model end to end (compounding allowed): causal, so token 0 of the prompt equals a one-token run.
  auto run_model = [&](std::size_t tokens, std::vector<float>& h) {
    h.assign(x.begin(), x.begin() + static_cast<std::ptrdiff_t>(tokens * hidden));
    std::vector<float> next(tokens * hidden);
    for (const LoadedBlock& b : loaded) {
      run_block(b.linear(), b.sub_norm_linear(), b.norms, h.data(), tokens, next.data());
      h.swap(next);
    }
  };
  std::vector<float> h, h1;
  run_model(prompt, h);
  run_model(1, h1);
  double first_token = 0.0;
  for (std::size_t i = 0; i < hidden; ++i) first_token = std::max(first_token, std::fabs(static_cast<double>(h1[i]) - h[i]));
  std::printf("model.norm on PyTorch's last hidden states: max error relative to max|y| %.3g (tolerance 1e-5); "
              "end to end, one-token run vs prompt token 0: %.3g\n", norm_error, first_token);
  ok = ok && norm_error <= 1e-5 && first_token == 0.0;
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
    const double b = median_ms([&] { run_block(bit.linear(), bit.sub_norm_linear(), bit.norms, x.data(), tokens, y.data()); }, reps);
    const double f = median_ms([&] { run_block(fp.linear(), sub_norm_by_hand(fp.linear(), fp.norms), fp.norms, x.data(), tokens, y.data()); }, reps);
    std::printf("%-22s %12.2f %12.2f %7.2fx\n", tokens == 1 ? "1 token" : "128-token prompt", b, f, f / b);
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    const std::string mode = argc > 1 ? argv[1] : "";
    if (mode == "--check" && argc == 3) return check(argv[2]);
    if (argc == 1) return benchmark();
    std::fprintf(stderr, "usage: %s [--check DIR]\n", argv[0]);
    return 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
}
