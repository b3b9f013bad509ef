// Fuzzes parse_www_authenticate. Properties of every header that parses:
//  - schemes are non-empty lower-case tokens, parameter names lower-case
//    tokens, a challenge has a token68 or parameters, never both;
//  - printing the challenges back in canonical form (quoted values, ", "
//    between challenges) and parsing that gives the same challenges;
//  - param() finds each parameter whatever the case of the key.
// Every refusal is kInvalidArgument or kTooLarge with a one-line message.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "fuzz/fuzz_check.h"
#include "remote/challenge.h"

namespace {

using imgpull::Challenge;

bool is_tchar(char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
         std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

bool is_lower_token(const std::string& s) {
  if (s.empty()) return false;
  for (char c : s) {
    if (!is_tchar(c) || (c >= 'A' && c <= 'Z')) return false;
  }
  return true;
}

std::string upper(std::string s) {
  for (char& c : s) {
    if (c >= 'a' && c <= 'z') c = static_cast<char>(c - 'a' + 'A');
  }
  return s;
}

std::string print(const std::vector<Challenge>& challenges) {
  std::string out;
  for (const Challenge& c : challenges) {
    if (!out.empty()) out += ", ";
    out += c.scheme;
    if (!c.token68.empty()) {
      out += " " + c.token68;
      continue;
    }
    bool first = true;
    for (const auto& [key, value] : c.params) {
      out += first ? " " : ",";
      first = false;
      out += key + "=\"";
      for (char v : value) {
        if (v == '"' || v == '\\') out += '\\';
        out += v;
      }
      out += '"';
    }
  }
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view header(reinterpret_cast<const char*>(data), size);
  auto parsed = imgpull::parse_www_authenticate(header);
  if (!parsed) {
    auto code = parsed.error().code();
    FUZZ_CHECK(code == imgpull::ErrorCode::kInvalidArgument ||
               code == imgpull::ErrorCode::kTooLarge);
    FUZZ_CHECK(parsed.error().message().find('\n') == std::string::npos)
        << parsed.error().message();
    return 0;
  }
  FUZZ_CHECK(header.size() <= imgpull::kMaxWwwAuthenticateSize);
  for (const Challenge& c : *parsed) {
    FUZZ_CHECK(is_lower_token(c.scheme)) << c.scheme;
    FUZZ_CHECK(c.token68.empty() || c.params.empty()) << c.scheme;
    for (const auto& [key, value] : c.params) {
      FUZZ_CHECK(is_lower_token(key)) << key;
      FUZZ_CHECK(c.param(upper(key)) == value) << key;
    }
  }
  std::string printed = print(*parsed);
  if (printed.size() > imgpull::kMaxWwwAuthenticateSize) return 0;
  auto again = imgpull::parse_www_authenticate(printed);
  FUZZ_CHECK(again.ok()) << "printed as [" << printed << "]: " << again.error().message();
  FUZZ_CHECK(*again == *parsed) << "printed as [" << printed << "], parsed differently";
  return 0;
}
