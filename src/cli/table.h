// Text in columns, as docker prints `images` and `history`.
//
//   std::cout << format_table({{"REPOSITORY", "TAG"}, {"debian", "12"}});
//   // REPOSITORY   TAG
//   // debian       12
#pragma once

#include <cstddef>
#include <string>
#include <vector>

namespace imgpull::cli {

// One line per row: each column as wide as its widest cell plus 3 spaces, the
// last column not padded. Widths are counted in bytes.
std::string format_table(const std::vector<std::vector<std::string>>& rows);

// docker's Ellipsis: at most `max` characters (code points), the last one "…".
std::string ellipsis(const std::string& s, size_t max);

}  // namespace imgpull::cli
