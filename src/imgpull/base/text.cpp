#include "base/text.h"

#include <fmt/format.h>

#include <algorithm>

namespace imgpull {

std::string ascii_lowered(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = ascii_lower(c);
  return out;
}

bool iequals(std::string_view a, std::string_view b) {
  return std::equal(a.begin(), a.end(), b.begin(), b.end(),
                    [](char x, char y) { return ascii_lower(x) == ascii_lower(y); });
}

std::string_view trim_space(std::string_view s) {
  constexpr std::string_view kSpace = " \t\r\n\v\f";
  size_t first = s.find_first_not_of(kSpace);
  if (first == std::string_view::npos) return {};
  return s.substr(first, s.find_last_not_of(kSpace) + 1 - first);
}

std::string quoted(std::string_view text, size_t max_bytes) {
  std::string out = "\"";
  for (char c : text.substr(0, max_bytes)) {
    auto u = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (u < 0x20 || u >= 0x7f) {
      out += fmt::format("\\x{:02x}", u);
    } else {
      out += c;
    }
  }
  out += '"';
  if (text.size() > max_bytes) out += fmt::format("... ({} bytes)", text.size());
  return out;
}

std::string quoted(char c) { return quoted(std::string_view(&c, 1)); }

}  // namespace imgpull
