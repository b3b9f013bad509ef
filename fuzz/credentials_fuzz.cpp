// Fuzzes DockerConfig::parse (docker's config.json) and the auths lookup.
//
// Properties:
//  - refusals are kCorrupt, and their message never quotes a secret: no
//    "password", "auth" or "identitytoken" value (found in the input by an
//    independent JSON parse; only values with a control or non-ASCII byte,
//    which the library's own text never has) appears in it, once what a
//    message may quote (keys, helper names) is taken out;
//  - credentials_for never returns an empty Credentials (empty means none),
//    and its errors quote no secret either.
// Credential helpers are never run: PATH points at an empty directory, so a
// configured helper fails to start (kUnavailable), which is checked too.
#include <stdlib.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "fuzz/fuzz_check.h"
#include "imgpull/credentials.h"

namespace {

using imgpull::ErrorCode;
using nlohmann::json;

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    char x = a[i], y = b[i];
    if (x >= 'A' && x <= 'Z') x = static_cast<char>(x - 'A' + 'a');
    if (y >= 'A' && y <= 'Z') y = static_cast<char>(y - 'A' + 'a');
    if (x != y) return false;
  }
  return true;
}

struct Strings {
  std::vector<std::string> secrets;  // values under "password", "auth", "identitytoken"
  std::vector<std::string> others;   // keys and other values: messages may quote those
};

void collect(const json& j, Strings& out) {
  if (j.is_object()) {
    for (auto it = j.begin(); it != j.end(); ++it) {
      out.others.push_back(it.key());
      bool secret = iequals(it.key(), "password") || iequals(it.key(), "auth") ||
                    iequals(it.key(), "identitytoken");
      if (secret && it.value().is_string()) {
        out.secrets.push_back(it.value().get<std::string>());
      } else {
        collect(it.value(), out);
      }
    }
  } else if (j.is_array()) {
    for (const auto& v : j) collect(v, out);
  } else if (j.is_string()) {
    out.others.push_back(j.get<std::string>());
  }
}

// A secret we can look for without false alarms: the library's own message
// text is printable ASCII, so a secret with a control or non-ASCII byte found
// in a message came from the secret (the fuzzer learns the fixed text from
// the comparisons below, so plain ASCII secrets would match it).
bool distinctive(const std::string& secret) {
  if (secret.size() < 4) return false;
  for (char c : secret) {
    auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u >= 0x80) return true;
  }
  return false;
}

// The message without what it may legitimately quote (keys, helper names).
std::string without_quotable(std::string message, const std::vector<std::string>& others) {
  for (const std::string& other : others) {
    if (other.empty()) continue;
    for (size_t at; (at = message.find(other)) != std::string::npos;) message.erase(at, other.size());
  }
  return message;
}

void check_no_secret(const std::string& message, const Strings& strings) {
  std::string stripped = without_quotable(message, strings.others);
  for (const std::string& secret : strings.secrets) {
    FUZZ_CHECK(!distinctive(secret) || stripped.find(secret) == std::string::npos)
        << "secret quoted in: " << message;
  }
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  // No helper program can be found: docker-credential-* lookups fail fast.
  static std::string empty_dir = [] {
    std::string tmpl = (std::filesystem::temp_directory_path() / "imgpull-fuzz-path-XXXXXX").string();
    if (mkdtemp(tmpl.data()) == nullptr) std::abort();
    return tmpl;
  }();
  setenv("PATH", empty_dir.c_str(), 1);
  std::atexit([] { rmdir(empty_dir.c_str()); });
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  json doc = json::parse(text, nullptr, /*allow_exceptions=*/false);
  Strings strings;
  if (!doc.is_discarded()) collect(doc, strings);

  auto config = imgpull::DockerConfig::parse(text, "fuzz.json");
  if (!config) {
    FUZZ_CHECK(config.error().code() == ErrorCode::kCorrupt) << config.error().message();
    check_no_secret(config.error().message(), strings);
    return 0;
  }
  for (std::string_view domain : {"docker.io", "localhost:5000", "ghcr.io", "[::1]:5000", ""}) {
    auto creds = config->credentials_for(domain);
    if (!creds) {
      auto code = creds.error().code();
      FUZZ_CHECK(code == ErrorCode::kUnavailable || code == ErrorCode::kInvalidArgument)
          << creds.error().message();
      check_no_secret(creds.error().message(), strings);
      continue;
    }
    if (!*creds) continue;
    FUZZ_CHECK(!(*creds)->empty());
  }
  return 0;
}
