// Small text helpers shared by the parsers and the error messages: ASCII-only
// case folding (protocol names, header names, hosts: never the locale's
// rules), whitespace trimming, and quoting untrusted text for a message.
//
//   std::string scheme = ascii_lowered("Bearer");   // "bearer"
//   bool same = iequals("credsStore", "CREDSSTORE");  // true
//   std::string_view value = trim_space("  text\r\n");  // "text"
//   Error e(ErrorCode::kInvalidArgument, "invalid tag " + quoted("a\nb"));  // "a\x0ab"
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace imgpull {

// 'A'-'Z' to 'a'-'z'; every other byte as it is.
inline char ascii_lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }
std::string ascii_lowered(std::string_view s);
// Equal but for ASCII case.
bool iequals(std::string_view a, std::string_view b);

// `s` without leading and trailing ASCII white space (" \t\r\n\v\f").
std::string_view trim_space(std::string_view s);

// `text` in double quotes for a one-line error message: '"' and '\' escaped,
// control and non-ASCII bytes written as \xNN (so nothing in it can break the
// line or drive a terminal). Text longer than `max_bytes` is cut there and
// followed by "... (N bytes)".
std::string quoted(std::string_view text, size_t max_bytes = std::string_view::npos);
std::string quoted(char c);

}  // namespace imgpull
