// Parsing the `WWW-Authenticate` header of a registry's 401 answer (RFC 7235
// challenges): which scheme the registry wants and with which parameters, e.g.
// where to fetch a Bearer token (realm), for which service and which scope.
//
//   auto challenges = parse_www_authenticate(
//       R"(Bearer realm="https://auth.docker.io/token",service="registry.docker.io")");
//   if (!challenges) return std::move(challenges).error();
//   for (const Challenge& c : *challenges) {
//     if (c.scheme == "bearer") fetch_token(c.param("realm"), c.param("service"));
//   }
//
// One header value may carry several challenges ("Bearer realm=..., Basic
// realm=..."); they come back in header order.
#pragma once

#include <cstddef>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "imgpull/error.h"

namespace imgpull {

// Longer header values are refused (kTooLarge): registries send a few hundred
// bytes, and the parser should not be a way to make us chew on megabytes.
inline constexpr size_t kMaxWwwAuthenticateSize = 8 * 1024;

struct Challenge {
  std::string scheme;                         // lower-cased: "bearer", "basic"
  std::map<std::string, std::string> params;  // keys lower-cased; values unquoted/unescaped
  std::string token68;                        // the rare token68 form ("Negotiate YII..=="), else ""

  // The value of parameter `key` (any case), "" when absent.
  std::string param(std::string_view key) const;

  friend bool operator==(const Challenge&, const Challenge&) = default;
};

// Parses a header value into its challenges. An empty (or all-blank) value
// has no challenges. Malformed input fails with kInvalidArgument and a
// message quoting the header; a value over kMaxWwwAuthenticateSize with
// kTooLarge. A parameter given twice keeps its first value.
Result<std::vector<Challenge>> parse_www_authenticate(std::string_view header_value);

}  // namespace imgpull
