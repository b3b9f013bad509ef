// Turning a registry's 401 challenge into an Authorization header.
//
// The registry says how it wants to be addressed in `WWW-Authenticate`:
// Basic (send the credentials each time) or Bearer (fetch a token for a scope
// from the realm, anonymously or with credentials, then send the token).
// Tokens are cached per realm, service and scope until shortly before they
// expire, so a pull asks for a token once, however many blobs it fetches.
//
//   Authenticator auth(client, "docker.io", lookup_credentials, /*plain_http=*/false);
//   auth.set_challenges(parse_www_authenticate(ping.header("www-authenticate")).value());
//   IMGPULL_ASSIGN_OR_RETURN(auto header, auth.authorization("repository:library/x:pull"));
//   if (header) request.authorization = *header;
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "remote/challenge.h"
#include "imgpull/credentials.h"
#include "imgpull/error.h"
#include "remote/http.h"

namespace imgpull {

class Authenticator {
 public:
  // `registry_is_plain_http`: the registry itself is spoken to over http; only
  // then may a token realm be plain http too (a token sent in clear text is
  // no worse than the registry traffic itself).
  Authenticator(http::Client& client, std::string registry_domain, CredentialLookup credentials,
                bool registry_is_plain_http);

  // The challenges of the registry's answer to `GET /v2/` (or of any 401).
  void set_challenges(std::vector<Challenge> challenges);

  // The Authorization value for requests in `scope`; std::nullopt when the
  // registry asked for no authentication.
  Result<std::optional<std::string>> authorization(const std::string& scope);

  // A request in `scope` got 401 although it carried our header: forget the
  // cached token (it expired or lacks a scope) and take the fresh challenge.
  void reject(const std::string& scope, std::vector<Challenge> fresh_challenges);

 private:
  struct CachedToken {
    std::string header;
    std::chrono::steady_clock::time_point expires;
  };

  Result<std::optional<Credentials>> credentials();
  Result<std::string> fetch_token(const Challenge& bearer, const std::string& scope);
  Result<std::string> basic_header();

  http::Client& client_;
  std::string registry_domain_;
  CredentialLookup lookup_;
  bool registry_is_plain_http_;

  std::mutex mutex_;  // download threads share one Authenticator
  std::vector<Challenge> challenges_;
  std::optional<std::optional<Credentials>> credentials_;  // looked up once, lazily
  std::map<std::string, CachedToken> tokens_;              // key: realm \n service \n scope
};

// "user:pass" in base64, as Basic auth and docker's config.json carry it.
std::string base64_encode(std::string_view bytes);

// Docker's default when a token response has no expires_in (the token spec
// says 60 seconds).
inline constexpr std::chrono::seconds kDefaultTokenLifetime{60};
// Longer lifetimes are cut to this: no pull needs a token for longer (a later
// request just fetches a new one), and it keeps the expiry arithmetic far from
// overflowing whatever expires_in a token server sends.
inline constexpr std::chrono::seconds kMaxTokenLifetime = std::chrono::hours(24);

struct TokenResponse {
  std::string token;               // "token", else "access_token"; never empty
  std::chrono::seconds lifetime;   // expires_in, kDefaultTokenLifetime without one,
                                   // at most kMaxTokenLifetime
};

// What a token server said when it refused (401, 403, 5xx), for messages: its
// "details", "error_description" or first errors[].message, else "HTTP <status>".
std::string token_error_text(long status, std::string_view body);

// A token server's 200 answer {"token": "...", "expires_in": 300, ...};
// kCorrupt (quoting nothing of the body: it holds secrets) when it has no token.
Result<TokenResponse> parse_token_response(std::string_view body);

}  // namespace imgpull
