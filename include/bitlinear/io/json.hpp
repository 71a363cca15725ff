// bitlinear: a small strict JSON (RFC 8259) parser into a tree, for checkpoint metadata (config.json,
// model.safetensors.index.json). Hostile input is expected: nesting is limited (no stack overflow), every
// allocation is bounded by the input's size, strings must be valid UTF-8, duplicate object keys are rejected
// (sorted check, O(n log n)), and every error is a std::invalid_argument naming the byte offset.
// Numbers keep their text, so integers convert exactly (as_uint64) and others through a locale-independent
// conversion (as_double).
#pragma once
#ifndef BITLINEAR_INTERNAL_INCLUDE
#error "bitlinear/detail headers are internal: include <bitlinear/hf_config.hpp> or <bitlinear/checkpoint.hpp>"
#endif

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <locale>
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "../config.hpp"
#include "../error.hpp"

BITLINEAR_NAMESPACE_BEGIN
namespace detail {

struct JsonValue {
  enum class Type { null, boolean, number, string, array, object };
  Type type = Type::null;
  bool boolean = false;
  std::string text;  // string: the decoded value; number: the literal as written
  std::vector<JsonValue> array;
  std::vector<std::pair<std::string, JsonValue>> object;  // in document order; keys are unique

  bool is_null() const noexcept { return type == Type::null; }
  bool is_string() const noexcept { return type == Type::string; }
  bool is_object() const noexcept { return type == Type::object; }
  bool is_array() const noexcept { return type == Type::array; }
  bool is_bool() const noexcept { return type == Type::boolean; }
  bool is_number() const noexcept { return type == Type::number; }

  // The member called `key` of an object, or null if absent (or if this is not an object). Linear: meant for
  // the few fixed keys of a config; iterate `object` for large maps.
  const JsonValue* get(std::string_view key) const noexcept {
    for (const auto& kv : object) {
      if (kv.first == key) return &kv.second;
    }
    return nullptr;
  }

  // A non-negative integer literal (no sign, fraction or exponent) that fits 64 bits, else nothing.
  bool as_uint64(std::uint64_t& out) const noexcept {
    if (type != Type::number || text.empty()) return false;
    std::uint64_t v = 0;
    for (char c : text) {
      if (c < '0' || c > '9') return false;
      const auto digit = static_cast<std::uint64_t>(c - '0');
      if (v > (std::numeric_limits<std::uint64_t>::max() - digit) / 10) return false;
      v = v * 10 + digit;
    }
    out = v;
    return true;
  }
  // A finite number, else nothing (also for literals beyond the double range).
  bool as_double(double& out) const {
    if (type != Type::number) return false;
    std::istringstream in(text);
    in.imbue(std::locale::classic());
    double v = 0.0;
    in >> v;
    if (in.fail() || !(v == v) || v > std::numeric_limits<double>::max() || v < -std::numeric_limits<double>::max()) {
      return false;
    }
    out = v;
    return true;
  }
};

class JsonParser {
 public:
  static constexpr int max_depth = 64;

  // Parses one JSON document (surrounding whitespace allowed). `what` names the document in error messages.
  static JsonValue parse(std::string_view text, const std::string& what) {
    JsonParser p(text, what);
    p.skip_space();
    JsonValue v = p.parse_value(0);
    p.skip_space();
    if (p.pos_ != text.size()) p.fail("unexpected bytes after the JSON value");
    return v;
  }

 private:
  JsonParser(std::string_view text, const std::string& what) : s_(text), what_(what) {}

  [[noreturn]] void fail(const std::string& message) const {
    detail::fail_invalid_argument("bitlinear: " + what_ + ": invalid JSON at byte " + std::to_string(pos_) + ": " +
                                message);
  }

  bool at_end() const noexcept { return pos_ >= s_.size(); }
  char peek() const noexcept { return s_[pos_]; }
  void skip_space() {
    while (!at_end() && (peek() == ' ' || peek() == '\t' || peek() == '\n' || peek() == '\r')) ++pos_;
  }
  void expect_literal(std::string_view word) {
    if (s_.substr(pos_, word.size()) != word) fail("unknown literal (expected " + std::string(word) + ")");
    pos_ += word.size();
  }

  JsonValue parse_value(int depth) {
    if (depth > max_depth) fail("nested deeper than " + std::to_string(max_depth) + " levels");
    if (at_end()) fail("expected a value, found the end of the document");
    JsonValue v;
    switch (peek()) {
      case '{': parse_object(v, depth); break;
      case '[': parse_array(v, depth); break;
      case '"':
        v.type = JsonValue::Type::string;
        v.text = parse_string();
        break;
      case 't': expect_literal("true"), v.type = JsonValue::Type::boolean, v.boolean = true; break;
      case 'f': expect_literal("false"), v.type = JsonValue::Type::boolean; break;
      case 'n': expect_literal("null"); break;
      default:
        v.type = JsonValue::Type::number;
        v.text = parse_number();
    }
    return v;
  }

  void parse_object(JsonValue& v, int depth) {
    v.type = JsonValue::Type::object;
    ++pos_;  // '{'
    skip_space();
    if (!at_end() && peek() == '}') {
      ++pos_;
      return;
    }
    for (;;) {
      skip_space();
      if (at_end() || peek() != '"') fail("expected a string key");
      std::string key = parse_string();
      skip_space();
      if (at_end() || peek() != ':') fail("expected ':' after a key");
      ++pos_;
      skip_space();
      JsonValue member = parse_value(depth + 1);
      v.object.emplace_back(std::move(key), std::move(member));
      skip_space();
      if (!at_end() && peek() == ',') {
        ++pos_;
        continue;
      }
      if (at_end() || peek() != '}') fail("expected ',' or '}' in an object");
      ++pos_;
      break;
    }
    std::vector<std::size_t> order(v.object.size());
    for (std::size_t i = 0; i < order.size(); ++i) order[i] = i;
    std::sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) { return v.object[a].first < v.object[b].first; });
    for (std::size_t i = 1; i < order.size(); ++i) {
      const std::string& key = v.object[order[i]].first;
      if (key == v.object[order[i - 1]].first) {
        fail("key \"" + (key.size() <= 80 ? key : key.substr(0, 80) + "...") + "\" appears twice in one object");
      }
    }
  }

  void parse_array(JsonValue& v, int depth) {
    v.type = JsonValue::Type::array;
    ++pos_;  // '['
    skip_space();
    if (!at_end() && peek() == ']') {
      ++pos_;
      return;
    }
    for (;;) {
      skip_space();
      v.array.push_back(parse_value(depth + 1));
      skip_space();
      if (!at_end() && peek() == ',') {
        ++pos_;
        continue;
      }
      if (at_end() || peek() != ']') fail("expected ',' or ']' in an array");
      ++pos_;
      return;
    }
  }

  std::string parse_number() {
    const std::size_t begin = pos_;
    auto digits = [&] {
      const std::size_t start = pos_;
      while (!at_end() && peek() >= '0' && peek() <= '9') ++pos_;
      return pos_ - start;
    };
    if (!at_end() && peek() == '-') ++pos_;
    if (at_end() || peek() < '0' || peek() > '9') fail("expected a value");
    if (peek() == '0') {
      ++pos_;
      if (!at_end() && peek() >= '0' && peek() <= '9') fail("number with a leading zero");
    } else {
      digits();
    }
    if (!at_end() && peek() == '.') {
      ++pos_;
      if (digits() == 0) fail("expected digits after '.'");
    }
    if (!at_end() && (peek() == 'e' || peek() == 'E')) {
      ++pos_;
      if (!at_end() && (peek() == '+' || peek() == '-')) ++pos_;
      if (digits() == 0) fail("expected digits in the exponent");
    }
    return std::string(s_.substr(begin, pos_ - begin));
  }

  unsigned hex4() {
    if (s_.size() - pos_ < 4) fail("truncated \\u escape");
    unsigned v = 0;
    for (int i = 0; i < 4; ++i) {
      const char c = s_[pos_++];
      unsigned d = 0;
      if (c >= '0' && c <= '9') {
        d = static_cast<unsigned>(c - '0');
      } else if (c >= 'a' && c <= 'f') {
        d = static_cast<unsigned>(c - 'a' + 10);
      } else if (c >= 'A' && c <= 'F') {
        d = static_cast<unsigned>(c - 'A' + 10);
      } else {
        fail("bad hex digit in a \\u escape");
      }
      v = v * 16 + d;
    }
    return v;
  }

  static void append_utf8(std::string& out, unsigned cp) {
    if (cp < 0x80) {
      out += static_cast<char>(cp);
    } else if (cp < 0x800) {
      out += static_cast<char>(0xC0 | (cp >> 6));
      out += static_cast<char>(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
      out += static_cast<char>(0xE0 | (cp >> 12));
      out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
      out += static_cast<char>(0x80 | (cp & 0x3F));
    } else {
      out += static_cast<char>(0xF0 | (cp >> 18));
      out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
      out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
      out += static_cast<char>(0x80 | (cp & 0x3F));
    }
  }

  // One raw UTF-8 character whose lead byte was just consumed (RFC 3629: no overlong forms, no surrogates).
  void append_raw_utf8(std::string& out, unsigned char lead) {
    std::size_t length = 0;
    unsigned cp = 0;
    if (lead >= 0xC2 && lead <= 0xDF) {
      length = 2, cp = lead & 0x1Fu;
    } else if (lead >= 0xE0 && lead <= 0xEF) {
      length = 3, cp = lead & 0x0Fu;
    } else if (lead >= 0xF0 && lead <= 0xF4) {
      length = 4, cp = lead & 0x07u;
    } else {
      fail("invalid UTF-8: byte " + std::to_string(lead) + " cannot start a character");
    }
    if (s_.size() - pos_ < length - 1) fail("invalid UTF-8: truncated character");
    for (std::size_t i = 0; i + 1 < length; ++i) {
      const auto b = static_cast<unsigned char>(s_[pos_ + i]);
      if ((b & 0xC0u) != 0x80u) fail("invalid UTF-8: missing continuation byte");
      cp = cp << 6 | (b & 0x3Fu);
    }
    if ((length == 3 && cp < 0x800) || (length == 4 && cp < 0x10000)) fail("invalid UTF-8: overlong form");
    if (cp >= 0xD800 && cp <= 0xDFFF) fail("invalid UTF-8: encoded surrogate");
    if (cp > 0x10FFFF) fail("invalid UTF-8: code point above U+10FFFF");
    out += static_cast<char>(lead);
    out.append(s_.data() + pos_, length - 1);
    pos_ += length - 1;
  }

  std::string parse_string() {
    ++pos_;  // '"'
    std::string out;
    for (;;) {
      if (at_end()) fail("unterminated string");
      const char c = s_[pos_++];
      if (c == '"') return out;
      const auto u = static_cast<unsigned char>(c);
      if (u < 0x20) fail("raw control character in a string");
      if (u >= 0x80) {
        append_raw_utf8(out, u);
        continue;
      }
      if (c != '\\') {
        out += c;
        continue;
      }
      if (at_end()) fail("unterminated escape");
      const char e = s_[pos_++];
      switch (e) {
        case '"': out += '"'; break;
        case '\\': out += '\\'; break;
        case '/': out += '/'; break;
        case 'b': out += '\b'; break;
        case 'f': out += '\f'; break;
        case 'n': out += '\n'; break;
        case 'r': out += '\r'; break;
        case 't': out += '\t'; break;
        case 'u': {
          unsigned cp = hex4();
          if (cp >= 0xDC00 && cp <= 0xDFFF) fail("unpaired low surrogate in a \\u escape");
          if (cp >= 0xD800 && cp <= 0xDBFF) {
            if (s_.size() - pos_ < 2 || s_[pos_] != '\\' || s_[pos_ + 1] != 'u') {
              fail("unpaired high surrogate in a \\u escape");
            }
            pos_ += 2;
            const unsigned low = hex4();
            if (low < 0xDC00 || low > 0xDFFF) fail("high surrogate not followed by a low surrogate");
            cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
          }
          append_utf8(out, cp);
          break;
        }
        default: fail(std::string("unknown escape \\") + e);
      }
    }
  }

  std::string_view s_;
  std::size_t pos_ = 0;
  std::string what_;
};

}  // namespace detail
BITLINEAR_NAMESPACE_END
