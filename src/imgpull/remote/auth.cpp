#include "remote/auth.h"

#include <fmt/format.h>
#include <openssl/evp.h>

#include <algorithm>

#include <nlohmann/json.hpp>

namespace imgpull {
namespace {

// Renew a little before the registry would reject the token.
constexpr double kTokenLifetimeUsed = 0.9;
// A token response is a small JSON document; anything bigger is not one.
constexpr size_t kMaxTokenResponse = 1024 * 1024;

const Challenge* find_challenge(const std::vector<Challenge>& challenges, std::string_view scheme) {
  for (const auto& c : challenges) {
    if (c.scheme == scheme) return &c;
  }
  return nullptr;
}


}  // namespace

std::string base64_encode(std::string_view bytes) {
  std::string out(4 * ((bytes.size() + 2) / 3), '\0');
  int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                          reinterpret_cast<const unsigned char*>(bytes.data()),
                          static_cast<int>(bytes.size()));
  out.resize(static_cast<size_t>(n));
  return out;
}

Authenticator::Authenticator(http::Client& client, std::string registry_domain,
                             CredentialLookup credentials, bool registry_is_plain_http)
    : client_(client),
      registry_domain_(std::move(registry_domain)),
      lookup_(std::move(credentials)),
      registry_is_plain_http_(registry_is_plain_http) {}

void Authenticator::set_challenges(std::vector<Challenge> challenges) {
  std::lock_guard lock(mutex_);
  challenges_ = std::move(challenges);
}

void Authenticator::reject(const std::string& scope, std::vector<Challenge> fresh_challenges) {
  std::lock_guard lock(mutex_);
  for (auto it = tokens_.begin(); it != tokens_.end();) {
    it = it->first.ends_with("\n" + scope) ? tokens_.erase(it) : std::next(it);
  }
  if (!fresh_challenges.empty()) challenges_ = std::move(fresh_challenges);
}

Result<std::optional<Credentials>> Authenticator::credentials() {
  if (!credentials_) {
    if (!lookup_) {
      credentials_.emplace(std::nullopt);
    } else {
      IMGPULL_ASSIGN_OR_RETURN(auto found, lookup_(registry_domain_));
      credentials_.emplace(std::move(found));
    }
  }
  return *credentials_;
}

Result<std::optional<std::string>> Authenticator::authorization(const std::string& scope) {
  std::lock_guard lock(mutex_);
  if (const Challenge* bearer = find_challenge(challenges_, "bearer")) {
    std::string key = bearer->param("realm") + "\n" + bearer->param("service") + "\n" + scope;
    auto cached = tokens_.find(key);
    if (cached != tokens_.end() && std::chrono::steady_clock::now() < cached->second.expires) {
      return std::optional<std::string>(cached->second.header);
    }
    IMGPULL_ASSIGN_OR_RETURN(std::string header, fetch_token(*bearer, scope));
    return std::optional<std::string>(header);
  }
  if (find_challenge(challenges_, "basic") != nullptr) {
    IMGPULL_ASSIGN_OR_RETURN(std::string header, basic_header());
    return std::optional<std::string>(header);
  }
  if (!challenges_.empty()) {
    return Error(ErrorCode::kUnsupported,
                 fmt::format("{} asks for authentication scheme \"{}\", which imgpull does not speak",
                             registry_domain_, challenges_.front().scheme));
  }
  return std::optional<std::string>();
}

Result<std::string> Authenticator::basic_header() {
  IMGPULL_ASSIGN_OR_RETURN(auto creds, credentials());
  if (!creds || creds->username.empty()) {
    return Error(ErrorCode::kUnauthorized,
                 fmt::format("{} requires a login and no credentials are configured for it "
                             "(docker login, or DOCKER_CONFIG / ~/.docker/config.json)",
                             registry_domain_));
  }
  return "Basic " + base64_encode(creds->username + ":" + creds->password);
}

Result<std::string> Authenticator::fetch_token(const Challenge& bearer, const std::string& scope) {
  std::string realm = bearer.param("realm");
  std::string service = bearer.param("service");
  if (!realm.starts_with("https://") && !realm.starts_with("http://")) {
    return Error(ErrorCode::kUnauthorized,
                 fmt::format("{} named a token realm that is not an http(s) URL: \"{}\"",
                             registry_domain_, realm));
  }
  if (realm.starts_with("http://") && !registry_is_plain_http_) {
    return Error(ErrorCode::kUnauthorized,
                 fmt::format("refusing to ask for a token over plain http at {} while the registry "
                             "{} is served over https",
                             realm, registry_domain_));
  }
  IMGPULL_ASSIGN_OR_RETURN(auto creds, credentials());

  http::Request request;
  request.max_buffered_body = kMaxTokenResponse;
  std::string who = "anonymously";
  if (creds && !creds->identity_token.empty()) {
    // The OAuth2 refresh-token grant, as docker does after `docker login`
    // stored an identity token instead of a password.
    request.method = "POST";
    request.url = realm;
    request.headers.emplace_back("Content-Type", "application/x-www-form-urlencoded");
    request.body = fmt::format(
        "grant_type=refresh_token&service={}&scope={}&client_id=imgpull&refresh_token={}",
        http::url_encode(service), http::url_encode(scope), http::url_encode(creds->identity_token));
    who = "with an identity token";
  } else {
    // No scope: a login check (docker login asks for a token the same way).
    request.url = fmt::format("{}{}service={}{}", realm, realm.find('?') == std::string::npos ? "?" : "&",
                              http::url_encode(service), scope.empty() ? "" : "&scope=" + http::url_encode(scope));
    if (creds && !creds->username.empty()) {
      request.url += "&account=" + http::url_encode(creds->username);
      request.authorization = "Basic " + base64_encode(creds->username + ":" + creds->password);
      who = "as " + creds->username;
    }
  }
  auto response = client_.fetch(request);
  if (!response.ok()) {
    return std::move(response).error().wrap(fmt::format("getting a token from {}", realm));
  }
  if (response->status == 401 || response->status == 403) {
    return Error(ErrorCode::kUnauthorized,
                 fmt::format("authentication {} failed at {}: {}", who, realm,
                             token_error_text(response->status, response->body)));
  }
  if (response->status != 200) {
    return Error(ErrorCode::kUnavailable,
                 fmt::format("token server {} answered HTTP {}: {}", realm, response->status,
                             token_error_text(response->status, response->body)));
  }
  auto answer = parse_token_response(response->body);
  if (!answer) return std::move(answer).error().wrap(fmt::format("token server {}", realm));
  std::string header = "Bearer " + answer->token;
  tokens_[realm + "\n" + service + "\n" + scope] = CachedToken{
      header, std::chrono::steady_clock::now() +
                  std::chrono::duration_cast<std::chrono::steady_clock::duration>(answer->lifetime *
                                                                                  kTokenLifetimeUsed)};
  return header;
}

std::string token_error_text(long status, std::string_view body) {
  auto json = nlohmann::json::parse(body, nullptr, false);
  if (json.is_object()) {
    if (json.contains("details") && json["details"].is_string()) return json["details"];
    if (json.contains("error_description") && json["error_description"].is_string())
      return json["error_description"];
    // Only a string message: dump() recurses once per nesting level, and a
    // 1 MiB answer of nested arrays overflowed the stack.
    if (json.contains("errors") && json["errors"].is_array() && !json["errors"].empty() &&
        json["errors"][0].is_object() && json["errors"][0].contains("message") &&
        json["errors"][0]["message"].is_string())
      return json["errors"][0]["message"].dump();
  }
  return fmt::format("HTTP {}", status);
}

Result<TokenResponse> parse_token_response(std::string_view body) {
  auto json = nlohmann::json::parse(body, nullptr, false);
  std::string token;
  if (json.is_object()) {
    for (const char* field : {"token", "access_token"}) {
      if (json.contains(field) && json[field].is_string() && !json[field].get<std::string>().empty()) {
        token = json[field].get<std::string>();
        break;
      }
    }
  }
  if (token.empty()) return Error(ErrorCode::kCorrupt, "answered without a token");
  std::chrono::seconds lifetime = kDefaultTokenLifetime;
  // Clamped: a huge expires_in (9223372036854775807) overflowed the expiry
  // arithmetic in fetch_token (a double-to-integer conversion out of range:
  // undefined behaviour).
  if (json.contains("expires_in") && json["expires_in"].is_number_integer() &&
      json["expires_in"].get<int64_t>() > 0) {
    lifetime = std::chrono::seconds(std::min<int64_t>(json["expires_in"].get<int64_t>(),
                                                      kMaxTokenLifetime.count()));
  }
  return TokenResponse{std::move(token), lifetime};
}

}  // namespace imgpull
