// bitlinear internal: a name from an untrusted file, made safe for an error message.
#pragma once
#include "internal_only.hpp"

#include <cstddef>
#include <string>
#include <string_view>

#include "../config.hpp"

BITLINEAR_NAMESPACE_BEGIN
namespace detail {

// Quoted, at most 80 bytes, control bytes (even NUL) escaped as \xNN.
inline std::string quoted(std::string_view s) {
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

}  // namespace detail
BITLINEAR_NAMESPACE_END
