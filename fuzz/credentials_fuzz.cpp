// Fuzzes DockerConfig::parse (docker's config.json) and the auths lookup.
//
// Properties:
//  - refusals are kCorrupt, and their message never quotes a secret: no
//    "password", "auth" or "identitytoken" value (8 bytes or more, found in
//    the input by an independent JSON parse) appears in it;
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

// Every string value under a secret-bearing key, anywhere in the document.
void collect_secrets(const json& j, std::vector<std::string>& out) {
  if (j.is_object()) {
    for (auto it = j.begin(); it != j.end(); ++it) {
      bool secret = iequals(it.key(), "password") || iequals(it.key(), "auth") ||
                    iequals(it.key(), "identitytoken");
      if (secret && it.value().is_string()) out.push_back(it.value().get<std::string>());
      collect_secrets(it.value(), out);
    }
  } else if (j.is_array()) {
    for (const auto& v : j) collect_secrets(v, out);
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
  std::vector<std::string> secrets;
  if (!doc.is_discarded()) collect_secrets(doc, secrets);

  auto config = imgpull::DockerConfig::parse(text, "fuzz.json");
  if (!config) {
    FUZZ_CHECK(config.error().code() == ErrorCode::kCorrupt) << config.error().message();
    const std::string& message = config.error().message();
    for (const std::string& secret : secrets) {
      FUZZ_CHECK(secret.size() < 8 || message.find(secret) == std::string::npos)
          << "secret quoted in: " << message;
    }
    return 0;
  }
  for (std::string_view domain : {"docker.io", "localhost:5000", "ghcr.io", "[::1]:5000", ""}) {
    auto creds = config->credentials_for(domain);
    if (!creds) {
      auto code = creds.error().code();
      FUZZ_CHECK(code == ErrorCode::kUnavailable || code == ErrorCode::kInvalidArgument)
          << creds.error().message();
      for (const std::string& secret : secrets) {
        FUZZ_CHECK(secret.size() < 8 || creds.error().message().find(secret) == std::string::npos)
            << "secret quoted in: " << creds.error().message();
      }
      continue;
    }
    if (!*creds) continue;
    FUZZ_CHECK(!(*creds)->empty());
  }
  return 0;
}
