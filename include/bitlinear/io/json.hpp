// bitlinear: the one JSON lexer of the I/O headers. The safetensors header parser (safetensors.hpp) and the
// checkpoint metadata readers (hf_config.hpp: config.json, model.safetensors.index.json) all read their bytes
// through JsonLexer: strings (escapes, surrogate pairs, strict UTF-8 per RFC 3629), numbers (RFC 8259
// grammar, kept as text), literals, whitespace. Hostile input is expected, so nothing here builds a tree:
//
//   - JsonLexer is a cursor over the caller's bytes. Decoding a string appends to a caller's buffer; skipping
//     one (to hash or compare it) allocates nothing.
//   - JsonDocument validates a whole document once (RFC 8259, nesting limited to max_depth, duplicate object
//     keys rejected) and then reads values in place: a JsonRef is the byte offset where a value starts. The
//     validation keeps 8 bytes per member of each object still open (a hash and an offset, sorted when the
//     object closes to find duplicate keys in O(n log n)) and nothing per array element or scalar, so its memory
//     is bounded by a small constant per value, never by a tree of them.
//
// Every error is a std::invalid_argument: "<prefix>invalid JSON at byte N: <message>" for documents,
// "<prefix><message>" for the safetensors header (whose grammar errors are its own).
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
#include <vector>

#include "../config.hpp"
#include "../error.hpp"

BITLINEAR_NAMESPACE_BEGIN
namespace detail {

// A name for an error message: at most 80 bytes, then "...".
inline std::string json_printable(std::string_view s) {
  return s.size() <= 80 ? std::string(s) : std::string(s.substr(0, 80)) + "...";
}

class JsonLexer {
 public:
  static constexpr int max_depth = 64;

  // `prefix` (which must outlive the lexer) starts every error message; with `byte_offsets`, "invalid JSON
  // at byte N: " follows it.
  JsonLexer(std::string_view text, std::string_view prefix, bool byte_offsets) noexcept
      : s_(text), prefix_(prefix), byte_offsets_(byte_offsets) {}

  [[noreturn]] void fail(const std::string& message) const {
    detail::fail_invalid_argument(std::string(prefix_) + (byte_offsets_ ? "invalid JSON at byte " + std::to_string(pos_) + ": " : "") +
                                  message);
  }

  std::string_view text() const noexcept { return s_; }
  std::size_t pos() const noexcept { return pos_; }
  void seek(std::size_t pos) noexcept { pos_ = pos; }
  bool at_end() const noexcept { return pos_ >= s_.size(); }
  bool next_is(char c) const noexcept { return pos_ < s_.size() && s_[pos_] == c; }
  char peek() const noexcept { return s_[pos_]; }  // only when !at_end()
  void skip_space() noexcept {
    while (pos_ < s_.size() && (s_[pos_] == ' ' || s_[pos_] == '\t' || s_[pos_] == '\n' || s_[pos_] == '\r')) ++pos_;
  }
  bool consume(char c) noexcept {
    if (!next_is(c)) return false;
    ++pos_;
    return true;
  }
  void expect(char c, const std::string& message) {
    if (!consume(c)) fail(message);
  }

  // The string at the cursor, decoded into `out` (replacing its contents).
  void read_string(std::string& out) {
    out.clear();
    AppendSink sink{out};
    scan_string(sink);
  }
  std::string read_string() {
    std::string out;
    read_string(out);
    return out;
  }
  // Validates and skips the string at the cursor; returns a hash of its decoded bytes (FNV-1a, 32 bits).
  std::uint32_t skip_string() {
    HashSink sink;
    scan_string(sink);
    return sink.hash;
  }

  // The RFC 8259 number at the cursor, as written.
  std::string_view read_number() {
    const std::size_t begin = pos_;
    if (next_is('-')) ++pos_;
    if (at_end() || !is_digit(peek())) fail("expected a value");
    if (consume('0')) {
      if (!at_end() && is_digit(peek())) fail("number with a leading zero");
    } else {
      digits();
    }
    if (consume('.') && digits() == 0) fail("expected digits after '.'");
    if (consume('e') || consume('E')) {
      if (!consume('+')) (void)consume('-');
      if (digits() == 0) fail("expected digits in the exponent");
    }
    return s_.substr(begin, pos_ - begin);
  }

  void read_literal(std::string_view word) {
    if (s_.substr(pos_, word.size()) != word) fail("unknown literal (expected " + std::string(word) + ")");
    pos_ += word.size();
  }

  // Validates and skips the value at the cursor (which follows any space), nested `depth` levels deep:
  // RFC 8259 grammar, at most max_depth levels, and (with check_keys) no key twice in one object.
  void skip_value(int depth, bool check_keys) {
    if (depth > max_depth) fail("nested deeper than " + std::to_string(max_depth) + " levels");
    if (at_end()) fail("expected a value, found the end of the document");
    switch (peek()) {
      case '{': skip_object(depth, check_keys); break;
      case '[': skip_array(depth, check_keys); break;
      case '"': (void)skip_string(); break;
      case 't': read_literal("true"); break;
      case 'f': read_literal("false"); break;
      case 'n': read_literal("null"); break;
      default: (void)read_number();
    }
  }

  // The items of an object or array whose opening bracket is at the cursor: item() reads one (it starts after
  // any space), separated by commas, up to `close`; `message` if neither follows an item.
  template <class Item>
  void skip_list(char close, const char* message, Item&& item) {
    ++pos_;  // '{' or '['
    skip_space();
    if (consume(close)) return;
    for (;;) {
      skip_space();
      item();
      skip_space();
      if (consume(',')) continue;
      expect(close, message);
      return;
    }
  }

  // The decoded string starting at `quote` (the offset of its opening quote; the string was validated before).
  std::string string_at(std::size_t quote) const {
    JsonLexer sub(s_, prefix_, byte_offsets_);
    sub.seek(quote);
    return sub.read_string();
  }

 private:
  struct AppendSink {
    std::string& out;
    void put(char c) { out += c; }
    void put(const char* p, std::size_t n) { out.append(p, n); }
  };
  struct HashSink {
    std::uint32_t hash = 2166136261u;
    void put(char c) noexcept { hash = (hash ^ static_cast<unsigned char>(c)) * 16777619u; }
    void put(const char* p, std::size_t n) noexcept {
      for (std::size_t i = 0; i < n; ++i) put(p[i]);
    }
  };

  static bool is_digit(char c) noexcept { return c >= '0' && c <= '9'; }
  std::size_t digits() noexcept {
    const std::size_t start = pos_;
    while (!at_end() && is_digit(peek())) ++pos_;
    return pos_ - start;
  }

  unsigned hex4() {
    unsigned v = 0;
    for (int i = 0; i < 4; ++i) {
      if (at_end()) fail("truncated \\u escape");
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

  template <class Sink>
  static void put_code_point(Sink& out, unsigned cp) {
    if (cp < 0x80) {
      out.put(static_cast<char>(cp));
    } else if (cp < 0x800) {
      out.put(static_cast<char>(0xC0 | (cp >> 6)));
      out.put(static_cast<char>(0x80 | (cp & 0x3F)));
    } else if (cp < 0x10000) {
      out.put(static_cast<char>(0xE0 | (cp >> 12)));
      out.put(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
      out.put(static_cast<char>(0x80 | (cp & 0x3F)));
    } else {
      out.put(static_cast<char>(0xF0 | (cp >> 18)));
      out.put(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
      out.put(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
      out.put(static_cast<char>(0x80 | (cp & 0x3F)));
    }
  }

  // One raw multi-byte UTF-8 character whose lead byte was just consumed, rejecting what RFC 3629 forbids:
  // stray continuation bytes, overlong forms, surrogates, code points above U+10FFFF, truncation.
  template <class Sink>
  void raw_utf8(Sink& out, unsigned char lead) {
    std::size_t length = 0;
    unsigned cp = 0;
    if (lead >= 0xC2 && lead <= 0xDF) {
      length = 2, cp = lead & 0x1Fu;
    } else if (lead >= 0xE0 && lead <= 0xEF) {
      length = 3, cp = lead & 0x0Fu;
    } else if (lead >= 0xF0 && lead <= 0xF4) {
      length = 4, cp = lead & 0x07u;
    } else {
      fail("invalid UTF-8 in a string: byte " + std::to_string(lead) + " cannot start a character");
    }
    if (s_.size() - pos_ < length - 1) fail("invalid UTF-8 in a string: truncated character");
    for (std::size_t i = 0; i + 1 < length; ++i) {
      const auto b = static_cast<unsigned char>(s_[pos_ + i]);
      if ((b & 0xC0u) != 0x80u) fail("invalid UTF-8 in a string: missing continuation byte");
      cp = cp << 6 | (b & 0x3Fu);
    }
    if ((length == 3 && cp < 0x800) || (length == 4 && cp < 0x10000)) fail("invalid UTF-8 in a string: overlong form");
    if (cp >= 0xD800 && cp <= 0xDFFF) fail("invalid UTF-8 in a string: encoded surrogate");
    if (cp > 0x10FFFF) fail("invalid UTF-8 in a string: code point above U+10FFFF");
    out.put(static_cast<char>(lead));
    out.put(s_.data() + pos_, length - 1);
    pos_ += length - 1;
  }

  template <class Sink>
  void scan_string(Sink& out) {
    expect('"', "expected a string");
    for (;;) {
      // A run of plain ASCII goes out in one piece.
      const std::size_t run = pos_;
      while (pos_ < s_.size()) {
        const auto u = static_cast<unsigned char>(s_[pos_]);
        if (u < 0x20 || u >= 0x80 || u == '"' || u == '\\') break;
        ++pos_;
      }
      if (pos_ != run) out.put(s_.data() + run, pos_ - run);
      if (at_end()) fail("unterminated string");
      const char c = s_[pos_++];
      if (c == '"') return;
      const auto u = static_cast<unsigned char>(c);
      if (u < 0x20) fail("raw control character in a string");
      if (u >= 0x80) {
        raw_utf8(out, u);
        continue;
      }
      // c == '\\'
      if (at_end()) fail("unterminated escape");
      const char e = s_[pos_++];
      switch (e) {
        case '"': out.put('"'); break;
        case '\\': out.put('\\'); break;
        case '/': out.put('/'); break;
        case 'b': out.put('\b'); break;
        case 'f': out.put('\f'); break;
        case 'n': out.put('\n'); break;
        case 'r': out.put('\r'); break;
        case 't': out.put('\t'); break;
        case 'u': {
          unsigned cp = hex4();
          if (cp >= 0xDC00 && cp <= 0xDFFF) fail("unpaired low surrogate in a \\u escape");
          if (cp >= 0xD800 && cp <= 0xDBFF) {
            if (s_.size() - pos_ < 2 || s_[pos_] != '\\' || s_[pos_ + 1] != 'u') fail("unpaired high surrogate in a \\u escape");
            pos_ += 2;
            const unsigned low = hex4();
            if (low < 0xDC00 || low > 0xDFFF) fail("high surrogate not followed by a low surrogate");
            cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
          }
          put_code_point(out, cp);
          break;
        }
        default: fail(std::string("unknown escape \\") + e);
      }
    }
  }

  // One member key of an object being validated: the hash of the decoded key and where its quote is.
  struct KeyRecord {
    std::uint32_t hash;
    std::uint32_t quote;
  };

  // The raw bytes between a validated string's quotes, and whether it has escapes.
  std::string_view raw_string_at(std::size_t quote, bool& escaped) const noexcept {
    std::size_t i = quote + 1;
    escaped = false;
    while (s_[i] != '"') {
      if (s_[i] == '\\') {
        escaped = true;
        ++i;  // the escaped byte: never the closing quote
      }
      ++i;
    }
    return s_.substr(quote + 1, i - quote - 1);
  }
  // Orders two validated keys by their decoded bytes; without escapes the raw bytes are the decoded bytes.
  int compare_keys(std::size_t a, std::size_t b) const {
    bool a_escaped = false, b_escaped = false;
    const std::string_view ra = raw_string_at(a, a_escaped), rb = raw_string_at(b, b_escaped);
    if (!a_escaped && !b_escaped) return ra.compare(rb);
    return string_at(a).compare(string_at(b));
  }

  void skip_object(int depth, bool check_keys) {
    std::vector<KeyRecord> keys;
    skip_list('}', "expected ',' or '}' in an object", [&] {
      if (!next_is('"')) fail("expected a string key");
      const std::size_t quote = pos_;
      const std::uint32_t hash = skip_string();
      if (check_keys) keys.push_back({hash, static_cast<std::uint32_t>(quote)});
      skip_space();
      expect(':', "expected ':' after a key");
      skip_space();
      skip_value(depth + 1, check_keys);
    });
    if (keys.size() < 2) return;
    std::sort(keys.begin(), keys.end(), [&](const KeyRecord& x, const KeyRecord& y) {
      if (x.hash != y.hash) return x.hash < y.hash;
      return compare_keys(x.quote, y.quote) < 0;
    });
    for (std::size_t i = 1; i < keys.size(); ++i) {
      if (keys[i].hash == keys[i - 1].hash && compare_keys(keys[i].quote, keys[i - 1].quote) == 0) {
        fail("key \"" + json_printable(string_at(keys[i].quote)) + "\" appears twice in one object");
      }
    }
  }

  void skip_array(int depth, bool check_keys) {
    skip_list(']', "expected ',' or ']' in an array", [&] { skip_value(depth + 1, check_keys); });
  }

  std::string_view s_;
  std::size_t pos_ = 0;
  std::string_view prefix_;
  bool byte_offsets_;
};

// Where a value of a JsonDocument starts (its first byte), or nowhere.
struct JsonRef {
  static constexpr std::size_t none = std::numeric_limits<std::size_t>::max();
  std::size_t pos = none;
  explicit operator bool() const noexcept { return pos != none; }
};

// A validated JSON document over the caller's bytes (keep them alive while reading it), read in place.
class JsonDocument {
 public:
  enum class Type { null, boolean, number, string, array, object };

  // Validates one JSON document (surrounding whitespace allowed); `what` names it in error messages. Documents
  // of 4 GiB or more are refused (the key records hold 32-bit offsets).
  JsonDocument(std::string_view text, const std::string& what) : s_(text), prefix_("bitlinear: " + what + ": ") {
    JsonLexer lex(text, prefix_, true);
    if (static_cast<std::uint64_t>(text.size()) >> 32 != 0) lex.fail("documents of 4 GiB or more are not supported");
    lex.skip_space();
    root_.pos = lex.pos();
    lex.skip_value(0, true);
    lex.skip_space();
    if (!lex.at_end()) lex.fail("unexpected bytes after the JSON value");
  }

  JsonRef root() const noexcept { return root_; }

  Type type(JsonRef v) const noexcept {
    switch (s_[v.pos]) {
      case '{': return Type::object;
      case '[': return Type::array;
      case '"': return Type::string;
      case 't':
      case 'f': return Type::boolean;
      case 'n': return Type::null;
      default: return Type::number;
    }
  }
  bool is_null(JsonRef v) const noexcept { return type(v) == Type::null; }
  bool is_string(JsonRef v) const noexcept { return type(v) == Type::string; }
  bool is_object(JsonRef v) const noexcept { return type(v) == Type::object; }
  bool is_array(JsonRef v) const noexcept { return type(v) == Type::array; }
  bool is_bool(JsonRef v) const noexcept { return type(v) == Type::boolean; }
  bool is_number(JsonRef v) const noexcept { return type(v) == Type::number; }
  bool boolean(JsonRef v) const noexcept { return s_[v.pos] == 't'; }

  // A string's decoded value.
  std::string string(JsonRef v) const { return lexer_at(v).read_string(); }
  void string(JsonRef v, std::string& out) const { lexer_at(v).read_string(out); }
  // A number's literal, as written (empty for any other type).
  std::string_view number_text(JsonRef v) const {
    if (!is_number(v)) return {};
    return lexer_at(v).read_number();
  }
  // A non-negative integer literal (no sign, fraction or exponent) that fits 64 bits, else nothing.
  bool as_uint64(JsonRef v, std::uint64_t& out) const {
    const std::string_view text = number_text(v);
    if (text.empty()) return false;
    std::uint64_t value = 0;
    for (char c : text) {
      if (c < '0' || c > '9') return false;
      const auto digit = static_cast<std::uint64_t>(c - '0');
      if (value > (std::numeric_limits<std::uint64_t>::max() - digit) / 10) return false;
      value = value * 10 + digit;
    }
    out = value;
    return true;
  }
  // A finite number, else nothing (also for literals beyond the double range). Locale-independent.
  bool as_double(JsonRef v, double& out) const {
    const std::string_view text = number_text(v);
    if (text.empty()) return false;
    std::istringstream in{std::string(text)};
    in.imbue(std::locale::classic());
    double value = 0.0;
    in >> value;
    if (in.fail() || !(value == value) || value > std::numeric_limits<double>::max() ||
        value < -std::numeric_limits<double>::max()) {
      return false;
    }
    out = value;
    return true;
  }

  // Calls f(key, value) for each member of an object, in document order (key: the decoded key, a buffer reused
  // from one member to the next).
  template <class F>
  void for_each_member(JsonRef object, F&& f) const {
    if (!is_object(object)) return;
    JsonLexer lex = lexer_at(object);
    std::string key;
    lex.skip_list('}', "", [&] {
      lex.read_string(key);
      lex.skip_space();
      lex.consume(':');
      lex.skip_space();
      const JsonRef value{lex.pos()};
      f(static_cast<const std::string&>(key), value);
      lex.seek(value.pos);
      lex.skip_value(0, false);
    });
  }
  // Calls f(element) for each element of an array, in order.
  template <class F>
  void for_each_element(JsonRef array, F&& f) const {
    if (!is_array(array)) return;
    JsonLexer lex = lexer_at(array);
    lex.skip_list(']', "", [&] {
      const JsonRef value{lex.pos()};
      f(value);
      lex.seek(value.pos);
      lex.skip_value(0, false);
    });
  }
  // The members called keys[0..n) of an object, found in one pass: out[i] is the value of keys[i], or none.
  void find_members(JsonRef object, const std::string_view* keys, std::size_t n, JsonRef* out) const {
    for (std::size_t i = 0; i < n; ++i) out[i] = JsonRef{};
    for_each_member(object, [&](const std::string& key, JsonRef value) {
      for (std::size_t i = 0; i < n; ++i) {
        if (key == keys[i]) out[i] = value;  // keys are unique: the document was validated
      }
    });
  }
  // One member of an object (a linear pass; use find_members or for_each_member for several).
  JsonRef get(JsonRef object, std::string_view key) const {
    JsonRef out;
    find_members(object, &key, 1, &out);
    return out;
  }

 private:
  JsonLexer lexer_at(JsonRef v) const noexcept {
    JsonLexer lex(s_, prefix_, true);
    lex.seek(v.pos);
    return lex;
  }

  std::string_view s_;
  std::string prefix_;
  JsonRef root_;
};

}  // namespace detail
BITLINEAR_NAMESPACE_END
