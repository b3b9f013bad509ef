#include "imgpull/registry.h"

#include <arpa/inet.h>
#include <fmt/format.h>

#include <curl/curl.h>

#include <algorithm>
#include <cctype>
#include <cinttypes>
#include <cstdio>
#include <ctime>
#include <random>
#include <thread>
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

ErrorCode code_for_status(long status) {
  if (status == 401) return ErrorCode::kUnauthorized;
  if (status == 403) return ErrorCode::kDenied;
  if (status == 404) return ErrorCode::kNotFound;
  if (status >= 400 && status < 500 && status != 408 && status != 429) return ErrorCode::kInvalidArgument;
  return ErrorCode::kUnavailable;
}

bool is_retryable_status(long status) { return status >= 500 || status == 408 || status == 429; }

// Network trouble, not a refusal: worth another attempt.
bool is_retryable_error(const Error& error) { return error.code() == ErrorCode::kUnavailable; }

// Retry-After is seconds or an HTTP date.
std::optional<std::chrono::milliseconds> parse_retry_after(const std::string& value) {
  if (value.empty()) return std::nullopt;
  if (std::all_of(value.begin(), value.end(), [](unsigned char c) { return std::isdigit(c); })) {
    return std::chrono::seconds(std::stoll(value.substr(0, 9)));
  }
  time_t when = curl_getdate(value.c_str(), nullptr);
  if (when < 0) return std::nullopt;
  return std::chrono::seconds(std::max<time_t>(0, when - std::time(nullptr)));
}

// Counts attempts and sleeps between them: exponential back-off with full
// jitter (so many clients do not retry in step), or what Retry-After asks.
class Retrier {
 public:
  Retrier(const RetryPolicy& policy, std::function<bool()> cancelled)
      : policy_(policy), cancelled_(std::move(cancelled)), random_(std::random_device{}()) {}

  // Records a failed attempt; false when no attempt is left.
  bool again(const Error& failure, std::optional<std::chrono::milliseconds> retry_after = std::nullopt) {
    history_ += (history_.empty() ? "" : "; ") + failure.message();
    last_code_ = failure.code();
    if (attempt_ >= policy_.max_retries) return false;
    std::chrono::milliseconds ceiling = std::min<std::chrono::milliseconds>(
        policy_.max_delay, policy_.base_delay * (int64_t{1} << std::min(attempt_, 20)));
    std::uniform_int_distribution<long long> jitter(ceiling.count() / 2, ceiling.count());
    auto delay = retry_after ? std::min(*retry_after, policy_.max_delay)
                             : std::chrono::milliseconds(jitter(random_));
    ++attempt_;
    auto until = std::chrono::steady_clock::now() + delay;
    while (std::chrono::steady_clock::now() < until) {
      if (cancelled_ && cancelled_()) return false;
      std::this_thread::sleep_for(std::min<std::chrono::steady_clock::duration>(
          std::chrono::milliseconds(50), until - std::chrono::steady_clock::now()));
    }
    return true;
  }

  // The error once attempts run out: says how many were made and what each met.
  Error give_up(std::string_view what) const {
    if (attempt_ == 0) return Error(last_code_, std::string(what) + ": " + history_);
    return Error(last_code_, fmt::format("{}: gave up after {} attempts: {}", what, attempt_ + 1, history_));
  }

 private:
  const RetryPolicy& policy_;
  std::function<bool()> cancelled_;
  std::mt19937_64 random_;
  int attempt_ = 0;
  std::string history_;
  ErrorCode last_code_ = ErrorCode::kUnavailable;
};

// "bytes 100-199/200" -> 100.
std::optional<uint64_t> content_range_start(const std::string& value) {
  uint64_t start = 0;
  if (std::sscanf(value.c_str(), "bytes %" SCNu64 "-", &start) != 1) return std::nullopt;
  return start;
}

}  // namespace

std::string registry_error_text(long status, std::string_view body) {
  auto doc = nlohmann::json::parse(body, nullptr, false);
  if (doc.is_object() && doc.contains("errors") && doc["errors"].is_array()) {
    std::string text;
    for (const auto& e : doc["errors"]) {
      if (!e.is_object()) continue;
      // Only string members count: json::value("message", "") threw
      // nlohmann::json::type_error on {"message": 1} or null, and whatever a
      // registry sends must not end the process.
      auto string_member = [&](const char* key) {
        auto it = e.find(key);
        return it != e.end() && it->is_string() ? it->get<std::string>() : std::string();
      };
      std::string message = string_member("message");
      if (message.empty()) message = string_member("code");
      if (message.empty()) continue;
      if (!text.empty()) text += "; ";
      text += message;
    }
    if (!text.empty()) return text;
  }
  switch (status) {
    case 401: return "unauthorized";
    case 403: return "denied";
    case 404: return "not found";
    case 429: return "too many requests";
    default: return "HTTP " + std::to_string(status);
  }
}

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
      auth_(client, ref_.domain, options.credentials, plain_http),
      retry_(options.retry) {}

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

Result<http::Response> RegistryClient::send(http::Request request, const http::BodySink* sink,
                                            const http::HeadHandler* on_head) {
  for (int attempt = 0;; ++attempt) {
    auto authorization = auth_.authorization(scope_);
    if (!authorization) return std::move(authorization).error();
    request.authorization = *authorization;
    auto response = sink != nullptr ? client_.stream(request, *sink, on_head ? *on_head : http::HeadHandler())
                                    : client_.fetch(request);
    if (!response.ok() || response->status != 401 || attempt > 0) return response;
    // The token expired or the registry wants another scope: take its new
    // challenge and try once more.
    auto challenges = parse_www_authenticate(response->header("www-authenticate"));
    auth_.reject(scope_, challenges.ok() ? std::move(challenges).value() : std::vector<Challenge>{});
  }
}

Error RegistryClient::response_error(const http::Response& response, std::string_view what) const {
  return Error(code_for_status(response.status),
               fmt::format("{}: {} (HTTP {} from {})", what, registry_error_text(response.status, response.body),
                           response.status, response.url));
}

Result<FetchedManifest> RegistryClient::get_manifest(const std::string& selector) {
  http::Request request;
  request.url = fmt::format("{}/v2/{}/manifests/{}", base_url_, ref_.path, selector);
  request.headers.emplace_back("Accept", manifest_accept_header());
  request.max_buffered_body = kMaxManifestBytes;
  IMGPULL_ASSIGN_OR_RETURN(http::Response response, fetch_with_retries(request, "manifest " + selector));
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
  IMGPULL_ASSIGN_OR_RETURN(http::Response response, fetch_with_retries(request, "blob " + blob.digest.str()));
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

Result<http::Response> RegistryClient::fetch_with_retries(const http::Request& request,
                                                          std::string_view what) {
  Retrier retrier(retry_, nullptr);
  while (true) {
    auto response = send(request, nullptr);
    if (response.ok() && !is_retryable_status(response->status)) return response;
    if (!response.ok() && !is_retryable_error(response.error())) return response;
    Error failure = response.ok() ? response_error(*response, "GET") : response.error();
    auto retry_after = response.ok() ? parse_retry_after(response->header("retry-after")) : std::nullopt;
    if (!retrier.again(failure, retry_after)) return retrier.give_up(what);
  }
}

Status RegistryClient::fetch_blob(const Descriptor& blob, BlobSink& sink) {
  return fetch_blob_from(fmt::format("{}/v2/{}/blobs/{}", base_url_, ref_.path, blob.digest.str()),
                         /*authenticated=*/true, blob, sink);
}

Status RegistryClient::fetch_foreign_blob(const Descriptor& blob, BlobSink& sink) {
  std::string tried;
  for (const auto& url : blob.urls) {
    if (!url.starts_with("https://") && !url.starts_with("http://")) continue;
    Status fetched = fetch_blob_from(url, /*authenticated=*/false, blob, sink);
    if (fetched.ok()) return fetched;
    if (fetched.error().code() == ErrorCode::kCorrupt || sink.cancelled()) return fetched;
    tried += (tried.empty() ? "" : "; ") + fetched.error().message();
    IMGPULL_TRY(sink.restart());  // the next URL starts from the first byte
  }
  return Error(ErrorCode::kUnavailable,
               fmt::format("non-distributable blob {}: no usable URL ({})", blob.digest.str(),
                           tried.empty() ? "none is http(s)" : tried));
}

Status RegistryClient::fetch_blob_from(const std::string& url, bool authenticated, const Descriptor& blob,
                                       BlobSink& sink) {
  const std::string what = "blob " + blob.digest.str();
  Retrier retrier(retry_, [&] { return sink.cancelled(); });
  while (true) {
    const uint64_t offset = sink.bytes_held();
    // Every byte arrived before the connection broke: asking for more would
    // only get a 416 (which distribution answers with a broken body).
    if (offset > 0 && blob.size >= 0 && offset >= static_cast<uint64_t>(blob.size)) return {};
    http::Request request;
    request.url = url;
    if (offset > 0) request.headers.emplace_back("Range", fmt::format("bytes={}-", offset));
    bool sink_failed = false;  // the sink's own errors are final, never retried
    http::HeadHandler on_head = [&](const http::Response& head) -> Status {
      if (head.status == 206) {
        auto start = content_range_start(head.header("content-range"));
        if (start != offset) {
          sink_failed = true;
          return Error(ErrorCode::kCorrupt,
                       fmt::format("asked for bytes from {} and got Content-Range \"{}\"", offset,
                                   head.header("content-range")));
        }
        return {};
      }
      if (offset == 0) return {};
      Status restarted = sink.restart();  // 200 to a Range request: the whole blob again
      sink_failed = !restarted.ok();
      return restarted;
    };
    http::BodySink body = [&](const char* data, size_t size) -> Status {
      Status written = sink.write(data, size);
      sink_failed = !written.ok();
      return written;
    };
    auto response = authenticated ? send(request, &body, &on_head) : client_.stream(request, body, on_head);
    std::optional<std::chrono::milliseconds> retry_after;
    Error failure(ErrorCode::kUnavailable, "");
    if (!response.ok()) {
      if (sink_failed || !is_retryable_error(response.error())) return std::move(response).error();
      failure = std::move(response).error();
    } else if (response->status == 200 || response->status == 206) {
      // A complete answer with a Content-Length is what the registry says the
      // blob is: a wrong size is then its lie, for the sink's size check to
      // report. Without one, an early end may just be a dropped connection.
      if (blob.size < 0 || sink.bytes_held() >= static_cast<uint64_t>(blob.size) ||
          !response->header("content-length").empty()) {
        return {};
      }
      failure = Error(ErrorCode::kUnavailable, fmt::format("connection closed after {} of {} bytes",
                                                          sink.bytes_held(), blob.size));
    } else {
      if (!is_retryable_status(response->status)) return response_error(*response, what);
      retry_after = parse_retry_after(response->header("retry-after"));
      failure = response_error(*response, "GET");
    }
    if (!retrier.again(failure, retry_after)) return retrier.give_up(what);
  }
}

}  // namespace imgpull
