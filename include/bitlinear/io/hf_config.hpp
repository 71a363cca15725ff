// bitlinear: the two JSON files of a Hugging Face checkpoint directory that say how to load it:
//   config.json                     the model's shape and its `quantization_config` (parse_hf_config)
//   model.safetensors.index.json    for sharded checkpoints: which shard holds each tensor (parse_hf_index)
// and the rule that turns a BitNet quantization_config into a weight format (hf_weight_format). Both files are
// untrusted input: every rule below is a std::invalid_argument naming the field and the rule.
#pragma once

#ifndef BITLINEAR_INTERNAL_INCLUDE
#define BITLINEAR_INTERNAL_INCLUDE
#endif

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "../config.hpp"
#include "../error.hpp"
#include "json.hpp"

BITLINEAR_NAMESPACE_BEGIN

// transformers' BitNetQuantConfig, as stored under "quantization_config" in config.json. Absent keys keep the
// defaults of BitNetQuantConfig.
struct HfQuantizationConfig {
  bool present = false;  // config.json has a quantization_config object
  std::string quant_method;
  std::string linear_class = "bitlinear";
  std::string quantization_mode = "offline";
  bool use_rms_norm = false;
  std::vector<std::string> modules_to_not_convert;  // null in the file: empty
};

// The fields of config.json a BitNet loader needs (0 / empty where absent); `json` keeps the whole document.
struct HfModelConfig {
  std::string model_type;
  std::vector<std::string> architectures;
  std::uint64_t hidden_size = 0, intermediate_size = 0, num_hidden_layers = 0, num_attention_heads = 0,
                num_key_value_heads = 0, vocab_size = 0, max_position_embeddings = 0;
  double rms_norm_eps = 0.0, rope_theta = 0.0;
  std::string hidden_act;
  bool tie_word_embeddings = false;
  HfQuantizationConfig quantization;
  detail::JsonValue json;
};

// How the BitLinear weights of a checkpoint are stored, and which scale convention they follow.
enum class HfWeightFormat {
  packed_divide,    // uint8 [out/4, in] + weight_scale = 1/beta (transformers BitLinear)
  packed_multiply,  // uint8 [out/4, in] + weight_scale = beta (transformers AutoBitLinear, offline)
  float_online,     // float weights quantized at load time (transformers AutoBitLinear, online)
};

namespace detail {

[[noreturn]] inline void throw_bad_config(const std::string& file, const std::string& message) {
  detail::fail_invalid_argument("bitlinear: " + file + ": " + message);
}

// A name for an error message: quoted, at most 80 bytes, control characters (even NUL) escaped as \xNN.
inline std::string quoted(const std::string& s) {
  std::string out = "\"";
  for (std::size_t i = 0; i < s.size() && i < 80; ++i) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c < 0x20 || c == 0x7F) {
      const char hex[] = "0123456789abcdef";
      out += "\\x";
      out += hex[c >> 4];
      out += hex[c & 15];
    } else {
      out += s[i];
    }
  }
  return out + (s.size() > 80 ? "...\"" : "\"");
}

inline void read_string_field(const JsonValue& obj, const char* key, std::string& out, const std::string& file,
                              const std::string& where) {
  if (const JsonValue* v = obj.get(key)) {
    if (!v->is_string()) throw_bad_config(file, where + key + " must be a string");
    out = v->text;
  }
}
inline void read_uint_field(const JsonValue& obj, const char* key, std::uint64_t& out, const std::string& file) {
  if (const JsonValue* v = obj.get(key)) {
    if (!v->as_uint64(out)) throw_bad_config(file, std::string(key) + " must be a non-negative integer, not " + (v->is_number() ? v->text : "a non-number"));
  }
}
inline void read_double_field(const JsonValue& obj, const char* key, double& out, const std::string& file) {
  if (const JsonValue* v = obj.get(key)) {
    if (!v->as_double(out)) throw_bad_config(file, std::string(key) + " must be a finite number");
  }
}
inline void read_bool_field(const JsonValue& obj, const char* key, bool& out, const std::string& file,
                            const std::string& where) {
  if (const JsonValue* v = obj.get(key)) {
    if (!v->is_bool()) throw_bad_config(file, where + key + " must be true or false");
    out = v->boolean;
  }
}

}  // namespace detail

// Parses config.json. Throws std::invalid_argument if it is not a JSON object or a known field has the wrong
// type (unknown fields are kept in `json` and otherwise ignored).
inline HfModelConfig parse_hf_config(std::string_view text) {
  const std::string file = "config.json";
  HfModelConfig c;
  c.json = detail::JsonParser::parse(text, file);
  const detail::JsonValue& j = c.json;
  if (!j.is_object()) detail::throw_bad_config(file, "the document must be a JSON object");
  detail::read_string_field(j, "model_type", c.model_type, file, "");
  detail::read_string_field(j, "hidden_act", c.hidden_act, file, "");
  if (const detail::JsonValue* a = j.get("architectures")) {
    if (!a->is_array()) detail::throw_bad_config(file, "architectures must be an array of strings");
    for (const detail::JsonValue& e : a->array) {
      if (!e.is_string()) detail::throw_bad_config(file, "architectures must be an array of strings");
      c.architectures.push_back(e.text);
    }
  }
  detail::read_uint_field(j, "hidden_size", c.hidden_size, file);
  detail::read_uint_field(j, "intermediate_size", c.intermediate_size, file);
  detail::read_uint_field(j, "num_hidden_layers", c.num_hidden_layers, file);
  detail::read_uint_field(j, "num_attention_heads", c.num_attention_heads, file);
  detail::read_uint_field(j, "num_key_value_heads", c.num_key_value_heads, file);
  detail::read_uint_field(j, "vocab_size", c.vocab_size, file);
  detail::read_uint_field(j, "max_position_embeddings", c.max_position_embeddings, file);
  detail::read_double_field(j, "rms_norm_eps", c.rms_norm_eps, file);
  detail::read_double_field(j, "rope_theta", c.rope_theta, file);
  detail::read_bool_field(j, "tie_word_embeddings", c.tie_word_embeddings, file, "");
  const detail::JsonValue* q = j.get("quantization_config");
  if (q != nullptr && !q->is_null()) {
    if (!q->is_object()) detail::throw_bad_config(file, "quantization_config must be an object");
    HfQuantizationConfig& qc = c.quantization;
    qc.present = true;
    const std::string where = "quantization_config.";
    detail::read_string_field(*q, "quant_method", qc.quant_method, file, where);
    detail::read_string_field(*q, "linear_class", qc.linear_class, file, where);
    detail::read_string_field(*q, "quantization_mode", qc.quantization_mode, file, where);
    detail::read_bool_field(*q, "use_rms_norm", qc.use_rms_norm, file, where);
    if (const detail::JsonValue* m = q->get("modules_to_not_convert"); m != nullptr && !m->is_null()) {
      if (!m->is_array()) detail::throw_bad_config(file, where + "modules_to_not_convert must be an array of strings or null");
      for (const detail::JsonValue& e : m->array) {
        if (!e.is_string()) detail::throw_bad_config(file, where + "modules_to_not_convert must hold strings");
        qc.modules_to_not_convert.push_back(e.text);
      }
    }
  }
  return c;
}

// The weight format a BitNet quantization_config describes, following transformers: linear_class "bitlinear"
// (the default) always reads packed weights and divides by weight_scale, whatever quantization_mode says;
// "autobitlinear" multiplies packed weights ("offline") or quantizes float weights at load ("online").
// Refused, with the reason: no quantization_config (a float model), another quant_method, an unknown
// linear_class or quantization_mode, and use_rms_norm = true (the layer would normalize its input first, which a
// BitLinear here does not do).
inline HfWeightFormat hf_weight_format(const HfQuantizationConfig& q) {
  const std::string file = "config.json";
  if (!q.present) {
    detail::throw_bad_config(file, "no quantization_config: this is not a BitNet-quantized checkpoint (its linear "
                                   "layers are plain float); quantize them yourself with TernaryLinear::from_float");
  }
  if (q.quant_method != "bitnet") {
    detail::throw_bad_config(file, "quantization_config.quant_method is " + detail::quoted(q.quant_method) +
                                       "; only \"bitnet\" checkpoints can be loaded");
  }
  if (q.quantization_mode != "offline" && q.quantization_mode != "online") {
    detail::throw_bad_config(file, "quantization_config.quantization_mode is " + detail::quoted(q.quantization_mode) +
                                       "; it must be \"offline\" or \"online\"");
  }
  if (q.use_rms_norm) {
    detail::throw_bad_config(file, "quantization_config.use_rms_norm is true: the layers normalize their input "
                                   "before quantizing it, which bitlinear's layers do not do");
  }
  if (q.linear_class == "bitlinear") return HfWeightFormat::packed_divide;
  if (q.linear_class == "autobitlinear") {
    return q.quantization_mode == "offline" ? HfWeightFormat::packed_multiply : HfWeightFormat::float_online;
  }
  detail::throw_bad_config(file, "quantization_config.linear_class is " + detail::quoted(q.linear_class) +
                                     "; known classes are \"bitlinear\" (weight_scale divides) and \"autobitlinear\" "
                                     "(weight_scale multiplies, or online quantization)");
}

// True if `module` (a dotted module path such as "model.layers.0.mlp.up_proj") is excluded by
// modules_to_not_convert: transformers skips a module when one of the entries is a substring of its path.
inline bool hf_module_not_converted(const HfQuantizationConfig& q, std::string_view module) {
  for (const std::string& m : q.modules_to_not_convert) {
    if (module.find(m) != std::string_view::npos) return true;
  }
  return false;
}

// model.safetensors.index.json: "weight_map" maps each tensor name to the file name of its shard. Returns the
// (tensor, shard) pairs sorted by tensor name. Throws std::invalid_argument if weight_map is missing or not an
// object of strings, if a tensor appears twice, or if a shard name is not a plain file name in the checkpoint
// directory (empty, ".", "..", or containing '/', '\\', ':' or a NUL byte).
inline std::vector<std::pair<std::string, std::string>> parse_hf_index(std::string_view text) {
  const std::string file = "model.safetensors.index.json";
  const detail::JsonValue j = detail::JsonParser::parse(text, file);
  if (!j.is_object()) detail::throw_bad_config(file, "the document must be a JSON object");
  const detail::JsonValue* map = j.get("weight_map");
  if (map == nullptr || !map->is_object()) detail::throw_bad_config(file, "needs a \"weight_map\" object");
  std::vector<std::pair<std::string, std::string>> entries;
  entries.reserve(map->object.size());
  for (const auto& kv : map->object) {
    if (!kv.second.is_string()) {
      detail::throw_bad_config(file, "weight_map value of " + detail::quoted(kv.first) + " must be a file name string");
    }
    const std::string& shard = kv.second.text;
    const bool plain = !shard.empty() && shard != "." && shard != ".." &&
                       shard.find_first_of(std::string("/\\:\0", 4)) == std::string::npos;
    if (!plain) {
      detail::throw_bad_config(file, "shard " + detail::quoted(shard) + " of tensor " + detail::quoted(kv.first) +
                                         " is not a plain file name in the checkpoint directory");
    }
    entries.emplace_back(kv.first, shard);
  }
  std::sort(entries.begin(), entries.end());  // keys are unique (the JSON parser rejects duplicates)
  return entries;
}

BITLINEAR_NAMESPACE_END
