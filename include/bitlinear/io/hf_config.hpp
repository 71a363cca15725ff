// bitlinear: the two JSON files of a Hugging Face checkpoint directory that say how to load it:
//   config.json                     the model's shape and its `quantization_config` (parse_hf_config)
//   model.safetensors.index.json    for sharded checkpoints: which shard holds each tensor (parse_hf_index)
// and the rule that turns a BitNet quantization_config into a weight format (hf_weight_format). Both files are
// untrusted input: every rule below is a std::invalid_argument naming the field and the rule.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "../config.hpp"
#include "../detail/quoted.hpp"
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

// The fields of config.json a BitNet loader needs (0 / empty where absent). Nothing else of the document is kept.
struct HfModelConfig {
  std::string model_type;
  std::vector<std::string> architectures;
  std::uint64_t hidden_size = 0, intermediate_size = 0, num_hidden_layers = 0, num_attention_heads = 0,
                num_key_value_heads = 0, vocab_size = 0, max_position_embeddings = 0;
  double rms_norm_eps = 0.0, rope_theta = 0.0;
  std::string hidden_act;
  bool tie_word_embeddings = false;
  HfQuantizationConfig quantization;
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


inline void read_string_field(const JsonDocument& doc, JsonRef v, const char* key, std::string& out,
                              const std::string& file, const std::string& where) {
  if (!v) return;
  if (!doc.is_string(v)) throw_bad_config(file, where + key + " must be a string");
  doc.string(v, out);
}
inline void read_uint_field(const JsonDocument& doc, JsonRef v, const char* key, std::uint64_t& out,
                            const std::string& file) {
  if (v && !doc.as_uint64(v, out)) {
    throw_bad_config(file, std::string(key) + " must be a non-negative integer, not " +
                               (doc.is_number(v) ? std::string(doc.number_text(v)) : "a non-number"));
  }
}
inline void read_double_field(const JsonDocument& doc, JsonRef v, const char* key, double& out, const std::string& file) {
  if (v && !doc.as_double(v, out)) throw_bad_config(file, std::string(key) + " must be a finite number");
}
inline void read_bool_field(const JsonDocument& doc, JsonRef v, const char* key, bool& out, const std::string& file,
                            const std::string& where) {
  if (!v) return;
  if (!doc.is_bool(v)) throw_bad_config(file, where + key + " must be true or false");
  out = doc.boolean(v);
}
// An array of strings (or, with null_ok, null: nothing) into `out`.
inline void read_string_array(const JsonDocument& doc, JsonRef v, std::vector<std::string>& out, const std::string& file,
                              const std::string& not_array, const std::string& not_string) {
  if (!doc.is_array(v)) throw_bad_config(file, not_array);
  doc.for_each_element(v, [&](JsonRef e) {
    if (!doc.is_string(e)) throw_bad_config(file, not_string);
    out.push_back(doc.string(e));
  });
}

}  // namespace detail

// Parses config.json. Throws std::invalid_argument if it is not a JSON object or a known field has the wrong
// type (unknown fields are validated as JSON and otherwise ignored). Only the fields above are kept: the parse
// needs the document's bytes and a few bytes per open object member, and nothing of it outlives the call.
inline HfModelConfig parse_hf_config(std::string_view text) {
  const std::string file = "config.json";
  HfModelConfig c;
  const detail::JsonDocument doc(text, file);
  if (!doc.is_object(doc.root())) detail::throw_bad_config(file, "the document must be a JSON object");
  enum Field {
    model_type, hidden_act, architectures, hidden_size, intermediate_size, num_hidden_layers, num_attention_heads,
    num_key_value_heads, vocab_size, max_position_embeddings, rms_norm_eps, rope_theta, tie_word_embeddings,
    quantization_config, field_count
  };
  static constexpr std::string_view names[field_count] = {
      "model_type", "hidden_act", "architectures", "hidden_size", "intermediate_size", "num_hidden_layers",
      "num_attention_heads", "num_key_value_heads", "vocab_size", "max_position_embeddings", "rms_norm_eps",
      "rope_theta", "tie_word_embeddings", "quantization_config"};
  detail::JsonRef f[field_count];
  doc.find_members(doc.root(), names, field_count, f);
  detail::read_string_field(doc, f[model_type], "model_type", c.model_type, file, "");
  detail::read_string_field(doc, f[hidden_act], "hidden_act", c.hidden_act, file, "");
  if (f[architectures]) {
    detail::read_string_array(doc, f[architectures], c.architectures, file, "architectures must be an array of strings",
                              "architectures must be an array of strings");
  }
  detail::read_uint_field(doc, f[hidden_size], "hidden_size", c.hidden_size, file);
  detail::read_uint_field(doc, f[intermediate_size], "intermediate_size", c.intermediate_size, file);
  detail::read_uint_field(doc, f[num_hidden_layers], "num_hidden_layers", c.num_hidden_layers, file);
  detail::read_uint_field(doc, f[num_attention_heads], "num_attention_heads", c.num_attention_heads, file);
  detail::read_uint_field(doc, f[num_key_value_heads], "num_key_value_heads", c.num_key_value_heads, file);
  detail::read_uint_field(doc, f[vocab_size], "vocab_size", c.vocab_size, file);
  detail::read_uint_field(doc, f[max_position_embeddings], "max_position_embeddings", c.max_position_embeddings, file);
  detail::read_double_field(doc, f[rms_norm_eps], "rms_norm_eps", c.rms_norm_eps, file);
  detail::read_double_field(doc, f[rope_theta], "rope_theta", c.rope_theta, file);
  detail::read_bool_field(doc, f[tie_word_embeddings], "tie_word_embeddings", c.tie_word_embeddings, file, "");
  const detail::JsonRef q = f[quantization_config];
  if (q && !doc.is_null(q)) {
    if (!doc.is_object(q)) detail::throw_bad_config(file, "quantization_config must be an object");
    HfQuantizationConfig& qc = c.quantization;
    qc.present = true;
    const std::string where = "quantization_config.";
    enum QField { quant_method, linear_class, quantization_mode, use_rms_norm, modules_to_not_convert, qfield_count };
    static constexpr std::string_view qnames[qfield_count] = {"quant_method", "linear_class", "quantization_mode",
                                                              "use_rms_norm", "modules_to_not_convert"};
    detail::JsonRef g[qfield_count];
    doc.find_members(q, qnames, qfield_count, g);
    detail::read_string_field(doc, g[quant_method], "quant_method", qc.quant_method, file, where);
    detail::read_string_field(doc, g[linear_class], "linear_class", qc.linear_class, file, where);
    detail::read_string_field(doc, g[quantization_mode], "quantization_mode", qc.quantization_mode, file, where);
    detail::read_bool_field(doc, g[use_rms_norm], "use_rms_norm", qc.use_rms_norm, file, where);
    if (const detail::JsonRef m = g[modules_to_not_convert]; m && !doc.is_null(m)) {
      detail::read_string_array(doc, m, qc.modules_to_not_convert, file,
                                where + "modules_to_not_convert must be an array of strings or null",
                                where + "modules_to_not_convert must hold strings");
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
// modules_to_not_convert, by the rule transformers applies (should_convert_module), with the entries taken
// literally: an entry excludes the modules whose path starts with it ("model.layers.1" excludes
// "model.layers.1.mlp.up_proj", and also "model.layers.10.mlp.up_proj", as re.match does) or ends with it
// ("o_proj" excludes every o_proj). An entry in the middle of a path ("layers.1") excludes nothing. One query is
// linear in the entries; load_bitnet_layers indexes them once (detail::ModuleExclusions).
inline bool hf_module_not_converted(const HfQuantizationConfig& q, std::string_view module) {
  for (const std::string& m : q.modules_to_not_convert) {
    if (m.size() <= module.size() &&
        (module.compare(0, m.size(), m) == 0 || module.compare(module.size() - m.size(), m.size(), m) == 0)) {
      return true;
    }
  }
  return false;
}

namespace detail {

// A set of strings that answers "is one of them a prefix of s?" in O(|s| log n), whatever the strings are.
// The strings sorted; for each, the length of the shortest string of the set that is a prefix of it. Every string
// p of the set that is a prefix of s lies between p and s in sorted order, so it is a prefix of e, the greatest
// string <= s, and no longer than the common prefix of e and s; conversely any prefix of e no longer than that
// common prefix is a prefix of s. So: one is a prefix of s iff shortest[e] <= lcp(e, s).
class PrefixSet {
 public:
  explicit PrefixSet(std::vector<std::string> strings) : strings_(std::move(strings)) {
    std::sort(strings_.begin(), strings_.end());
    shortest_.resize(strings_.size());
    // The strings before i that are prefixes of strings_[i] form a chain, each a prefix of the next; a stack holds
    // the chain of the previous string, popped down to the part that is a prefix of this one. Each string is
    // pushed and popped once, and each comparison costs at most the popped or the pushed string's length.
    std::vector<std::size_t> chain;
    for (std::size_t i = 0; i < strings_.size(); ++i) {
      while (!chain.empty() && !starts_with(strings_[i], strings_[chain.back()])) chain.pop_back();
      shortest_[i] = chain.empty() ? strings_[i].size() : shortest_[chain.back()];
      chain.push_back(i);
    }
  }
  bool has_prefix_of(std::string_view s) const {
    auto e = std::upper_bound(strings_.begin(), strings_.end(), s,
                              [](std::string_view a, const std::string& b) { return a < std::string_view(b); });
    if (e == strings_.begin()) return false;
    --e;
    const std::string_view g(*e);
    std::size_t common = 0;
    while (common < g.size() && common < s.size() && g[common] == s[common]) ++common;
    return shortest_[static_cast<std::size_t>(e - strings_.begin())] <= common;
  }

 private:
  static bool starts_with(std::string_view s, std::string_view prefix) {
    return prefix.size() <= s.size() && s.compare(0, prefix.size(), prefix) == 0;
  }
  std::vector<std::string> strings_;     // sorted
  std::vector<std::size_t> shortest_;    // shortest_[i]: length of the shortest string that is a prefix of strings_[i]
};

// modules_to_not_convert indexed for many queries: the entries as a PrefixSet, and reversed as another (a suffix
// of the module is a prefix of the module reversed). A query costs O(|module| log entries), whatever the entries
// (a hash set per distinct entry length cost |module| per length: quadratic for entries of many lengths).
class ModuleExclusions {
 public:
  explicit ModuleExclusions(const std::vector<std::string>& entries)
      : prefixes_(entries), suffixes_(reversed_all(entries)) {}
  // hf_module_not_converted, indexed.
  bool excludes(std::string_view module) const {
    return prefixes_.has_prefix_of(module) || suffixes_.has_prefix_of(std::string(module.rbegin(), module.rend()));
  }

 private:
  static std::vector<std::string> reversed_all(const std::vector<std::string>& entries) {
    std::vector<std::string> r;
    r.reserve(entries.size());
    for (const std::string& e : entries) r.emplace_back(e.rbegin(), e.rend());
    return r;
  }
  PrefixSet prefixes_;
  PrefixSet suffixes_;
};

}  // namespace detail

// model.safetensors.index.json: "weight_map" maps each tensor name to the file name of its shard. Returns the
// (tensor, shard) pairs sorted by tensor name. Throws std::invalid_argument if weight_map is missing or not an
// object of strings, if a tensor appears twice, or if a shard name is not a plain file name in the checkpoint
// directory (empty, ".", "..", or containing '/', '\\', ':' or a NUL byte).
inline std::vector<std::pair<std::string, std::string>> parse_hf_index(std::string_view text) {
  const std::string file = "model.safetensors.index.json";
  const detail::JsonDocument doc(text, file);
  if (!doc.is_object(doc.root())) detail::throw_bad_config(file, "the document must be a JSON object");
  const detail::JsonRef map = doc.get(doc.root(), "weight_map");
  if (!map || !doc.is_object(map)) detail::throw_bad_config(file, "needs a \"weight_map\" object");
  std::size_t count = 0;
  doc.for_each_member(map, [&](const std::string&, detail::JsonRef) { ++count; });
  std::vector<std::pair<std::string, std::string>> entries;
  entries.reserve(count);  // exactly: no growth slack on a large map
  std::string shard;
  doc.for_each_member(map, [&](const std::string& tensor, detail::JsonRef value) {
    if (!doc.is_string(value)) {
      detail::throw_bad_config(file, "weight_map value of " + detail::quoted(tensor) + " must be a file name string");
    }
    doc.string(value, shard);
    const bool plain = !shard.empty() && shard != "." && shard != ".." &&
                       shard.find_first_of(std::string("/\\:\0", 4)) == std::string::npos;
    if (!plain) {
      detail::throw_bad_config(file, "shard " + detail::quoted(shard) + " of tensor " + detail::quoted(tensor) +
                                         " is not a plain file name in the checkpoint directory");
    }
    entries.emplace_back(tensor, shard);
  });
  std::sort(entries.begin(), entries.end());  // keys are unique (the document was validated)
  return entries;
}

BITLINEAR_NAMESPACE_END
