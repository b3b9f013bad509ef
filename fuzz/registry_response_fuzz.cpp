// Fuzzes what a registry or token server answers, beyond manifests: the error
// document of a failed request (registry_error_text), a token server's
// answer (parse_token_response) and its refusal (token_error_text). The first
// byte picks which (mod 3), the second the HTTP status; the rest is the body.
//
// Properties: neither throws (nlohmann::json's typed accessors do on a wrong
// type); an error text is never empty, and for a body that is not JSON it is
// the status's own text; a parsed token is non-empty with a lifetime in
// (0, kMaxTokenLifetime]; a refusal is kCorrupt and quotes nothing of the body.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "fuzz/fuzz_check.h"
#include "remote/auth.h"
#include "remote/registry.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace imgpull;
  if (size < 2) return 0;
  std::string_view body(reinterpret_cast<const char*>(data + 2), size - 2);
  static constexpr long kStatuses[] = {400, 401, 403, 404, 405, 408, 416, 429, 500, 502, 503};
  const long status = kStatuses[data[1] % std::size(kStatuses)];
  if (data[0] % 3 == 2) {
    FUZZ_CHECK(!token_error_text(status, body).empty());
    return 0;
  }
  if (data[0] % 3 == 0) {
    std::string text = registry_error_text(status, body);
    FUZZ_CHECK(!text.empty());
    if (!nlohmann::json::accept(body)) {
      FUZZ_CHECK(text == registry_error_text(status, "")) << text;
    }
    return 0;
  }
  auto token = parse_token_response(body);
  if (token) {
    FUZZ_CHECK(!token->token.empty());
    FUZZ_CHECK(token->lifetime.count() > 0 && token->lifetime <= kMaxTokenLifetime)
        << token->lifetime.count();
  } else {
    FUZZ_CHECK(token.error().code() == ErrorCode::kCorrupt);
    FUZZ_CHECK(token.error().message() == "answered without a token") << token.error().message();
  }
  return 0;
}
