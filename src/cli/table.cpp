#include "table.h"

#include <algorithm>

namespace imgpull::cli {

std::string format_table(const std::vector<std::vector<std::string>>& rows) {
  std::vector<size_t> widths;
  for (const auto& r : rows) {
    widths.resize(std::max(widths.size(), r.size()));
    for (size_t i = 0; i < r.size(); ++i) widths[i] = std::max(widths[i], r[i].size());
  }
  std::string out;
  for (const auto& r : rows) {
    for (size_t i = 0; i < r.size(); ++i) {
      out += r[i];
      if (i + 1 < r.size()) out += std::string(widths[i] - r[i].size() + 3, ' ');
    }
    out += "\n";
  }
  return out;
}

std::string ellipsis(const std::string& s, size_t max) {
  auto starts_char = [](char c) { return (static_cast<unsigned char>(c) & 0xC0) != 0x80; };
  if (static_cast<size_t>(std::count_if(s.begin(), s.end(), starts_char)) <= max) return s;
  size_t kept = 0, end = 0;
  for (; end < s.size(); ++end) {
    if (starts_char(s[end]) && kept++ == max - 1) break;
  }
  return s.substr(0, end) + "…";
}

}  // namespace imgpull::cli
