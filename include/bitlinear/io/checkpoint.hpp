// bitlinear: whole Hugging Face BitNet checkpoints: a directory with config.json and either model.safetensors or
// model.safetensors.index.json plus its shards.
//
//   auto checkpoint = bitlinear::HfCheckpoint::open("bitnet-b1.58-2B-4T");       // maps every shard, O(headers)
//   auto model = bitlinear::load_bitnet_layers(checkpoint);                       // every BitLinear layer
//   const bitlinear::TernaryLinear& q = model.layer("model.layers.0.self_attn.q_proj");
//   const bitlinear::SafetensorsTensor& norm = model.tensor("model.norm.weight");  // a view into the mapping
//
// The scale convention comes from config.json's quantization_config (hf_config.hpp: hf_weight_format), the
// layers from the tensor names (a module P is a packed BitLinear layer when P.weight_scale exists), and every
// other tensor is handed back as a view. Views point into the checkpoint's mappings: keep the HfCheckpoint
// alive while they are used. The layers own their weights and do not need it.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <fstream>
#include <functional>
#include <limits>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "../config.hpp"
#include "../error.hpp"
#include "hf_config.hpp"
#include "hf_import.hpp"
#include "../layer.hpp"
#include "mapped_file.hpp"
#include "safetensors.hpp"

BITLINEAR_NAMESPACE_BEGIN

namespace detail {

// Orders names with their digit runs compared as numbers: "layers.2." before "layers.10.".
inline bool natural_less(std::string_view a, std::string_view b) noexcept {
  std::size_t i = 0, j = 0;
  auto digit = [](char c) { return c >= '0' && c <= '9'; };
  while (i < a.size() && j < b.size()) {
    if (digit(a[i]) && digit(b[j])) {
      std::size_t ie = i, je = j;
      while (ie < a.size() && a[ie] == '0') ++ie;  // skip leading zeros, then compare by length, then digits
      while (je < b.size() && b[je] == '0') ++je;
      std::size_t ae = ie, be = je;
      while (ae < a.size() && digit(a[ae])) ++ae;
      while (be < b.size() && digit(b[be])) ++be;
      if (ae - ie != be - je) return ae - ie < be - je;
      const int c = a.substr(ie, ae - ie).compare(b.substr(je, be - je));
      if (c != 0) return c < 0;
      if (ae - i != be - j) return ae - i < be - j;  // fewer leading zeros first, for a strict order
      i = ae, j = be;
    } else {
      if (a[i] != b[j]) return static_cast<unsigned char>(a[i]) < static_cast<unsigned char>(b[j]);
      ++i, ++j;
    }
  }
  return a.size() - i < b.size() - j;
}

// Reads a whole text file of at most `limit` bytes. Throws std::runtime_error if it cannot be read,
// std::invalid_argument if it is larger than the limit. A regular file's buffer is sized once from its size
// (no growth slack: a 16 MiB file costs 16 MiB, not the 48 MiB a doubling string peaks at).
inline std::string read_text_file(const std::string& path, std::size_t limit) {
  std::ifstream in(path, std::ios::binary);
  if (!in) detail::fail_runtime_error("bitlinear: cannot open \"" + path + "\"");
  std::string text;
  const std::optional<std::uint64_t> size = MappedFile::regular_file_size(path);
  if (size && *size <= limit) text.reserve(static_cast<std::size_t>(*size) + 1);  // +1: the read that finds the end
  char buffer[65536];
  while (in.read(buffer, sizeof buffer), in.gcount() > 0) {
    if (text.size() + static_cast<std::size_t>(in.gcount()) > limit) {
      detail::fail_invalid_argument("bitlinear: \"" + path + "\" is larger than the " + std::to_string(limit) +
                                  "-byte limit for this file");
    }
    text.append(buffer, static_cast<std::size_t>(in.gcount()));
  }
  if (in.bad()) detail::fail_runtime_error("bitlinear: read error in \"" + path + "\"");
  return text;
}

inline bool file_exists(const std::string& path) { return path_exists(path); }

inline bool ends_with(std::string_view s, std::string_view suffix) noexcept {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

inline bool is_float_dtype(const std::string& dtype) {
  return dtype == "F32" || dtype == "F16" || dtype == "BF16" || dtype == "F64";
}

}  // namespace detail

// A checkpoint directory: its config and every tensor of every shard, by name.
class HfCheckpoint {
 public:
  static constexpr std::size_t max_config_bytes = std::size_t{16} << 20;  // config.json
  static constexpr std::size_t max_index_bytes = 100'000'000;              // the index (like a safetensors header)
  // Shard files one index may name. Each mapped shard is one memory map, and a Linux process has about 65,530
  // (vm.max_map_count) for everything it does; the largest published checkpoints use a few hundred shards.
  static constexpr std::size_t max_shards = 16384;

  // Opens `directory`: config.json, then model.safetensors if present (as transformers does, even with an index
  // beside it), or else model.safetensors.index.json and every shard it names. Shards are memory-mapped
  // (FileAccess::map) or read; a shard the system will not map (out of memory maps, say) is read instead.
  // Throws std::runtime_error if a file cannot be opened, std::invalid_argument if a file is malformed, is not a
  // regular file (a FIFO, device or directory is refused up front instead of blocking; on Windows also reserved
  // device names such as NUL or COM1.json), the index names more than max_shards files, or the index and the
  // shards disagree (a tensor missing from its shard, or a shard tensor the index does not map to that shard).
  static HfCheckpoint open(const std::string& directory, FileAccess access = FileAccess::map) {
    HfCheckpoint c;
    c.directory_ = directory;
    const std::string config_path = path_in(directory, "config.json");
    detail::require_regular_file(config_path);
    c.config_ = parse_hf_config(detail::read_text_file(config_path, max_config_bytes));
    // As transformers decides: model.safetensors if it is there (an index beside it is not read), else the index.
    const std::string index_path = path_in(directory, "model.safetensors.index.json");
    if (!detail::file_exists(path_in(directory, "model.safetensors")) && detail::file_exists(index_path)) {
      detail::require_regular_file(index_path);
      const auto entries = parse_hf_index(detail::read_text_file(index_path, max_index_bytes));
      for (const auto& e : entries) c.shard_names_.push_back(e.second);
      std::sort(c.shard_names_.begin(), c.shard_names_.end());
      c.shard_names_.erase(std::unique(c.shard_names_.begin(), c.shard_names_.end()), c.shard_names_.end());
      if (c.shard_names_.size() > max_shards) {
        detail::fail_invalid_argument("bitlinear: model.safetensors.index.json names " +
                                      std::to_string(c.shard_names_.size()) + " shard files; at most " +
                                      std::to_string(max_shards) + " are accepted (HfCheckpoint::max_shards)");
      }
      for (const std::string& shard : c.shard_names_) detail::require_regular_file(path_in(directory, shard));
      for (const std::string& shard : c.shard_names_) {
        c.shards_.push_back(SafetensorsFile::open(path_in(directory, shard), access));
      }
      std::size_t shard_tensors = 0;
      for (const SafetensorsFile& s : c.shards_) shard_tensors += s.view().tensors().size();
      c.index_.reserve(entries.size());
      for (const auto& e : entries) {
        const std::size_t k = static_cast<std::size_t>(
            std::lower_bound(c.shard_names_.begin(), c.shard_names_.end(), e.second) - c.shard_names_.begin());
        const SafetensorsTensor* t = c.shards_[k].view().find(e.first);
        if (t == nullptr) {
          detail::fail_invalid_argument("bitlinear: model.safetensors.index.json maps tensor " + detail::quoted(e.first) +
                                      " to shard " + detail::quoted(e.second) + ", which has no such tensor");
        }
        c.index_.push_back(t);
      }
      if (shard_tensors != c.index_.size()) c.throw_unmapped_tensor();
    } else {
      c.shard_names_.push_back("model.safetensors");
      detail::require_regular_file(path_in(directory, "model.safetensors"));
      c.shards_.push_back(SafetensorsFile::open(path_in(directory, "model.safetensors"), access));
      for (const SafetensorsTensor& t : c.shards_[0].view().tensors()) c.index_.push_back(&t);
    }
    std::sort(c.index_.begin(), c.index_.end(),
              [](const SafetensorsTensor* a, const SafetensorsTensor* b) { return detail::natural_less(a->name, b->name); });
    return c;
  }

  const HfModelConfig& config() const noexcept { return config_; }
  const std::string& directory() const noexcept { return directory_; }
  const std::vector<std::string>& shard_names() const noexcept { return shard_names_; }
  const std::vector<SafetensorsFile>& shards() const noexcept { return shards_; }
  // Every tensor of every shard, in natural name order ("layers.2" before "layers.10").
  const std::vector<const SafetensorsTensor*>& tensors() const noexcept { return index_; }

  const SafetensorsTensor* find(std::string_view name) const noexcept {
    const auto it = std::lower_bound(index_.begin(), index_.end(), name, [](const SafetensorsTensor* t, std::string_view n) {
      return detail::natural_less(t->name, n);
    });
    return it != index_.end() && (*it)->name == name ? *it : nullptr;
  }
  const SafetensorsTensor& at(std::string_view name) const {
    const SafetensorsTensor* t = find(name);
    if (t == nullptr) detail::fail_invalid_argument("bitlinear: the checkpoint has no tensor " + detail::quoted(std::string(name)));
    return *t;
  }

  // Bytes of the mapped shards that are in the OS page cache now (MappedFile::page_cache_bytes: mincore; 0 for
  // shards that were read, or where unknown). The kernel's cache of the files, not this process's memory: pages
  // load_bitnet_layers released stay counted. A read shard's bytes are this process's heap instead.
  std::size_t page_cache_bytes() const {
    std::size_t n = 0;
    for (const SafetensorsFile& s : shards_) n += s.resident_bytes();  // SafetensorsFile's name for the same count
    return n;
  }
  [[deprecated("counts the page cache, not this process's memory: use page_cache_bytes()")]]
  std::size_t resident_bytes() const { return page_cache_bytes(); }

  // The mapped shard whose tensor data holds [data, data + size), or null (a read shard, or not in any shard).
  const SafetensorsFile* mapped_shard_of(const std::uint8_t* data, std::size_t size) const noexcept {
    for (const SafetensorsFile& s : shards_) {
      if (!s.is_mapped() || s.view().tensors().empty()) continue;
      const SafetensorsTensor& first = s.view().tensors().front();
      const std::uint8_t* base = first.data - first.offset;  // the start of the data area
      const auto address = reinterpret_cast<std::uintptr_t>(data), begin = reinterpret_cast<std::uintptr_t>(base);
      if (address >= begin && address - begin <= s.view().data_size() && size <= s.view().data_size() - (address - begin)) {
        return &s;
      }
    }
    return nullptr;
  }

  HfCheckpoint(HfCheckpoint&&) noexcept = default;
  HfCheckpoint& operator=(HfCheckpoint&&) noexcept = default;
  HfCheckpoint(const HfCheckpoint&) = delete;
  HfCheckpoint& operator=(const HfCheckpoint&) = delete;

 private:
  HfCheckpoint() = default;

  static std::string path_in(const std::string& directory, const std::string& name) {
    if (directory.empty()) return name;
    const char last = directory.back();
    return last == '/' || last == '\\' ? directory + name : directory + "/" + name;
  }

  // Names the first shard tensor (in shard order) that the index does not map: O(n log n), one sorted copy of the
  // mapped pointers and a binary search per shard tensor.
  [[noreturn]] void throw_unmapped_tensor() const {
    std::vector<const SafetensorsTensor*> mapped(index_);
    const std::less<const SafetensorsTensor*> before;
    std::sort(mapped.begin(), mapped.end(), before);
    for (std::size_t k = 0; k < shards_.size(); ++k) {
      for (const SafetensorsTensor& t : shards_[k].view().tensors()) {
        if (!std::binary_search(mapped.begin(), mapped.end(), &t, before)) {
          detail::fail_invalid_argument("bitlinear: shard " + detail::quoted(shard_names_[k]) + " holds tensor " +
                                      detail::quoted(t.name) +
                                      ", which model.safetensors.index.json does not map to that shard");
        }
      }
    }
    detail::fail_runtime_error("bitlinear: index/shard count mismatch without an unmapped tensor");
  }

  std::string directory_;
  HfModelConfig config_;
  std::vector<std::string> shard_names_;
  std::vector<SafetensorsFile> shards_;           // moving a SafetensorsFile keeps its tensors in place
  std::vector<const SafetensorsTensor*> index_;  // natural name order
};

// Options of load_bitnet_layers.
struct BitNetLoadOptions {
  HfImportOptions import;  // layer options and the per-layer weight-byte budget
  // The weight format, if config.json is not to be trusted for it (nothing: hf_weight_format(config)).
  std::optional<HfWeightFormat> format;
  // Online (float) checkpoints: the module names (last path component) that are BitLinear layers, as transformers
  // converts every nn.Linear but lm_head and modules_to_not_convert. Also used to catch packed checkpoints whose
  // projections are stored as floats.
  std::vector<std::string> linear_names = {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"};

  // Aggregate budget of one load, checked before any layer is built: the bytes of all layers' weights plus the
  // largest transient copy one layer's conversion makes (online checkpoints: the float32 copy and the codes).
  // 4 GiB holds the layers of every published BitNet model we know (2B4T: 0.5 GB); raise it for larger ones.
  static constexpr std::uint64_t default_max_total_bytes = std::uint64_t{4} << 30;
  std::uint64_t max_total_bytes = default_max_total_bytes;
  // Growth budget: that total may be at most max_growth times the bytes of the tensors the layers are built from,
  // plus 64 MiB. Packed weights import at about 1x, float weights shrink, but a narrow matrix grows (a U8 [R, 1]
  // weight imports to 256 times its bytes), so a small hostile file cannot demand gigabytes. 0: no growth limit.
  std::uint64_t max_growth = 16;

  // Mapped shards: once a layer is built, drop the pages of its source tensors from this process's resident set
  // (MADV_DONTNEED; Windows: VirtualUnlock), so that a load's peak RSS is about the layers, not layers plus the
  // shards. The bytes stay in the page cache and stay valid: views of those tensors still read the same bytes
  // (faulting them in again). Each tensor is also announced with MADV_WILLNEED just before it is read.
  bool release_source_pages = true;
};

struct BitNetLayer {
  std::string name;  // the module path, e.g. "model.layers.0.self_attn.q_proj"
  TernaryLinear layer;
};

// Every BitLinear layer of a checkpoint, and views of its other tensors.
struct BitNetModel {
  HfWeightFormat format = HfWeightFormat::packed_divide;
  std::vector<BitNetLayer> layers;                // natural order of module names
  std::vector<const SafetensorsTensor*> tensors;  // the tensors that are not part of a layer, natural order

  const TernaryLinear* find_layer(std::string_view module) const noexcept {
    const auto it = std::lower_bound(layers.begin(), layers.end(), module,
                                     [](const BitNetLayer& l, std::string_view n) { return detail::natural_less(l.name, n); });
    return it != layers.end() && it->name == module ? &it->layer : nullptr;
  }
  const TernaryLinear& layer(std::string_view module) const {
    const TernaryLinear* l = find_layer(module);
    if (l == nullptr) detail::fail_invalid_argument("bitlinear: the model has no BitLinear layer " + detail::quoted(std::string(module)));
    return *l;
  }
  const SafetensorsTensor* find_tensor(std::string_view name) const noexcept {
    const auto it = std::lower_bound(tensors.begin(), tensors.end(), name, [](const SafetensorsTensor* t, std::string_view n) {
      return detail::natural_less(t->name, n);
    });
    return it != tensors.end() && (*it)->name == name ? *it : nullptr;
  }
  const SafetensorsTensor& tensor(std::string_view name) const {
    const SafetensorsTensor* t = find_tensor(name);
    if (t == nullptr) detail::fail_invalid_argument("bitlinear: the model has no (non-layer) tensor " + detail::quoted(std::string(name)));
    return *t;
  }
  // Packed weight bytes of all layers.
  std::size_t weight_bytes() const noexcept {
    std::size_t n = 0;
    for (const BitNetLayer& l : layers) n += l.layer.packed_weights_size();
    return n;
  }
};

namespace detail {

inline std::uint64_t saturating_mul(std::uint64_t a, std::uint64_t b) noexcept {
  return a != 0 && b > std::numeric_limits<std::uint64_t>::max() / a ? std::numeric_limits<std::uint64_t>::max() : a * b;
}
inline std::uint64_t saturating_add(std::uint64_t a, std::uint64_t b) noexcept {
  return b > std::numeric_limits<std::uint64_t>::max() - a ? std::numeric_limits<std::uint64_t>::max() : a + b;
}

// One layer load_bitnet_layers will build.
struct PlannedLayer {
  std::string module;
  const SafetensorsTensor* weight = nullptr;
  const SafetensorsTensor* scale = nullptr;  // packed formats only
  const SafetensorsTensor* bias = nullptr;
};

// The bytes a planned layer's weights will take, and the transient bytes its conversion needs, as the import
// computes them (0 for a shape the import will refuse with its own message).
inline void planned_layer_bytes(const PlannedLayer& l, bool packed, std::uint64_t& layer, std::uint64_t& transient) {
  layer = transient = 0;
  const SafetensorsTensor& w = *l.weight;
  if (w.shape.size() != 2 || w.shape[1] == 0 || w.shape[1] > max_in_features) return;
  const std::uint64_t row_bytes = Ternary::packed_row_bytes(static_cast<std::size_t>(w.shape[1]));
  if (packed) {
    layer = saturating_mul(saturating_mul(4, w.shape[0]), row_bytes);
  } else {
    layer = saturating_mul(w.shape[0], row_bytes);
    // The budget of the former conversion (a float32 copy and int8 codes of the matrix), kept as an upper bound:
    // the import now quantizes row by row and needs a few rows of floats.
    transient = saturating_mul(saturating_mul(w.shape[0], w.shape[1]), 5);
  }
}

// The module path of projection `name` in block `block` of a transformers BitNet (Llama layout), or "" if the
// name is not one of the seven projections.
inline std::string bitnet_projection_path(std::uint64_t block, const std::string& name) {
  const char* parent = nullptr;
  if (name == "q_proj" || name == "k_proj" || name == "v_proj" || name == "o_proj") parent = "self_attn.";
  if (name == "gate_proj" || name == "up_proj" || name == "down_proj") parent = "mlp.";
  return parent == nullptr ? std::string() : "model.layers." + std::to_string(block) + "." + parent + name;
}

}  // namespace detail

// Builds every BitLinear layer of `checkpoint`, one after another (the transient memory is one layer's
// conversion at most; each layer's rows in parallel on options.import.pool if given; mapped source pages
// released after each layer unless options.release_source_pages is false). Packed formats: each module P with a tensor P.weight_scale is a layer (P.weight U8
// [out/4, in], optional P.bias). Online: each 2-D float P.weight whose last path component is in
// options.linear_names and which modules_to_not_convert (or the name lm_head) does not exclude. Throws
// std::invalid_argument for a config the loader refuses (hf_weight_format), tensors that contradict the format
// (a float projection in a packed checkpoint, a packed one in an online checkpoint, a packed module that
// modules_to_not_convert excludes), a checkpoint that lacks a projection of a block config.json describes
// (num_hidden_layers blocks of q/k/v/o_proj and gate/up/down_proj, as far as options.linear_names lists them),
// a load beyond options.max_total_bytes or options.max_growth (checked before anything is built), and whatever
// the layer import rejects (naming the module).
inline BitNetModel load_bitnet_layers(const HfCheckpoint& checkpoint, const BitNetLoadOptions& options = {}) {
  const HfQuantizationConfig& q = checkpoint.config().quantization;
  BitNetModel model;
  model.format = options.format ? *options.format : hf_weight_format(q);
  const bool packed = model.format != HfWeightFormat::float_online;
  const detail::ModuleExclusions not_converted(q.modules_to_not_convert);  // indexed once for every tensor
  auto module_of = [](const std::string& name, std::string_view suffix) {
    return name.substr(0, name.size() - suffix.size());
  };
  auto is_linear_name = [&](std::string_view module) {
    const std::size_t dot = module.rfind('.');
    const std::string_view last = dot == std::string_view::npos ? module : module.substr(dot + 1);
    return std::find(options.linear_names.begin(), options.linear_names.end(), last) != options.linear_names.end();
  };
  // A message from the layer import already starts with "bitlinear: ": said once, before the module.
  auto fail = [](const std::string& module, std::string_view message) {
    constexpr std::string_view prefix = "bitlinear: ";
    if (message.substr(0, prefix.size()) == prefix) message.remove_prefix(prefix.size());
    detail::fail_invalid_argument("bitlinear: BitLinear module " + detail::quoted(module) + ": " + std::string(message));
  };

  // 1. Plan: which modules are layers, from which tensors (nothing is allocated for weights yet).
  std::vector<detail::PlannedLayer> plan;
  for (const SafetensorsTensor* t : checkpoint.tensors()) {
    if (packed && detail::ends_with(t->name, ".weight_scale")) {
      const std::string module = module_of(t->name, ".weight_scale");
      if (not_converted.excludes(module)) fail(module, "stored packed, but quantization_config.modules_to_not_convert excludes it");
      const SafetensorsTensor* weight = checkpoint.find(module + ".weight");
      if (weight == nullptr) fail(module, "has a weight_scale but no weight");
      plan.push_back({module, weight, t, checkpoint.find(module + ".bias")});
    } else if (detail::ends_with(t->name, ".weight") && t->shape.size() == 2) {
      const std::string module = module_of(t->name, ".weight");
      const bool excluded = not_converted.excludes(module) || module.find("lm_head") != std::string::npos;
      if (packed) {
        if (detail::is_float_dtype(t->dtype) && is_linear_name(module) && !excluded &&
            checkpoint.find(module + ".weight_scale") == nullptr) {
          fail(module, "config.json describes packed weights, but this projection is stored as " + t->dtype +
                           " without a weight_scale (an online checkpoint with the wrong quantization_config?)");
        }
      } else if (is_linear_name(module) && !excluded) {
        if (!detail::is_float_dtype(t->dtype) || checkpoint.find(module + ".weight_scale") != nullptr) {
          fail(module, "config.json describes online quantization (float weights), but this projection is stored "
                       "as " + t->dtype + (checkpoint.find(module + ".weight_scale") ? " with a weight_scale" : ""));
        }
        plan.push_back({module, t, nullptr, checkpoint.find(module + ".bias")});
      }
    }
  }

  // 2. Every projection of every block config.json describes is there (stops at the first missing one, so an
  // absurd num_hidden_layers costs no more than the tensors there are).
  const std::uint64_t blocks = checkpoint.config().num_hidden_layers;
  for (std::uint64_t b = 0; b < blocks; ++b) {
    for (const std::string& name : options.linear_names) {
      const std::string module = detail::bitnet_projection_path(b, name);
      if (!module.empty() && checkpoint.find(module + ".weight") == nullptr) {
        detail::fail_invalid_argument("bitlinear: config.json describes num_hidden_layers = " + std::to_string(blocks) +
                                      " blocks, but the checkpoint has no tensor " + detail::quoted(module + ".weight") +
                                      " (every block needs its " + name + "; a truncated or partial checkpoint?)");
      }
    }
  }

  // 3. The aggregate and growth budgets, before anything is built.
  std::uint64_t layers_bytes = 0, largest_transient = 0, source_bytes = 0;
  for (const detail::PlannedLayer& l : plan) {
    std::uint64_t layer = 0, transient = 0;
    detail::planned_layer_bytes(l, packed, layer, transient);
    layers_bytes = detail::saturating_add(layers_bytes, layer);
    largest_transient = std::max(largest_transient, transient);
    for (const SafetensorsTensor* t : {l.weight, l.scale, l.bias}) {
      if (t != nullptr) source_bytes = detail::saturating_add(source_bytes, t->size_bytes);
    }
  }
  const std::uint64_t total = detail::saturating_add(layers_bytes, largest_transient);
  const std::string need = "loading " + std::to_string(plan.size()) + " BitLinear layers needs " + std::to_string(total) +
                           " bytes (" + std::to_string(layers_bytes) + " of layer weights + " +
                           std::to_string(largest_transient) + " transient for the largest conversion)";
  if (total > options.max_total_bytes) {
    detail::fail_invalid_argument("bitlinear: " + need + ", more than the aggregate budget "
                                  "BitNetLoadOptions::max_total_bytes = " + std::to_string(options.max_total_bytes) +
                                  " (raise it for larger models)");
  }
  const std::uint64_t growth_limit =
      detail::saturating_add(detail::saturating_mul(options.max_growth, source_bytes), std::uint64_t{64} << 20);
  if (options.max_growth != 0 && total > growth_limit) {
    detail::fail_invalid_argument("bitlinear: " + need + " from " + std::to_string(source_bytes) +
                                  " bytes of tensors, more than BitNetLoadOptions::max_growth = " +
                                  std::to_string(options.max_growth) + " times their size + 64 MiB = " +
                                  std::to_string(growth_limit) +
                                  " (narrow matrices grow when imported: a U8 [R, 1] weight takes 256 times its bytes)");
  }

  // 4. Build, one layer after another.
  std::vector<const SafetensorsTensor*> consumed;
  model.layers.reserve(plan.size());
  const HfScaleConvention convention =
      model.format == HfWeightFormat::packed_divide ? HfScaleConvention::divide : HfScaleConvention::multiply;
  auto advise = [&](const detail::PlannedLayer& l, detail::PageAdvice advice) {
    for (const SafetensorsTensor* t : {l.weight, l.scale, l.bias}) {
      if (t != nullptr && checkpoint.mapped_shard_of(t->data, t->size_bytes) != nullptr) {
        detail::advise_mapped_pages(t->data, t->size_bytes, advice);
      }
    }
  };
  for (const detail::PlannedLayer& l : plan) {
    if (options.release_source_pages) advise(l, detail::PageAdvice::will_need);
#if BITLINEAR_EXCEPTIONS
    try {
      model.layers.push_back({l.module, packed ? ternary_from_hf_tensors(*l.weight, *l.scale, l.bias, convention, options.import)
                                               : ternary_from_float_tensor(*l.weight, l.bias, options.import)});
    } catch (const std::invalid_argument& e) {
      fail(l.module, e.what());
    }
#else
    model.layers.push_back({l.module, packed ? ternary_from_hf_tensors(*l.weight, *l.scale, l.bias, convention, options.import)
                                             : ternary_from_float_tensor(*l.weight, l.bias, options.import)});
#endif
    if (options.release_source_pages) advise(l, detail::PageAdvice::release);
    for (const SafetensorsTensor* t : {l.weight, l.scale, l.bias}) {
      if (t != nullptr) consumed.push_back(t);
    }
  }
  const std::less<const SafetensorsTensor*> before;
  std::sort(consumed.begin(), consumed.end(), before);
  for (const SafetensorsTensor* t : checkpoint.tensors()) {
    if (!std::binary_search(consumed.begin(), consumed.end(), t, before)) model.tensors.push_back(t);
  }
  // Layers were planned in the order of their weight_scale (or weight) names, which is the natural order of the
  // module names too: both orders compare the same module prefixes.
  std::stable_sort(model.layers.begin(), model.layers.end(),
                   [](const BitNetLayer& a, const BitNetLayer& b) { return detail::natural_less(a.name, b.name); });
  return model;
}

BITLINEAR_NAMESPACE_END
