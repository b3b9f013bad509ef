#include "imgpull/registry.h"

#include <arpa/inet.h>
#include <fmt/format.h>

#include <algorithm>
#include <nlohmann/json.hpp>

namespace imgpull {
namespace {

// "host:port" -> "host"; "[::1]:5000" -> "::1".
std::string strip_port(std::string_view host) {
  if (host.starts_with('[')) {
    auto close = host.find(']');
    return std::string(host.substr(1, close == std::string_view::npos ? host.size() : close - 1));
  }
  auto colon = host.rfind(':');
  if (colon != std::string_view::npos && host.find(':') == colon) return std::string(host.substr(0, colon));
  return std::string(host);
}

// The registry's own words from an error document
// {"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown",...}]}.
std::string registry_error_text(const http::Response& response) {
  auto doc = nlohmann::json::parse(response.body, nullptr, false);
  if (doc.is_object() && doc.contains("errors") && doc["errors"].is_array()) {
    std::string text;
    for (const auto& e : doc["errors"]) {
      if (!e.is_object()) continue;
      std::string message = e.value("message", "");
      std::string code = e.value("code", "");
      if (message.empty()) message = code;
      if (!text.empty()) text += "; ";
      text += message;
    }
    if (!text.empty()) return text;
  }
  switch (response.status) {
    case 401: return "unauthorized";
    case 403: return "denied";
    case 404: return "not found";
    case 429: return "too many requests";
    default: return "HTTP " + std::to_string(response.status);
  }
}

ErrorCode code_for_status(long status) {
  if (status == 401) return ErrorCode::kUnauthorized;
  if (status == 403) return ErrorCode::kDenied;
  if (status == 404) return ErrorCode::kNotFound;
  if (status >= 400 && status < 500 && status != 408 && status != 429) return ErrorCode::kInvalidArgument;
  return ErrorCode::kUnavailable;
}

}  // namespace

bool is_loopback_host(std::string_view host) {
  std::string name = strip_port(host);
  if (name == "localhost" || name == "::1") return true;
  in_addr addr{};
  if (inet_pton(AF_INET, name.c_str(), &addr) == 1) return (ntohl(addr.s_addr) >> 24) == 127;
  return false;
}

bool is_insecure_host(std::string_view host, const std::vector<std::string>& insecure_registries) {
  std::string name = strip_port(host);
  return std::any_of(insecure_registries.begin(), insecure_registries.end(),
                     [&](const std::string& h) { return h == host || h == name; });
}

RegistryClient::RegistryClient(http::Client& client, Reference ref, std::string base_url,
                               bool plain_http, const RegistryOptions& options)
    : client_(client),
      ref_(std::move(ref)),
      base_url_(std::move(base_url)),
      scope_("repository:" + ref_.path + ":pull"),
      auth_(client, ref_.domain, options.credentials, plain_http) {}

Result<std::unique_ptr<RegistryClient>> RegistryClient::connect(http::Client& client,
                                                                const Reference& ref,
                                                                const RegistryOptions& options) {
  std::string host = ref.registry_host();
  bool plain_allowed = is_loopback_host(host) || is_insecure_host(host, options.insecure_registries);
  http::Request ping;
  ping.url = "https://" + host + "/v2/";
  auto response = client.fetch(ping);
  bool plain_http = false;
  // Like Docker, a host allowed plain http is tried with TLS first; unlike
  // Docker, an untrusted certificate there is an error, not a reason to
  // downgrade.
  if (!response.ok() && plain_allowed &&
      (response.error().code() != ErrorCode::kTls || http::is_tls_handshake_failure(response.error()))) {
    ping.url = "http://" + host + "/v2/";
    response = client.fetch(ping);
    plain_http = true;
  }
  if (!response.ok()) {
    Error e = std::move(response).error();
    if (e.code() == ErrorCode::kTls && !http::is_tls_handshake_failure(e)) {
      e.wrap(fmt::format("registry {} (put its CA certificate in certs.d/{}/ca.crt)", host, host));
    }
    return e;
  }
  std::unique_ptr<RegistryClient> registry(new RegistryClient(
      client, ref, (plain_http ? "http://" : "https://") + host, plain_http, options));
  if (response->status == 401) {
    auto challenges = parse_www_authenticate(response->header("www-authenticate"));
    if (!challenges) return std::move(challenges).error().wrap(ping.url);
    registry->auth_.set_challenges(std::move(challenges).value());
  } else if (response->status == 404) {
    return Error(ErrorCode::kNotFound,
                 fmt::format("{} does not serve the registry API (GET {} answered 404)", host, ping.url));
  } else if (response->status != 200) {
    return registry->response_error(*response, "ping");
  }
  return registry;
}

Result<http::Response> RegistryClient::send(http::Request request, const http::BodySink* sink) {
  for (int attempt = 0;; ++attempt) {
    auto authorization = auth_.authorization(scope_);
    if (!authorization) return std::move(authorization).error();
    request.authorization = *authorization;
    auto response = sink != nullptr ? client_.stream(request, *sink) : client_.fetch(request);
    if (!response.ok() || response->status != 401 || attempt > 0) return response;
    // The token expired or the registry wants another scope: take its new
    // challenge and try once more.
    auto challenges = parse_www_authenticate(response->header("www-authenticate"));
    auth_.reject(scope_, challenges.ok() ? std::move(challenges).value() : std::vector<Challenge>{});
  }
}

Error RegistryClient::response_error(const http::Response& response, std::string_view what) const {
  return Error(code_for_status(response.status),
               fmt::format("{}: {} (HTTP {} from {})", what, registry_error_text(response),
                           response.status, response.url));
}

Result<FetchedManifest> RegistryClient::get_manifest(const std::string& selector) {
  http::Request request;
  request.url = fmt::format("{}/v2/{}/manifests/{}", base_url_, ref_.path, selector);
  request.headers.emplace_back("Accept", manifest_accept_header());
  request.max_buffered_body = kMaxManifestBytes;
  IMGPULL_ASSIGN_OR_RETURN(http::Response response, send(request, nullptr));
  if (response.status != 200) return response_error(response, "manifest " + selector);
  Digest actual = Digest::of(response.body);
  if (auto wanted = Digest::parse(selector); wanted.ok() && *wanted != actual) {
    return Error(ErrorCode::kCorrupt,
                 fmt::format("manifest {} from {}: the registry sent bytes that hash to {}", selector,
                             request.url, actual.str()));
  }
  return FetchedManifest{std::move(response.body), response.header("content-type"), actual};
}

Result<std::string> RegistryClient::get_blob(const Descriptor& blob, size_t max_bytes) {
  if (blob.size < 0 || static_cast<uint64_t>(blob.size) > max_bytes) {
    return Error(ErrorCode::kTooLarge, fmt::format("blob {} declares {} bytes, over the limit of {}",
                                                   blob.digest.str(), blob.size, max_bytes));
  }
  http::Request request;
  request.url = fmt::format("{}/v2/{}/blobs/{}", base_url_, ref_.path, blob.digest.str());
  request.max_buffered_body = max_bytes;
  IMGPULL_ASSIGN_OR_RETURN(http::Response response, send(request, nullptr));
  if (response.status != 200) return response_error(response, "blob " + blob.digest.str());
  Digest actual = Digest::of(response.body, blob.digest.algorithm());
  if (response.body.size() != static_cast<size_t>(blob.size) || actual != blob.digest) {
    return Error(ErrorCode::kCorrupt,
                 fmt::format("blob {} from {}: expected {} bytes with that digest, got {} bytes "
                             "hashing to {}",
                             blob.digest.str(), request.url, blob.size, response.body.size(),
                             actual.str()));
  }
  return std::move(response.body);
}

Status RegistryClient::stream_blob(const Descriptor& blob, const http::BodySink& sink) {
  http::Request request;
  request.url = fmt::format("{}/v2/{}/blobs/{}", base_url_, ref_.path, blob.digest.str());
  IMGPULL_ASSIGN_OR_RETURN(http::Response response, send(request, &sink));
  if (response.status != 200) return response_error(response, "blob " + blob.digest.str());
  return {};
}

}  // namespace imgpull
