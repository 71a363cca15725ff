// bitlinear: PrismML's `prism.hadamard.*` GGUF metadata (Ternary-Bonsai-2 files), read and checked.
//
// Such a file's listed weights were multiplied offline by a signed blockwise Walsh-Hadamard rotation, so a layer
// computes the original function only if its input x is rotated first: x' = H_B(s (.) x), s a +-1 vector of the
// input's width and H_B the normalized (1 / sqrt(B)) Sylvester Walsh-Hadamard transform over each block of B
// values. That order (signs, then the transform) and the key names are those of PrismML's contract as its pull
// requests describe it (PrismML-Eng/llama.cpp #120, #121: "x' = H (s * x)") and as readers built on the fork
// consume it; the fork's own loader source could not be read here, so the loader does not apply the rotation. The
// caller does, with ActivationFrontend (frontend.hpp: hadamard_block = block_size, hadamard_signs =
// signs_for(in_features)), on the inputs of the layers named in weight_names.
//
// Keys (all under prism.hadamard.):
//   version               integer, must be 1
//   block_size            integer, a power of two >= 2
//   transform             string, must be "normalized-sylvester-walsh-hadamard"
//   axis                  string, must be "input-last-dimension"
//   sign_mode             string, "identity" (all signs +1) or "explicit"
//   sign_widths           explicit only: array of integers, distinct positive multiples of block_size
//   sign_values           explicit only: array of integers, each +1 or -1, the vectors of sign_widths concatenated
//   weight_names          array of strings, distinct, each a tensor of the file whose ne[0] is a multiple of
//                         block_size (and, explicit, one of sign_widths)
//   inverse_weight_names  optional array of strings (embedding tables stored rotated: the caller rotates the
//                         looked-up rows back, h = s (.) H_B z), each a tensor of the file
//   gdn_v_grouped         optional bool (linear-attention value heads kept in grouped order)
// A file with no key under prism.hadamard. has none (present == false); one with any such key must carry a
// valid contract, or gguf_prism_hadamard throws std::invalid_argument naming the key and the rule.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "../config.hpp"
#include "../error.hpp"
#include "gguf.hpp"

BITLINEAR_NAMESPACE_BEGIN

struct GgufPrismHadamard {
  bool present = false;           // any prism.hadamard.* key in the file
  std::uint64_t version = 0;
  std::uint64_t block_size = 0;   // B
  bool explicit_signs = false;    // sign_mode "explicit" (false: "identity", every sign +1)
  struct Signs {
    std::uint64_t width = 0;      // the input width these signs belong to
    std::vector<float> values;    // width values, each +1.0f or -1.0f
  };
  std::vector<Signs> signs;       // in the file's order (explicit mode; empty in identity mode)
  std::vector<std::string> weight_names;          // weights whose input is rotated
  std::vector<std::string> inverse_weight_names;  // tables stored rotated (rows rotated back after lookup)
  bool gdn_v_grouped = false;

  // The signs for an input of `width` values (ActivationFrontendOptions::hadamard_signs), or nullptr: none in
  // identity mode (use a vector of +1), or no vector of that width.
  const std::vector<float>* signs_for(std::uint64_t width) const noexcept {
    for (const Signs& s : signs) {
      if (s.width == width) return &s.values;
    }
    return nullptr;
  }
  // Whether the weight named (GGUF name) has a rotated input.
  bool rotates(std::string_view gguf_name) const noexcept {
    for (const std::string& n : weight_names) {
      if (n == gguf_name) return true;
    }
    return false;
  }
};

namespace detail {

[[noreturn]] inline void bad_prism_hadamard(const std::string& message) {
  detail::fail_invalid_argument("bitlinear: gguf: prism.hadamard: " + message);
}

// `key` without the prism.hadamard. prefix (messages name it so, after their own prefix).
inline std::vector<std::string> prism_hadamard_names(const GgufView& file, const std::string& key) {
  const GgufArray a = file.get_array("prism.hadamard." + key);
  if (a.element_type() != GgufValueType::string) {
    bad_prism_hadamard(key + " is an array of " + detail::gguf_value_type_name(a.element_type()) +
                       "; it must be an array of strings (tensor names)");
  }
  std::vector<std::string> names;
  names.reserve(static_cast<std::size_t>(a.size()));
  for (const GgufValue& v : a.elements()) {
    names.emplace_back(*v.as_string());
    if (file.find(names.back()) == nullptr) {
      bad_prism_hadamard(key + " lists " + GgufParser::quoted(names.back()) + ", which is not a tensor of the file");
    }
  }
  std::vector<std::string_view> sorted(names.begin(), names.end());  // duplicates by sorting: O(n log n)
  std::sort(sorted.begin(), sorted.end());
  const auto twice = std::adjacent_find(sorted.begin(), sorted.end());
  if (twice != sorted.end()) bad_prism_hadamard(key + " lists " + GgufParser::quoted(*twice) + " twice");
  return names;
}

inline std::vector<std::int64_t> prism_hadamard_integers(const GgufView& file, const std::string& key) {
  const GgufArray a = file.get_array("prism.hadamard." + key);
  std::vector<std::int64_t> out;
  out.reserve(static_cast<std::size_t>(a.size()));
  for (std::uint64_t i = 0; i < a.size(); ++i) {
    const auto v = detail::gguf_fixed_size(a.element_type()) != 0 ? a[i].as_int() : std::nullopt;
    if (!v) {
      bad_prism_hadamard(key + " is an array of " + detail::gguf_value_type_name(a.element_type()) +
                         "; it must be an array of integers fitting 64 bits (element " + std::to_string(i) + ")");
    }
    out.push_back(*v);
  }
  return out;
}

}  // namespace detail

// Reads and checks the prism.hadamard.* metadata of a file (see the header comment for the keys and rules). The
// sign pairing and the names' tensors are checked; the rotation is not applied to anything.
inline GgufPrismHadamard gguf_prism_hadamard(const GgufView& file) {
  GgufPrismHadamard h;
  const std::string p = "prism.hadamard.";
  for (const GgufKeyValue& kv : file.metadata()) {
    if (kv.key.substr(0, p.size()) == p) h.present = true;
  }
  if (!h.present) return h;
  if (file.find_value(p + "version") == nullptr) {
    detail::bad_prism_hadamard("the file has prism.hadamard.* keys but no prism.hadamard.version");
  }
  h.version = file.get_uint(p + "version");
  if (h.version != 1) {
    detail::bad_prism_hadamard("version " + std::to_string(h.version) + " is not supported (version 1 is)");
  }
  h.block_size = file.get_uint(p + "block_size");
  if (h.block_size < 2 || (h.block_size & (h.block_size - 1)) != 0 || h.block_size > (std::uint64_t{1} << 30)) {
    detail::bad_prism_hadamard("block_size " + std::to_string(h.block_size) +
                               " must be a power of two between 2 and 2^30");
  }
  const std::string_view transform = file.get_string(p + "transform");
  if (transform != "normalized-sylvester-walsh-hadamard") {
    detail::bad_prism_hadamard("transform " + GgufParser::quoted(transform) +
                               " is not supported (\"normalized-sylvester-walsh-hadamard\" is)");
  }
  const std::string_view axis = file.get_string(p + "axis");
  if (axis != "input-last-dimension") {
    detail::bad_prism_hadamard("axis " + GgufParser::quoted(axis) + " is not supported (\"input-last-dimension\" is)");
  }
  const std::string_view mode = file.get_string(p + "sign_mode");
  if (mode != "identity" && mode != "explicit") {
    detail::bad_prism_hadamard("sign_mode " + GgufParser::quoted(mode) + " is not supported (\"identity\" or \"explicit\")");
  }
  h.explicit_signs = mode == "explicit";
  if (h.explicit_signs) {
    const std::vector<std::int64_t> widths = detail::prism_hadamard_integers(file, "sign_widths");
    const std::vector<std::int64_t> values = detail::prism_hadamard_integers(file, "sign_values");
    if (widths.empty()) detail::bad_prism_hadamard("sign_mode is explicit but sign_widths is empty");
    std::uint64_t used = 0;
    for (std::int64_t w : widths) {
      if (w <= 0 || static_cast<std::uint64_t>(w) % h.block_size != 0) {
        detail::bad_prism_hadamard("sign width " + std::to_string(w) + " is not a positive multiple of block_size " +
                                   std::to_string(h.block_size));
      }
      const auto width = static_cast<std::uint64_t>(w);
      if (width > values.size() - used) {
        detail::bad_prism_hadamard("sign_values has " + std::to_string(values.size()) + " values; sign_widths need " +
                                   "more (at least " + std::to_string(used + width) + ")");
      }
      GgufPrismHadamard::Signs s;
      s.width = width;
      s.values.reserve(static_cast<std::size_t>(width));
      for (std::uint64_t i = 0; i < width; ++i) {
        const std::int64_t v = values[static_cast<std::size_t>(used + i)];
        if (v != 1 && v != -1) {
          detail::bad_prism_hadamard("sign_values[" + std::to_string(used + i) + "] = " + std::to_string(v) +
                                     "; every sign is +1 or -1");
        }
        s.values.push_back(static_cast<float>(v));
      }
      used += width;
      h.signs.push_back(std::move(s));
    }
    if (used != values.size()) {
      detail::bad_prism_hadamard("sign_values has " + std::to_string(values.size()) + " values, but sign_widths add up to " +
                                 std::to_string(used));
    }
  }
  // The widths, sorted: duplicates, and the weights' lookups below, in O(n log n).
  std::vector<std::uint64_t> widths;
  for (const GgufPrismHadamard::Signs& s : h.signs) widths.push_back(s.width);
  std::sort(widths.begin(), widths.end());
  const auto twice = std::adjacent_find(widths.begin(), widths.end());
  if (twice != widths.end()) detail::bad_prism_hadamard("sign width " + std::to_string(*twice) + " appears twice");
  h.weight_names = detail::prism_hadamard_names(file, "weight_names");
  for (const std::string& name : h.weight_names) {
    const std::uint64_t in = file.at(name).ne[0];
    if (in % h.block_size != 0) {
      detail::bad_prism_hadamard("weight " + GgufParser::quoted(name) + " has in_features " + std::to_string(in) +
                                 ", not a multiple of block_size " + std::to_string(h.block_size));
    }
    if (h.explicit_signs && !std::binary_search(widths.begin(), widths.end(), in)) {
      detail::bad_prism_hadamard("weight " + GgufParser::quoted(name) + " has in_features " + std::to_string(in) +
                                 ", and sign_widths has no vector of that width");
    }
  }
  if (file.find_value(p + "inverse_weight_names") != nullptr) {
    h.inverse_weight_names = detail::prism_hadamard_names(file, "inverse_weight_names");
  }
  if (file.find_value(p + "gdn_v_grouped") != nullptr) h.gdn_v_grouped = file.get_bool(p + "gdn_v_grouped");
  return h;
}

BITLINEAR_NAMESPACE_END
