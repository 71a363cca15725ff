// Whole-checkpoint loading: the JSON parser, config.json and index parsing, the convention rules,
// single-file and sharded checkpoints on the mapped and read paths, online (float) checkpoints, and hostile
// configs and indexes. Checkpoints are written to temporary directories by the helpers below.
#include <bitlinear/io/checkpoint.hpp>

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <future>
#include <map>
#include <random>
#include <string>
#include <thread>
#include <vector>

#if !defined(_WIN32)
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#endif

#include "test_util.hpp"

namespace {

namespace fs = std::filesystem;
using Bytes = std::vector<std::uint8_t>;

struct Tensor {
  std::string name, dtype;
  std::vector<std::uint64_t> shape;
  Bytes bytes;
};

Bytes safetensors_bytes(const std::vector<Tensor>& tensors) {
  std::string header = "{\"__metadata__\":{\"format\":\"pt\"}";
  std::uint64_t offset = 0;
  for (const Tensor& t : tensors) {
    header += ",\"" + t.name + "\":{\"dtype\":\"" + t.dtype + "\",\"shape\":[";
    for (std::size_t i = 0; i < t.shape.size(); ++i) header += (i ? "," : "") + std::to_string(t.shape[i]);
    header += "],\"data_offsets\":[" + std::to_string(offset) + "," + std::to_string(offset + t.bytes.size()) + "]}";
    offset += t.bytes.size();
  }
  header += "}";
  Bytes out;
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<std::uint8_t>(static_cast<std::uint64_t>(header.size()) >> (8 * i)));
  out.insert(out.end(), header.begin(), header.end());
  for (const Tensor& t : tensors) out.insert(out.end(), t.bytes.begin(), t.bytes.end());
  return out;
}

void write_file(const fs::path& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary);
  out.write(text.data(), static_cast<std::streamsize>(text.size()));
}
void write_file(const fs::path& path, const Bytes& bytes) {
  write_file(path, std::string(bytes.begin(), bytes.end()));
}

Bytes f32_bytes(const std::vector<float>& v) {
  Bytes b(4 * v.size());
  std::memcpy(b.data(), v.data(), b.size());  // the test machines are little-endian, like the format
  return b;
}
// BF16 by truncation of float32 (values used here are exact in BF16).
Bytes bf16_bytes(const std::vector<float>& v) {
  Bytes b;
  for (float f : v) {
    std::uint32_t bits = 0;
    std::memcpy(&bits, &f, 4);
    b.push_back(static_cast<std::uint8_t>(bits >> 16));
    b.push_back(static_cast<std::uint8_t>(bits >> 24));
  }
  return b;
}
float bf16_round(float f) {
  std::uint32_t bits = 0;
  std::memcpy(&bits, &f, 4);
  bits &= 0xFFFF0000u;
  std::memcpy(&f, &bits, 4);
  return f;
}

// A temporary checkpoint directory, removed at the end of the test.
struct TempDir {
  fs::path path;
  TempDir() {
    static int counter = 0;
    path = fs::temp_directory_path() / ("bitlinear_ckpt_" + std::to_string(std::random_device{}()) + "_" + std::to_string(counter++));
    fs::create_directories(path);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
  std::string str() const { return path.string(); }
};

// A small BitNet-shaped model: `blocks` blocks of hidden 8, FFN 12, 2 heads of 4 (kv 1 head), random codes.
struct TinyModel {
  static constexpr std::size_t hidden = 8, ffn = 12, kv = 4;
  struct Linear {
    std::string module;
    std::size_t out, in;
    std::vector<std::int8_t> codes;
    float beta;
  };
  std::vector<Linear> linears;
  std::vector<Tensor> other;

  explicit TinyModel(int blocks, std::uint32_t seed = 1) {
    std::mt19937 rng(seed);
    const char* names[7] = {"self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj",
                            "mlp.gate_proj",    "mlp.up_proj",      "mlp.down_proj"};
    const std::size_t shapes[7][2] = {{hidden, hidden}, {kv, hidden}, {kv, hidden}, {hidden, hidden},
                                      {ffn, hidden},    {ffn, hidden}, {hidden, ffn}};
    for (int b = 0; b < blocks; ++b) {
      for (int i = 0; i < 7; ++i) {
        Linear l{"model.layers." + std::to_string(b) + "." + names[i], shapes[i][0], shapes[i][1], {}, 0.0f};
        l.codes.resize(l.out * l.in);
        for (auto& c : l.codes) c = static_cast<std::int8_t>(static_cast<int>(rng() % 3) - 1);
        l.beta = std::ldexp(1.0f, -static_cast<int>(rng() % 6));  // powers of 2: beta and 1 / beta are exact in BF16
        linears.push_back(std::move(l));
      }
      other.push_back({"model.layers." + std::to_string(b) + ".input_layernorm.weight", "BF16", {hidden}, bf16_bytes(std::vector<float>(hidden, 1.5f))});
    }
    other.push_back({"model.embed_tokens.weight", "BF16", {16, hidden}, bf16_bytes(std::vector<float>(16 * hidden, 0.5f))});
    other.push_back({"model.norm.weight", "BF16", {hidden}, bf16_bytes(std::vector<float>(hidden, 1.0f))});
  }

  static Bytes hf_pack(const Linear& l) {
    const std::size_t rows = l.out / 4;
    Bytes packed(rows * l.in, 0);
    for (std::size_t r = 0; r < l.out; ++r) {
      for (std::size_t k = 0; k < l.in; ++k) {
        packed[(r % rows) * l.in + k] =
            static_cast<std::uint8_t>(packed[(r % rows) * l.in + k] | (l.codes[r * l.in + k] + 1) << (2 * (r / rows)));
      }
    }
    return packed;
  }

  // The tensors of a packed checkpoint: weight_scale = 1/beta (divide) or beta (multiply), BF16 like 2B4T.
  std::vector<Tensor> packed_tensors(bool divide) const {
    std::vector<Tensor> t = other;
    for (const Linear& l : linears) {
      t.push_back({l.module + ".weight", "U8", {l.out / 4, l.in}, hf_pack(l)});
      t.push_back({l.module + ".weight_scale", "BF16", {1}, bf16_bytes({divide ? 1.0f / l.beta : l.beta})});
    }
    return t;
  }
  // Float (online) weights: code * beta plus noise that does not change the codes.
  std::vector<Tensor> float_tensors(std::vector<std::vector<float>>* weights = nullptr) const {
    std::vector<Tensor> t = other;
    for (const Linear& l : linears) {
      std::vector<float> w(l.codes.size());
      for (std::size_t i = 0; i < w.size(); ++i) w[i] = bf16_round(static_cast<float>(l.codes[i]) * l.beta * (1.0f + 0.125f * static_cast<float>(i % 3)));
      t.push_back({l.module + ".weight", "BF16", {l.out, l.in}, bf16_bytes(w)});
      if (weights != nullptr) weights->push_back(w);
    }
    return t;
  }
};

std::string config_json(const std::string& quantization) {
  return R"({"architectures":["BitNetForCausalLM"],"model_type":"bitnet","hidden_size":8,"intermediate_size":12,)"
         R"("num_hidden_layers":2,"num_attention_heads":2,"num_key_value_heads":1,"rms_norm_eps":1e-05,)"
         R"("rope_theta":500000.0,"tie_word_embeddings":true,"vocab_size":16,"hidden_act":"relu2")" +
         (quantization.empty() ? std::string() : ",\"quantization_config\":" + quantization) + "}";
}
const std::string bitlinear_offline = R"({"quant_method":"bitnet","linear_class":"bitlinear","quantization_mode":"offline"})";
const std::string autobitlinear_offline = R"({"quant_method":"bitnet","linear_class":"autobitlinear","quantization_mode":"offline"})";
const std::string autobitlinear_online = R"({"quant_method":"bitnet","linear_class":"autobitlinear","quantization_mode":"online"})";

void write_single(const TempDir& dir, const std::string& config, const std::vector<Tensor>& tensors) {
  write_file(dir.path / "config.json", config);
  write_file(dir.path / "model.safetensors", safetensors_bytes(tensors));
}

// Shards: tensor i goes to shard i % shards; the index maps it there.
void write_sharded(const TempDir& dir, const std::string& config, const std::vector<Tensor>& tensors, int shards) {
  write_file(dir.path / "config.json", config);
  std::vector<std::vector<Tensor>> parts(shards);
  std::string index = R"({"metadata":{"total_size":0},"weight_map":{)";
  for (std::size_t i = 0; i < tensors.size(); ++i) {
    const int s = static_cast<int>(i % static_cast<std::size_t>(shards));
    parts[s].push_back(tensors[i]);
    index += (i ? "," : "") + ("\"" + tensors[i].name + "\":\"model-0000" + std::to_string(s + 1) + "-of-0000" +
                               std::to_string(shards) + ".safetensors\"");
  }
  index += "}}";
  write_file(dir.path / "model.safetensors.index.json", index);
  for (int s = 0; s < shards; ++s) {
    write_file(dir.path / ("model-0000" + std::to_string(s + 1) + "-of-0000" + std::to_string(shards) + ".safetensors"),
               safetensors_bytes(parts[s]));
  }
}

template <class F>
void expect_invalid(F&& f, const std::string& needle) {
  SCOPED_TRACE(needle);
  try {
    f();
    ADD_FAILURE() << "no exception";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
  }
}

void expect_model_matches(const bitlinear::BitNetModel& model, const TinyModel& tiny) {
  ASSERT_EQ(model.layers.size(), tiny.linears.size());
  for (const TinyModel::Linear& l : tiny.linears) {
    SCOPED_TRACE(l.module);
    const bitlinear::TernaryLinear& layer = model.layer(l.module);
    EXPECT_EQ(layer.out_features(), l.out);
    EXPECT_EQ(layer.in_features(), l.in);
    EXPECT_EQ(layer.unpacked_weights(), l.codes);
    EXPECT_EQ(layer.weight_scale(), l.beta);
  }
  EXPECT_EQ(model.tensors.size(), tiny.other.size());
  for (const Tensor& t : tiny.other) {
    const bitlinear::SafetensorsTensor& v = model.tensor(t.name);
    EXPECT_EQ(v.dtype, t.dtype);
    EXPECT_EQ(Bytes(v.data, v.data + v.size_bytes), t.bytes);
  }
}

// --- JSON ---------------------------------------------------------------------------------------------------

// Validates `text` as a whole document (what the config and index readers do first).
void json(const std::string& text) { (void)bitlinear::detail::JsonDocument(text, "test"); }

TEST(Json, ParsesValues) {
  using bitlinear::detail::JsonDocument;
  using bitlinear::detail::JsonRef;
  const std::string text = R"( {"a":[1,-2.5e3,0,true,false,null],"s":"x\u00e9\n\ud83d\ude00","o":{}, "e":[]} )";
  const JsonDocument v(text, "test");
  ASSERT_TRUE(v.is_object(v.root()));
  std::vector<JsonRef> a;
  v.for_each_element(v.get(v.root(), "a"), [&](JsonRef e) { a.push_back(e); });
  ASSERT_EQ(a.size(), 6u);
  std::uint64_t u = 0;
  double d = 0.0;
  EXPECT_TRUE(v.as_uint64(a[0], u));
  EXPECT_EQ(u, 1u);
  EXPECT_FALSE(v.as_uint64(a[1], u));
  EXPECT_TRUE(v.as_double(a[1], d));
  EXPECT_EQ(d, -2500.0);
  EXPECT_TRUE(v.boolean(a[3]));
  EXPECT_TRUE(v.is_bool(a[4]));
  EXPECT_FALSE(v.boolean(a[4]));
  EXPECT_TRUE(v.is_null(a[5]));
  EXPECT_EQ(v.string(v.get(v.root(), "s")), "x\xC3\xA9\n\xF0\x9F\x98\x80");
  EXPECT_FALSE(v.get(v.root(), "missing"));
  std::vector<std::string> keys;
  v.for_each_member(v.root(), [&](const std::string& k, JsonRef) { keys.push_back(k); });
  EXPECT_EQ(keys, (std::vector<std::string>{"a", "s", "o", "e"}));
  auto number = [](const std::string& t) { return JsonDocument(t, "test"); };
  const std::string max = "18446744073709551615", over = "18446744073709551616", huge = "1e999", small = "1e-05";
  EXPECT_TRUE(number(max).as_uint64(number(max).root(), u));
  EXPECT_EQ(u, 18446744073709551615ull);
  EXPECT_FALSE(number(over).as_uint64(number(over).root(), u));
  EXPECT_FALSE(number(huge).as_double(number(huge).root(), d));
  EXPECT_TRUE(number(small).as_double(number(small).root(), d));
  EXPECT_EQ(d, 1e-05);
}

TEST(Json, RejectsMalformedDocuments) {
  const std::vector<std::pair<std::string, std::string>> bad = {
      {"", "expected a value"},
      {"{", "expected a string key"},
      {"{\"a\":1,}", "expected a string key"},
      {"[1,]", "expected a value"},
      {"[1 2]", "expected ',' or ']'"},
      {"{\"a\" 1}", "expected ':'"},
      {"{\"a\":1,\"a\":2}", "\"a\" appears twice"},
      {"01", "leading zero"},
      {"1.", "digits after '.'"},
      {"1e", "digits in the exponent"},
      {"-", "expected a value"},
      {"+1", "expected a value"},
      {"tru", "unknown literal"},
      {"nul", "unknown literal"},
      {"\"a", "unterminated string"},
      {"\"\\x\"", "unknown escape"},
      {"\"\\ud800\"", "unpaired high surrogate"},
      {"\"\\udc00\"", "unpaired low surrogate"},
      {"\"\\u12g4\"", "bad hex digit"},
      {"\"\x01\"", "raw control character"},
      {"\"\xC3\x28\"", "missing continuation byte"},
      {"\"\xED\xA0\x80\"", "encoded surrogate"},
      {"\"\xC0\xAF\"", "cannot start a character"},
      {"{} {}", "unexpected bytes after"},
      {std::string(100, '['), "nested deeper than 64 levels"},
  };
  for (const auto& c : bad) expect_invalid([&] { (void)json(c.first); }, c.second);
  EXPECT_NO_THROW((void)json(std::string(64, '[') + std::string(64, ']')));
}

TEST(Json, DuplicateKeysAreFoundAfterDecodingAndAtAnyDepth) {
  // The validator compares decoded keys (hash, then bytes), so an escaped spelling is the same key.
  expect_invalid([&] { json(R"({"a":1,"\u0061":2})"); }, "\"a\" appears twice in one object");
  expect_invalid([&] { json(R"({"x":[{"k":1,"b":2,"k":3}]})"); }, "\"k\" appears twice");
  expect_invalid([&] { json(R"({"e\u0301":1,"\u0065\u0301":2})"); }, "appears twice");
  // Same key in different objects, and keys that differ only after an escape, are fine.
  EXPECT_NO_THROW(json(R"({"a":{"a":1},"b":{"a":2},"\u0061b":3,"a\n":4,"a\t":5})"));
  // Many keys: sorted once per object, found wherever the duplicate is.
  std::string many = "{";
  for (int i = 0; i < 20000; ++i) many += "\"k" + std::to_string(i) + "\":0,";
  EXPECT_NO_THROW(json(many + "\"last\":0}"));
  expect_invalid([&] { json(many + "\"k12345\":0}"); }, "\"k12345\" appears twice");
}

TEST(Json, ErrorsNameTheByteOffset) {
  expect_invalid([&] { json("{\"a\":[1,2,}"); }, "test: invalid JSON at byte 10: expected a value");
  expect_invalid([&] { json("[\"\xC3\"]"); }, "invalid JSON at byte 3: invalid UTF-8 in a string: missing continuation byte");
  expect_invalid([&] { json(std::string(66, '[') + std::string(66, ']')); }, "invalid JSON at byte 65: nested deeper than 64 levels");
}

TEST(Json, DocumentReadsValuesInPlace) {
  using bitlinear::detail::JsonDocument;
  using bitlinear::detail::JsonRef;
  const std::string text = R"({"n":-0.5e+2,"u":007})";
  expect_invalid([&] { json(text); }, "leading zero");
  const std::string ok = R"({"n":-0.5e+2,"big":123456789012345678901234567890,"s":"\"q\"","arr":[[],{}],"nested":{"n":1}})";
  const JsonDocument d(ok, "test");
  const std::string_view keys[] = {"n", "big", "s", "arr", "absent"};
  JsonRef v[5];
  d.find_members(d.root(), keys, 5, v);
  double x = 0;
  std::uint64_t u = 0;
  EXPECT_TRUE(d.as_double(v[0], x));
  EXPECT_EQ(x, -50.0);
  EXPECT_EQ(d.number_text(v[0]), "-0.5e+2");
  EXPECT_FALSE(d.as_uint64(v[1], u));  // beyond 64 bits
  EXPECT_TRUE(d.as_double(v[1], x));
  EXPECT_EQ(d.string(v[2]), "\"q\"");
  EXPECT_FALSE(d.as_double(v[2], x));
  std::size_t elements = 0;
  d.for_each_element(v[3], [&](JsonRef) { ++elements; });
  EXPECT_EQ(elements, 2u);
  EXPECT_FALSE(v[4]);
  EXPECT_EQ(d.number_text(d.get(d.get(d.root(), "nested"), "n")), "1");  // the nested "n", not the top one
}

// --- config.json --------------------------------------------------------------------------------------------

TEST(HfConfig, Parses2B4TConfig) {
  // The fields of microsoft/bitnet-b1.58-2B-4T's config.json.
  const std::string text = R"({
    "architectures": ["BitNetForCausalLM"], "attention_bias": false, "bos_token_id": 128000, "eos_token_id": 128001,
    "hidden_act": "relu2", "hidden_size": 2560, "initializer_range": 0.02, "intermediate_size": 6912,
    "max_position_embeddings": 4096, "model_type": "bitnet", "rms_norm_eps": 1e-05, "num_attention_heads": 20,
    "num_hidden_layers": 30, "num_key_value_heads": 5, "rope_theta": 500000.0, "tie_word_embeddings": true,
    "torch_dtype": "bfloat16", "use_cache": true, "vocab_size": 128256,
    "quantization_config": {"quant_method": "bitnet", "linear_class": "bitlinear", "quantization_mode": "offline"}})";
  const bitlinear::HfModelConfig c = bitlinear::parse_hf_config(text);
  EXPECT_EQ(c.model_type, "bitnet");
  EXPECT_EQ(c.architectures, std::vector<std::string>{"BitNetForCausalLM"});
  EXPECT_EQ(c.hidden_size, 2560u);
  EXPECT_EQ(c.intermediate_size, 6912u);
  EXPECT_EQ(c.num_hidden_layers, 30u);
  EXPECT_EQ(c.num_attention_heads, 20u);
  EXPECT_EQ(c.num_key_value_heads, 5u);
  EXPECT_EQ(c.vocab_size, 128256u);
  EXPECT_EQ(c.rms_norm_eps, 1e-05);
  EXPECT_EQ(c.rope_theta, 500000.0);
  EXPECT_TRUE(c.tie_word_embeddings);
  EXPECT_TRUE(c.quantization.present);
  EXPECT_EQ(bitlinear::hf_weight_format(c.quantization), bitlinear::HfWeightFormat::packed_divide);
}

TEST(HfConfig, ConventionFollowsTheLinearClass) {
  auto format = [](const std::string& q) { return bitlinear::hf_weight_format(bitlinear::parse_hf_config(config_json(q)).quantization); };
  using F = bitlinear::HfWeightFormat;
  EXPECT_EQ(format(bitlinear_offline), F::packed_divide);
  EXPECT_EQ(format(R"({"quant_method":"bitnet"})"), F::packed_divide);  // BitNetQuantConfig defaults
  // transformers' BitLinear has no online mode: the class reads packed weights whatever the mode says.
  EXPECT_EQ(format(R"({"quant_method":"bitnet","linear_class":"bitlinear","quantization_mode":"online"})"), F::packed_divide);
  EXPECT_EQ(format(autobitlinear_offline), F::packed_multiply);
  EXPECT_EQ(format(autobitlinear_online), F::float_online);
  expect_invalid([&] { format(""); }, "no quantization_config");
  expect_invalid([&] { format("null"); }, "no quantization_config");
  expect_invalid([&] { format(R"({"quant_method":"gptq"})"); }, "quant_method is \"gptq\"");
  expect_invalid([&] { format(R"({"quant_method":"bitnet","linear_class":"bitnetlinear"})"); }, "linear_class is \"bitnetlinear\"");
  expect_invalid([&] { format(R"({"quant_method":"bitnet","quantization_mode":"qat"})"); }, "quantization_mode is \"qat\"");
  expect_invalid([&] { format(R"({"quant_method":"bitnet","use_rms_norm":true})"); }, "use_rms_norm is true");
}

TEST(HfConfig, RejectsWrongTypes) {
  const std::vector<std::pair<std::string, std::string>> bad = {
      {"[]", "must be a JSON object"},
      {R"({"hidden_size":"2560"})", "hidden_size must be a non-negative integer"},
      {R"({"hidden_size":-1})", "hidden_size must be a non-negative integer"},
      {R"({"hidden_size":2560.0})", "hidden_size must be a non-negative integer"},
      {R"({"rms_norm_eps":"small"})", "rms_norm_eps must be a finite number"},
      {R"({"rope_theta":1e400})", "rope_theta must be a finite number"},
      {R"({"tie_word_embeddings":1})", "tie_word_embeddings must be true or false"},
      {R"({"architectures":"BitNet"})", "architectures must be an array"},
      {R"({"quantization_config":[]})", "quantization_config must be an object"},
      {R"({"quantization_config":{"linear_class":1}})", "quantization_config.linear_class must be a string"},
      {R"({"quantization_config":{"modules_to_not_convert":"lm_head"}})", "modules_to_not_convert must be an array"},
      {R"({"quantization_config":{"modules_to_not_convert":[1]}})", "modules_to_not_convert must hold strings"},
  };
  for (const auto& c : bad) expect_invalid([&] { (void)bitlinear::parse_hf_config(c.first); }, c.second);
}

TEST(HfIndex, ParsesAndValidatesShardNames) {
  const auto entries = bitlinear::parse_hf_index(
      R"({"metadata":{"total_size":10},"weight_map":{"b":"model-00002-of-00002.safetensors","a":"model-00001-of-00002.safetensors"}})");
  ASSERT_EQ(entries.size(), 2u);
  EXPECT_EQ(entries[0].first, "a");
  EXPECT_EQ(entries[1].second, "model-00002-of-00002.safetensors");
  const std::vector<std::pair<std::string, std::string>> bad = {
      {R"({})", "needs a \"weight_map\" object"},
      {R"({"weight_map":[]})", "needs a \"weight_map\" object"},
      {R"({"weight_map":{"a":1}})", "must be a file name string"},
      {R"({"weight_map":{"a":"../secret.safetensors"}})", "is not a plain file name"},
      {R"({"weight_map":{"a":"/etc/passwd"}})", "is not a plain file name"},
      {R"({"weight_map":{"a":"..\\x"}})", "is not a plain file name"},
      {R"({"weight_map":{"a":"C:x"}})", "is not a plain file name"},
      {R"({"weight_map":{"a":""}})", "is not a plain file name"},
      {R"({"weight_map":{"a":".."}})", "is not a plain file name"},
      {R"({"weight_map":{"a":"x\u0000y"}})", "is not a plain file name"},
      {R"({"weight_map":{"a":"x","a":"y"}})", "appears twice"},
  };
  for (const auto& c : bad) expect_invalid([&] { (void)bitlinear::parse_hf_index(c.first); }, c.second);
}

// Every shard is a memory map, and a process has a limited number of them: an index naming more shard files than
// HfCheckpoint::max_shards is refused before any shard is opened (none of these files exists).
TEST(Checkpoint, RefusesAnIndexWithMoreShardsThanTheLimit) {
  const TempDir dir;
  write_file(dir.path / "config.json", config_json(bitlinear_offline));
  const std::size_t shards = bitlinear::HfCheckpoint::max_shards + 1;
  std::string index = R"({"weight_map":{)";
  for (std::size_t i = 0; i < shards; ++i) {
    index += (i ? ",\"t" : "\"t") + std::to_string(i) + "\":\"s" + std::to_string(i) + ".safetensors\"";
  }
  index += "}}";
  write_file(dir.path / "model.safetensors.index.json", index);
  expect_invalid([&] { (void)bitlinear::HfCheckpoint::open(dir.str()); },
                 "names " + std::to_string(shards) + " shard files; at most " +
                     std::to_string(bitlinear::HfCheckpoint::max_shards) + " are accepted");
}

TEST(Checkpoint, NaturalOrder) {
  using bitlinear::detail::natural_less;
  EXPECT_TRUE(natural_less("model.layers.2.mlp", "model.layers.10.mlp"));
  EXPECT_FALSE(natural_less("model.layers.10.mlp", "model.layers.2.mlp"));
  EXPECT_TRUE(natural_less("a1", "a01"));
  EXPECT_FALSE(natural_less("a01", "a1"));
  EXPECT_FALSE(natural_less("x", "x"));
  EXPECT_TRUE(natural_less("x", "x.y"));
  EXPECT_TRUE(natural_less("layers.9", "layers.9a"));
}

// --- loading whole checkpoints ------------------------------------------------------------------------------

TEST(Checkpoint, LoadsEveryLayerOfASingleFileCheckpoint) {
  const TinyModel tiny(2);
  for (bool divide : {true, false}) {
    SCOPED_TRACE(divide ? "bitlinear (divide)" : "autobitlinear offline (multiply)");
    const TempDir dir;
    write_single(dir, config_json(divide ? bitlinear_offline : autobitlinear_offline), tiny.packed_tensors(divide));
    for (auto access : {bitlinear::FileAccess::map, bitlinear::FileAccess::read}) {
      const auto checkpoint = bitlinear::HfCheckpoint::open(dir.str(), access);
#if BITLINEAR_HAVE_FILE_MAPPING
      EXPECT_EQ(checkpoint.shards().at(0).is_mapped(), access == bitlinear::FileAccess::map);
#endif
      const bitlinear::BitNetModel model = bitlinear::load_bitnet_layers(checkpoint);
      EXPECT_EQ(model.format, divide ? bitlinear::HfWeightFormat::packed_divide : bitlinear::HfWeightFormat::packed_multiply);
      expect_model_matches(model, tiny);
      EXPECT_EQ(model.layers.front().name, "model.layers.0.mlp.down_proj");  // natural order of module names
      EXPECT_EQ(model.layers.back().name, "model.layers.1.self_attn.v_proj");
    }
  }
}

TEST(Checkpoint, ShardedEqualsSingleFile) {
  const TinyModel tiny(3, 7);
  const TempDir single, sharded;
  write_single(single, config_json(bitlinear_offline), tiny.packed_tensors(true));
  write_sharded(sharded, config_json(bitlinear_offline), tiny.packed_tensors(true), 3);
  const auto a = bitlinear::HfCheckpoint::open(single.str());
  const auto b = bitlinear::HfCheckpoint::open(sharded.str(), bitlinear::FileAccess::read);
  EXPECT_EQ(b.shard_names().size(), 3u);
  ASSERT_EQ(a.tensors().size(), b.tensors().size());
  for (std::size_t i = 0; i < a.tensors().size(); ++i) EXPECT_EQ(a.tensors()[i]->name, b.tensors()[i]->name);
  expect_model_matches(bitlinear::load_bitnet_layers(b), tiny);
  const auto c = bitlinear::HfCheckpoint::open(sharded.str() + "/");  // a trailing separator is fine
  expect_model_matches(bitlinear::load_bitnet_layers(c), tiny);
  // Outputs of a loaded layer equal a layer built from the same codes.
  const auto& l = tiny.linears[4];
  std::vector<std::uint8_t> packed(bitlinear::packed_size<bitlinear::Ternary>(l.out, l.in));
  bitlinear::pack_codes<bitlinear::Ternary>(l.codes.data(), l.out, l.in, packed.data());
  const auto expected = bitlinear::TernaryLinear::from_packed(packed.data(), packed.size(), l.out, l.in, l.beta);
  const std::vector<float> x = bitlinear_test::random_floats(3 * l.in, 5);
  std::vector<float> y1(3 * l.out), y2(3 * l.out);
  expected.forward(x.data(), 3, y1.data());
  bitlinear::load_bitnet_layers(c).layer(l.module).forward(x.data(), 3, y2.data());
  EXPECT_EQ(y1, y2);
}

TEST(Checkpoint, OnlineCheckpointsAreQuantizedAtLoad) {
  const TinyModel tiny(2, 3);
  std::vector<std::vector<float>> weights;
  std::vector<Tensor> tensors = tiny.float_tensors(&weights);
  // An lm_head and a module excluded by modules_to_not_convert stay float tensors.
  tensors.push_back({"lm_head.weight", "BF16", {16, 8}, bf16_bytes(std::vector<float>(128, 0.25f))});
  tensors.push_back({"model.extra.q_proj.weight", "F32", {4, 8}, f32_bytes(std::vector<float>(32, 0.5f))});
  const TempDir dir;
  write_single(dir, config_json(R"({"quant_method":"bitnet","linear_class":"autobitlinear","quantization_mode":"online",)"
                                R"("modules_to_not_convert":["model.extra"]})"),
               tensors);
  const auto checkpoint = bitlinear::HfCheckpoint::open(dir.str());
  const bitlinear::BitNetModel model = bitlinear::load_bitnet_layers(checkpoint);
  EXPECT_EQ(model.format, bitlinear::HfWeightFormat::float_online);
  ASSERT_EQ(model.layers.size(), tiny.linears.size());
  for (std::size_t i = 0; i < tiny.linears.size(); ++i) {
    const auto& l = tiny.linears[i];
    SCOPED_TRACE(l.module);
    const auto expected = bitlinear::TernaryLinear::from_float(weights[i].data(), l.out, l.in);
    const auto& layer = model.layer(l.module);
    EXPECT_EQ(layer.unpacked_weights(), expected.unpacked_weights());
    EXPECT_EQ(layer.weight_scale(), expected.weight_scale());
    EXPECT_EQ(layer.unpacked_weights(), l.codes);  // the noise never moves a code
  }
  EXPECT_NE(model.find_tensor("lm_head.weight"), nullptr);
  EXPECT_NE(model.find_tensor("model.extra.q_proj.weight"), nullptr);
  EXPECT_EQ(model.find_layer("model.extra.q_proj"), nullptr);
}

TEST(Checkpoint, ModulesToNotConvertMatchLikeTransformers) {
  // transformers' should_convert_module: an entry excludes a module whose path starts with it (re.match, so
  // "model.layers.1" also reaches layers.10) or ends with it. Not a substring anywhere: "layers.1" in the middle of
  // a path excludes nothing.
  bitlinear::HfQuantizationConfig q;
  q.modules_to_not_convert = {"model.extra", "o_proj", "layers.1", "model.layers.3"};
  const std::vector<std::pair<std::string, bool>> cases = {
      {"model.extra.q_proj", true},           {"model.extra", true},
      {"model.layers.0.self_attn.o_proj", true}, {"model.layers.1.mlp.up_proj", false},
      {"x.model.extra.q_proj", false},        {"model.layers.3.mlp.up_proj", true},
      {"model.layers.30.mlp.up_proj", true},  {"model.layers.2.mlp.o_proj_b", false},
      {"lm_head", false},                     {"", false}};
  const bitlinear::detail::ModuleExclusions indexed(q.modules_to_not_convert);
  for (const auto& [module, excluded] : cases) {
    SCOPED_TRACE(module);
    EXPECT_EQ(bitlinear::hf_module_not_converted(q, module), excluded);
    EXPECT_EQ(indexed.excludes(module), excluded);
  }
  // The index agrees with the one-query rule on random short names over a small alphabet.
  std::mt19937 rng(5);
  auto random_name = [&](std::size_t max) {
    std::string n(rng() % (max + 1), 'a');
    for (char& c : n) c = "ab."[rng() % 3];
    return n;
  };
  // 0 to 15 entries (empty ones, duplicates and prefix chains come up often over this alphabet).
  for (int round = 0; round < 600; ++round) {
    bitlinear::HfQuantizationConfig r;
    const int entries = static_cast<int>(rng() % 16);
    for (int i = 0; i < entries; ++i) r.modules_to_not_convert.push_back(random_name(round % 2 == 0 ? 3 : 6));
    const bitlinear::detail::ModuleExclusions index(r.modules_to_not_convert);
    for (int i = 0; i < 20; ++i) {
      const std::string m = random_name(8);
      ASSERT_EQ(index.excludes(m), bitlinear::hf_module_not_converted(r, m)) << m;
    }
  }
}

TEST(Checkpoint, ContradictionsAndRefusalsAreClearErrors) {
  const TinyModel tiny(2);  // the blocks config_json describes
  {  // packed config, float projections: the -bf16 checkpoint with the wrong config
    const TempDir dir;
    write_single(dir, config_json(bitlinear_offline), tiny.float_tensors());
    expect_invalid([&] { (void)bitlinear::load_bitnet_layers(bitlinear::HfCheckpoint::open(dir.str())); },
                   "config.json describes packed weights, but this projection is stored as BF16");
  }
  {  // online config, packed weights
    const TempDir dir;
    write_single(dir, config_json(autobitlinear_online), tiny.packed_tensors(false));
    expect_invalid([&] { (void)bitlinear::load_bitnet_layers(bitlinear::HfCheckpoint::open(dir.str())); },
                   "describes online quantization (float weights), but this projection is stored as U8 with a weight_scale");
  }
  {  // no quantization_config; the caller may still say what the weights are
    const TempDir dir;
    write_single(dir, config_json(""), tiny.packed_tensors(true));
    const auto checkpoint = bitlinear::HfCheckpoint::open(dir.str());
    expect_invalid([&] { (void)bitlinear::load_bitnet_layers(checkpoint); }, "no quantization_config");
    bitlinear::BitNetLoadOptions options;
    options.format = bitlinear::HfWeightFormat::packed_divide;
    expect_model_matches(bitlinear::load_bitnet_layers(checkpoint, options), tiny);
  }
  {  // a packed module that modules_to_not_convert excludes; a weight_scale without a weight; a bad layer
    const TempDir dir;
    write_single(dir, config_json(R"({"quant_method":"bitnet","modules_to_not_convert":["o_proj"]})"), tiny.packed_tensors(true));
    expect_invalid([&] { (void)bitlinear::load_bitnet_layers(bitlinear::HfCheckpoint::open(dir.str())); },
                   "\"model.layers.0.self_attn.o_proj\": stored packed, but quantization_config.modules_to_not_convert excludes it");
    const TempDir dir2;
    std::vector<Tensor> t = tiny.packed_tensors(true);
    t.push_back({"model.orphan.weight_scale", "BF16", {1}, bf16_bytes({1.0f})});
    write_single(dir2, config_json(bitlinear_offline), t);
    expect_invalid([&] { (void)bitlinear::load_bitnet_layers(bitlinear::HfCheckpoint::open(dir2.str())); },
                   "\"model.orphan\": has a weight_scale but no weight");
    const TempDir dir3;
    t = tiny.packed_tensors(true);
    t.push_back({"model.bad.weight", "U8", {1, 2}, Bytes{0xFF, 0x55}});  // field value 3
    t.push_back({"model.bad.weight_scale", "BF16", {1}, bf16_bytes({1.0f})});
    write_single(dir3, config_json(bitlinear_offline), t);
    // The import's message follows the module, its "bitlinear: " prefix not repeated.
    expect_invalid([&] { (void)bitlinear::load_bitnet_layers(bitlinear::HfCheckpoint::open(dir3.str())); },
                   "bitlinear: BitLinear module \"model.bad\": HF packed weight byte [0][0] holds field value 3");
  }
  {  // the per-layer budget reaches the loader
    const TempDir dir;
    write_single(dir, config_json(bitlinear_offline), tiny.packed_tensors(true));
    bitlinear::BitNetLoadOptions options;
    options.import.max_weight_bytes = 12 * 64 - 1;  // gate/up: 12 rows of 64 bytes
    expect_invalid([&] { (void)bitlinear::load_bitnet_layers(bitlinear::HfCheckpoint::open(dir.str()), options); },
                   "more than the import budget max_weight_bytes = 767");
  }
}

TEST(Checkpoint, AggregateBudgetIsCheckedBeforeAnythingIsBuilt) {
  // Narrow packed weights grow when imported: U8 [R, 1] takes 4R rows of one 64-byte block, 256 x its bytes. Each
  // layer here is far within the per-layer budget (32 MiB of 1 GiB), but three of them need 96 MiB from 384 KiB
  // of tensors.
  const std::size_t rows = 128 * 1024;
  std::vector<Tensor> t;
  for (int i = 0; i < 3; ++i) {
    const std::string m = "model.narrow" + std::to_string(i);
    t.push_back({m + ".weight", "U8", {rows, 1}, Bytes(rows, 0x55)});
    t.push_back({m + ".weight_scale", "BF16", {1}, bf16_bytes({1.0f})});
  }
  const TempDir dir;
  write_single(dir, R"({"quantization_config":{"quant_method":"bitnet"}})", t);
  const auto checkpoint = bitlinear::HfCheckpoint::open(dir.str());
  expect_invalid([&] { (void)bitlinear::load_bitnet_layers(checkpoint); },
                 "loading 3 BitLinear layers needs 100663296 bytes (100663296 of layer weights + 0 transient for the "
                 "largest conversion) from 393222 bytes of tensors, more than BitNetLoadOptions::max_growth = 16");
  bitlinear::BitNetLoadOptions options;
  options.max_growth = 512;
  options.max_total_bytes = 64 << 20;
  expect_invalid([&] { (void)bitlinear::load_bitnet_layers(checkpoint, options); },
                 "more than the aggregate budget BitNetLoadOptions::max_total_bytes = 67108864");
  options.max_total_bytes = 100663296;  // exactly enough
  EXPECT_EQ(bitlinear::load_bitnet_layers(checkpoint, options).layers.size(), 3u);
  // Online checkpoints count the float copy of the largest layer as transient.
  const TinyModel tiny(2);
  const TempDir online;
  write_single(online, config_json(autobitlinear_online), tiny.float_tensors());
  std::uint64_t weights = 0, transient = 0;
  for (const TinyModel::Linear& l : tiny.linears) {
    weights += l.out * bitlinear::Ternary::packed_row_bytes(l.in);
    transient = std::max<std::uint64_t>(transient, 5 * l.out * l.in);  // float32 copy + int8 codes
  }
  const auto online_checkpoint = bitlinear::HfCheckpoint::open(online.str());
  options = {};
  options.max_total_bytes = weights + transient - 1;  // every layer's weights fit, the conversion does not
  expect_invalid([&] { (void)bitlinear::load_bitnet_layers(online_checkpoint, options); },
                 std::to_string(transient) + " transient for the largest conversion), more than the aggregate budget");
  options.max_total_bytes = weights + transient;
  EXPECT_EQ(bitlinear::load_bitnet_layers(online_checkpoint, options).layers.size(), tiny.linears.size());
}

TEST(Checkpoint, EveryProjectionOfEveryDescribedBlockMustBeThere) {
  const TinyModel tiny(2);
  std::vector<Tensor> t = tiny.packed_tensors(true);
  t.erase(std::remove_if(t.begin(), t.end(), [](const Tensor& x) { return x.name.rfind("model.layers.1.mlp.up_proj.", 0) == 0; }),
          t.end());
  const TempDir dir;
  write_single(dir, config_json(bitlinear_offline), t);
  expect_invalid([&] { (void)bitlinear::load_bitnet_layers(bitlinear::HfCheckpoint::open(dir.str())); },
                 "config.json describes num_hidden_layers = 2 blocks, but the checkpoint has no tensor "
                 "\"model.layers.1.mlp.up_proj.weight\"");
  // An absurd block count stops at the first missing block, at once.
  std::string config = config_json(bitlinear_offline);
  config.replace(config.find("\"num_hidden_layers\":2"), 21, "\"num_hidden_layers\":1000000000000000000");
  const TempDir dir2;
  write_single(dir2, config, tiny.packed_tensors(true));
  expect_invalid([&] { (void)bitlinear::load_bitnet_layers(bitlinear::HfCheckpoint::open(dir2.str())); },
                 "no tensor \"model.layers.2.self_attn.q_proj.weight\"");
  // A projection that modules_to_not_convert keeps as floats is there (as a tensor, not a layer).
  std::vector<Tensor> f = tiny.packed_tensors(true);
  for (Tensor& x : f) {
    if (x.name == "model.layers.0.self_attn.o_proj.weight") x = {x.name, "F32", {8, 8}, f32_bytes(std::vector<float>(64, 0.5f))};
  }
  f.erase(std::remove_if(f.begin(), f.end(), [](const Tensor& x) { return x.name == "model.layers.0.self_attn.o_proj.weight_scale"; }),
          f.end());
  const TempDir dir3;
  write_single(dir3, config_json(R"({"quant_method":"bitnet","modules_to_not_convert":["model.layers.0.self_attn.o_proj"]})"), f);
  const auto checkpoint = bitlinear::HfCheckpoint::open(dir3.str());  // the model's tensors are views into it
  const bitlinear::BitNetModel model = bitlinear::load_bitnet_layers(checkpoint);
  EXPECT_EQ(model.layers.size(), 13u);
  EXPECT_NE(model.find_tensor("model.layers.0.self_attn.o_proj.weight"), nullptr);
}

TEST(Checkpoint, WindowsDeviceNames) {
  using bitlinear::detail::is_windows_device_name;
  for (const char* name : {"NUL", "nul", "nul.json", "dir/Con.safetensors", "dir\\aux", "COM1", "com9.json", "LPT3", "PRN ",
                           "prn .txt"}) {
    EXPECT_TRUE(is_windows_device_name(name)) << name;
  }
  for (const char* name : {"config.json", "COM0", "COM10", "LPT", "nul_config.json", "CONFIG", "dir.nul/x", "model.safetensors"}) {
    EXPECT_FALSE(is_windows_device_name(name)) << name;
  }
}

#if !defined(_WIN32)
// A FIFO (or other special file) where a checkpoint file belongs is refused at once, not read forever. Before,
// opening it waited for a writer: the open runs on a thread here, and a writer is connected after 3 s to release
// it if it hangs (which fails the test).
TEST(Checkpoint, SpecialFilesAreRefusedUpFront) {
  const TinyModel tiny(2);
  for (const char* which : {"config.json", "model.safetensors.index.json", "model-00002-of-00002.safetensors", "model.safetensors"}) {
    SCOPED_TRACE(which);
    const TempDir dir;
    if (std::string(which) == "model.safetensors") {
      write_file(dir.path / "config.json", config_json(bitlinear_offline));
    } else {
      write_sharded(dir, config_json(bitlinear_offline), tiny.packed_tensors(true), 2);
    }
    const fs::path fifo = dir.path / which;
    fs::remove(fifo);
    ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
    std::promise<std::string> result;
    std::future<std::string> done = result.get_future();
    std::thread opener([&] {
      try {
        (void)bitlinear::HfCheckpoint::open(dir.str());
        result.set_value("accepted");
      } catch (const std::exception& e) {
        result.set_value(e.what());
      }
    });
    if (done.wait_for(std::chrono::seconds(3)) != std::future_status::ready) {
      ADD_FAILURE() << "HfCheckpoint::open blocked on the FIFO " << which;
      const int fd = ::open(fifo.c_str(), O_WRONLY | O_NONBLOCK);  // a writer: the blocked open returns
      if (fd >= 0) ::close(fd);
    }
    opener.join();
    const std::string message = done.get();
    EXPECT_NE(message.find("is a FIFO (named pipe), not a regular file"), std::string::npos) << message;
  }
  const TempDir dir;  // a directory where config.json belongs
  fs::create_directories(dir.path / "config.json");
  expect_invalid([&] { (void)bitlinear::HfCheckpoint::open(dir.str()); }, "is a directory, not a regular file");
}
#endif

TEST(Checkpoint, HostileDirectoriesAreClearErrors) {
  const TinyModel tiny(1);
  const std::vector<Tensor> tensors = tiny.packed_tensors(true);
  {  // missing files
    const TempDir dir;
    EXPECT_THROW((void)bitlinear::HfCheckpoint::open(dir.str()), std::runtime_error);  // no config.json
    write_file(dir.path / "config.json", config_json(bitlinear_offline));
    EXPECT_THROW((void)bitlinear::HfCheckpoint::open(dir.str()), std::runtime_error);  // no model.safetensors
    write_file(dir.path / "model.safetensors.index.json", std::string(R"({"weight_map":{"a":"missing.safetensors"}})"));
    EXPECT_THROW((void)bitlinear::HfCheckpoint::open(dir.str()), std::runtime_error);  // shard missing
  }
  {  // the index names a tensor its shard does not hold; a shard holds a tensor the index does not map there
    const TempDir dir;
    write_sharded(dir, config_json(bitlinear_offline), tensors, 2);
    write_file(dir.path / "model.safetensors.index.json",
               std::string(R"({"weight_map":{"model.norm.weight":"model-00001-of-00002.safetensors","ghost":"model-00002-of-00002.safetensors"}})"));
    expect_invalid([&] { (void)bitlinear::HfCheckpoint::open(dir.str()); }, "which has no such tensor");
    const TempDir dir2;
    write_sharded(dir2, config_json(bitlinear_offline), tensors, 2);
    std::string index = R"({"weight_map":{)";
    for (std::size_t i = 0; i + 1 < tensors.size(); ++i) {
      index += (i ? "," : "") + ("\"" + tensors[i].name + "\":\"model-0000" + std::to_string(i % 2 + 1) + "-of-00002.safetensors\"");
    }
    write_file(dir2.path / "model.safetensors.index.json", index + "}}");
    expect_invalid([&] { (void)bitlinear::HfCheckpoint::open(dir2.str()); },
                   "holds tensor \"" + tensors.back().name + "\", which model.safetensors.index.json does not map");
  }
  {  // malformed config.json, index, shard; a path-escaping shard name
    const TempDir dir;
    write_single(dir, "{\"hidden_size\":", tensors);
    expect_invalid([&] { (void)bitlinear::HfCheckpoint::open(dir.str()); }, "config.json: invalid JSON at byte 15");
    write_file(dir.path / "config.json", config_json(bitlinear_offline));
    fs::rename(dir.path / "model.safetensors", dir.path / "aside.safetensors");
    write_file(dir.path / "model.safetensors.index.json", std::string(R"({"weight_map":{"a":"../model.safetensors"}})"));
    expect_invalid([&] { (void)bitlinear::HfCheckpoint::open(dir.str()); }, "is not a plain file name");
    fs::remove(dir.path / "model.safetensors.index.json");
    write_file(dir.path / "model.safetensors", std::string("\x02\0\0\0\0\0\0\0{}x", 11));
    expect_invalid([&] { (void)bitlinear::HfCheckpoint::open(dir.str()); }, "1 bytes after the last tensor");
    // A broken shard is named in the error, mapped or read.
    const TempDir sharded;
    write_sharded(sharded, config_json(bitlinear_offline), tensors, 2);
    write_file(sharded.path / "model-00002-of-00002.safetensors", std::string("\x02\0\0\0\0\0\0\0{}x", 11));
    expect_invalid([&] { (void)bitlinear::HfCheckpoint::open(sharded.str()); }, "model-00002-of-00002.safetensors");
    expect_invalid([&] { (void)bitlinear::HfCheckpoint::open(sharded.str(), bitlinear::FileAccess::read); },
                   "model-00002-of-00002.safetensors");
  }
  {  // model.safetensors beside an index: transformers takes model.safetensors, and so does HfCheckpoint
    const TinyModel want(2, 5), other(2, 99);
    const TempDir dir;
    write_sharded(dir, config_json(bitlinear_offline), other.packed_tensors(true), 2);
    write_file(dir.path / "model.safetensors", safetensors_bytes(want.packed_tensors(true)));
    const auto c = bitlinear::HfCheckpoint::open(dir.str());
    ASSERT_EQ(c.shard_names().size(), 1u);
    EXPECT_EQ(c.shard_names()[0], "model.safetensors");
    expect_model_matches(bitlinear::load_bitnet_layers(c), want);
  }
}

}  // namespace
