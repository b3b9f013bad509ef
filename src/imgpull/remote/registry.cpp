#include "remote/registry.h"

#include <arpa/inet.h>
#include <fmt/format.h>

#include <curl/curl.h>

#include <algorithm>
#include <charconv>
#include <cctype>
#include <cinttypes>
#include <cstdio>
#include <ctime>
#include <random>
#include <thread>
#include <nlohmann/json.hpp>

#include "remote/rate_limit.h"

namespace imgpull {
namespace {

std::string registry_error_text(const http::Response& response) {
  return imgpull::registry_error_text(response.status, response.body);
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

// `error`, the last of a request refused with 429, with what the registry
// said of its rate limit and what helps: once, not with every attempt.
Error rate_limited(Error error, const http::Response& response,
                   std::optional<std::chrono::milliseconds> retry_after) {
  std::optional<std::chrono::seconds> wait;
  if (retry_after) wait = std::chrono::duration_cast<std::chrono::seconds>(*retry_after);
  return Error(error.code(), error.message() + "; " + explain_rate_limit(parse_rate_limit(response), wait));
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

// "bytes 100-199/200" -> {100, 199, 200}; the total is nullopt for "*".
struct ContentRange {
  uint64_t first = 0;
  uint64_t last = 0;
  std::optional<uint64_t> total;
};
std::optional<ContentRange> parse_content_range(const std::string& value) {
  ContentRange r;
  int consumed = 0;
  if (std::sscanf(value.c_str(), "bytes %" SCNu64 "-%" SCNu64 "/%n", &r.first, &r.last, &consumed) != 2 ||
      consumed == 0 || r.last < r.first) {
    return std::nullopt;
  }
  std::string total = value.substr(static_cast<size_t>(consumed));
  if (total != "*") {
    uint64_t t = 0;
    int end = 0;
    if (std::sscanf(total.c_str(), "%" SCNu64 "%n", &t, &end) != 1 || static_cast<size_t>(end) != total.size()) {
      return std::nullopt;
    }
    r.total = t;
  }
  return r;
}

// Whether a 206 answers what was asked: the bytes from `offset`, not past
// `end` (a server may send fewer), of a blob of `size` bytes (when known).
// Anything else is never taken as the blob's bytes.
Status check_partial_content(const std::string& header, uint64_t offset, uint64_t end, int64_t size) {
  auto range = parse_content_range(header);
  bool fits = range && range->first == offset && range->last < end &&
              (size < 0 || !range->total || *range->total == static_cast<uint64_t>(size));
  if (fits) return {};
  return Error(ErrorCode::kCorrupt, fmt::format("asked for bytes {}-{} and got Content-Range \"{}\"", offset,
                                                end - 1, header));
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

bool is_insecure_host(std::string_view host, const std::vector<std::string>& insecure_registries) {
  std::string name = http::strip_port(host);
  return std::any_of(insecure_registries.begin(), insecure_registries.end(),
                     [&](const std::string& h) { return h == host || h == name; });
}

// One host serving the registry, with what was learnt by pinging it.
struct RegistryClient::Endpoint {
  RegistryEndpoint config;
  std::string credentials_domain;  // whose credentials it gets
  bool connected = false;
  std::string base_url;          // "https://host:port/v2", once connected
  bool plain_http = false;
  std::unique_ptr<Authenticator> auth;

  // "mirror https://m:5000/v2" / "https://registry:5000/v2", for messages.
  std::string describe() const { return (config.upstream ? "" : "mirror ") + config.base_url(); }
};

RegistryClient::RegistryClient(http::Client& client, Reference ref, const RegistryOptions& options)
    : client_(client),
      ref_(std::move(ref)),
      scope_("repository:" + ref_.path + ":pull"),
      options_(options),
      hosts_source_(options.hosts.source) {
  std::vector<RegistryEndpoint> configs = options.hosts.endpoints;
  if (configs.empty()) {
    RegistryEndpoint self;
    self.host = ref_.registry_host();
    configs.push_back(std::move(self));
  }
  for (auto& config : configs) {
    auto e = std::make_unique<Endpoint>();
    // The registry itself gets the registry's credentials (docker.io →
    // Docker Hub's key); any other host its own, so a mirror never sees the
    // upstream's password.
    e->credentials_domain = config.host == ref_.registry_host() ? ref_.domain : config.host;
    e->config = std::move(config);
    endpoints_.push_back(std::move(e));
  }
}

RegistryClient::~RegistryClient() = default;

Result<std::unique_ptr<RegistryClient>> RegistryClient::connect(http::Client& client,
                                                                const Reference& ref,
                                                                const RegistryOptions& options) {
  // Nothing is sent yet: a host is reached by the first request that needs
  // it (see ensure_connected), and one that cannot be reached fails that
  // request, naming each host tried and what it answered.
  return std::unique_ptr<RegistryClient>(new RegistryClient(client, ref, options));
}

namespace {

// An untrusted certificate: say where a CA certificate for the host goes.
Error with_ca_hint(Error error, const RegistryEndpoint& endpoint) {
  const std::string& host = endpoint.host;
  if (error.code() == ErrorCode::kTls && !http::is_tls_handshake_failure(error) && !endpoint.tls &&
      error.message().find("client certificate") == std::string::npos) {
    error.wrap(fmt::format("registry {} (put its CA certificate in certs.d/{}/ca.crt)", host, host));
  }
  return error;
}

}  // namespace

namespace {

// An https attempt that failed in a way meaning the server speaks no TLS.
bool speaks_no_tls(const Result<http::Response>& r) {
  return !r.ok() && (r.error().code() != ErrorCode::kTls || http::is_tls_handshake_failure(r.error()));
}

// May the endpoint be spoken to in plain http: written so in hosts.toml, or
// a loopback or --insecure-registry host for which hosts.toml wrote no scheme.
bool plain_http_allowed(const RegistryEndpoint& endpoint, const std::vector<std::string>& insecure_registries) {
  if (endpoint.scheme == "http") return true;
  if (endpoint.scheme_written) return false;
  return is_loopback_host(endpoint.host) || is_insecure_host(endpoint.host, insecure_registries);
}

// For a host allowed plain http: whether its server speaks TLS at all. Like
// Docker, such a host is tried with TLS first; unlike Docker, an untrusted
// certificate there is an error, not a reason to downgrade. The question is
// asked without verifying: a verifying handshake loads the CA bundle (some
// 25 ms) before it learns that the server (usually a local plain-http
// registry) does not. The probe carries no credentials and its answer is not
// used: a server that speaks TLS is then spoken to verified.
bool probe_says_plain_http(http::Client& client, const RegistryEndpoint& endpoint) {
  http::Request probe;
  probe.tls = endpoint.tls;
  probe.url = "https://" + endpoint.host + endpoint.path + "/";
  probe.verify_peer = false;
  probe.max_redirects = 0;  // any answer, a redirect too, means TLS is spoken
  return speaks_no_tls(client.fetch(probe));
}

}  // namespace

Result<Ping> ping_endpoint(http::Client& client, const RegistryEndpoint& endpoint,
                           const std::vector<std::string>& insecure_registries) {
  const std::string& host = endpoint.host;
  bool explicit_http = endpoint.scheme == "http";
  bool plain_allowed = plain_http_allowed(endpoint, insecure_registries);
  http::Request ping;
  ping.tls = endpoint.tls;
  ping.url = (explicit_http ? "http://" : "https://") + host + endpoint.path + "/";
  bool plain_http = explicit_http || (plain_allowed && probe_says_plain_http(client, endpoint));
  Result<http::Response> response = Error(ErrorCode::kInternal, "no ping");
  if (explicit_http || !plain_http) response = client.fetch(ping);
  if (!explicit_http && (plain_http || (plain_allowed && speaks_no_tls(response)))) {
    ping.url = "http://" + host + endpoint.path + "/";
    response = client.fetch(ping);
    plain_http = true;
  }
  if (!response.ok()) return with_ca_hint(std::move(response).error(), endpoint);
  return Ping{(plain_http ? "http://" : "https://") + host + endpoint.path, plain_http, std::move(response).value()};
}

Status ping_with_credentials(http::Client& client, std::string_view host, std::string_view registry_domain,
                             const Credentials& credentials, const std::vector<std::string>& insecure_registries) {
  RegistryEndpoint endpoint;
  endpoint.host = std::string(host);
  IMGPULL_ASSIGN_OR_RETURN(Ping ping, ping_endpoint(client, endpoint, insecure_registries));
  const std::string url = ping.base_url + "/";
  if (ping.response.status == 200) return {};  // asks for nothing: docker, too, says it succeeded
  if (ping.response.status != 401) {
    return Error(code_for_status(ping.response.status),
                 fmt::format("{} answered HTTP {} to GET {}: {}", host, ping.response.status, url,
                             registry_error_text(ping.response)));
  }
  auto challenges = parse_www_authenticate(ping.response.header("www-authenticate"));
  if (!challenges) return std::move(challenges).error().wrap(url);
  CredentialLookup given = [&](std::string_view) -> Result<std::optional<Credentials>> {
    return std::optional<Credentials>(credentials);
  };
  Authenticator auth(client, std::string(registry_domain), given, ping.plain_http);
  auth.set_challenges(std::move(challenges).value());
  IMGPULL_ASSIGN_OR_RETURN(std::optional<std::string> authorization, auth.authorization(""));
  http::Request check;
  check.url = url;
  check.authorization = authorization;
  IMGPULL_ASSIGN_OR_RETURN(http::Response response, client.fetch(check));
  if (response.status == 401 || response.status == 403) {
    return Error(ErrorCode::kUnauthorized,
                 fmt::format("{} refused the credentials of {}: {} (HTTP {} from GET {}): wrong username or password?",
                             host, credentials.username, registry_error_text(response), response.status, url));
  }
  if (response.status != 200) {
    return Error(code_for_status(response.status),
                 fmt::format("{} answered HTTP {} to GET {}: {}", host, response.status, url,
                             registry_error_text(response)));
  }
  return {};
}

Status RegistryClient::ensure_connected(Endpoint& e) {
  std::lock_guard lock(connect_mutex_);
  if (e.connected) return {};
  // No ping (GET /v2/): the first request (the manifest) answers what a ping
  // would — reachable? which authentication? — so a ping would only cost a
  // round trip. A 401 brings the challenge, which send() answers. Only a host
  // that may be plain http is first asked whether it speaks TLS.
  const RegistryEndpoint& config = e.config;
  bool plain_http = config.scheme == "http" ||
                    (plain_http_allowed(config, options_.insecure_registries) && probe_says_plain_http(client_, config));
  e.base_url = (plain_http ? "http://" : "https://") + config.host + config.path;
  e.plain_http = plain_http;
  e.auth = std::make_unique<Authenticator>(client_, e.credentials_domain, options_.credentials, plain_http);
  e.connected = true;
  return {};
}

template <typename T>
Result<T> RegistryClient::on_endpoints(HostCapability capability, std::string_view what,
                                       const std::function<Result<T>(Endpoint&, bool last)>& attempt,
                                       const std::function<bool(const Error&)>& final_error) {
  std::vector<Endpoint*> candidates;
  for (auto& e : endpoints_) {
    if (e->config.can(capability)) candidates.push_back(e.get());
  }
  if (candidates.empty()) {
    return Error(ErrorCode::kInvalidArgument,
                 fmt::format("{}: no host configured for {} may {} (capabilities in {})", what, ref_.domain,
                             capability == kCapabilityResolve ? "resolve tags" : "pull", hosts_source_));
  }
  std::string tried;
  std::optional<Error> last_error;
  for (size_t i = 0; i < candidates.size(); ++i) {
    Endpoint& e = *candidates[i];
    bool last = i + 1 == candidates.size();
    Status ready = ensure_connected(e);
    Result<T> result = ready.ok() ? attempt(e, last) : Result<T>(ready.error());
    if (result.ok()) return result;
    if (endpoints_.size() == 1 || final_error(result.error())) return result;
    tried += fmt::format("{}{}: {}", tried.empty() ? "" : "; ", e.describe(), result.error().message());
    last_error = std::move(result).error();
  }
  return Error(last_error->code(),
               fmt::format("{}: every host failed (from {}): {}", what, hosts_source_, tried));
}

std::string RegistryClient::url(const Endpoint& e, std::string_view kind, std::string_view name) const {
  // A mirror serving several registries learns which one from ?ns=, as
  // containerd sends it.
  std::string ns = e.config.upstream ? "" : "?ns=" + http::url_encode(ref_.domain);
  return fmt::format("{}/{}/{}/{}{}", e.base_url, ref_.path, kind, name, ns);
}

RetryPolicy RegistryClient::policy_for(bool last) const {
  RetryPolicy policy = options_.retry;
  if (!last) policy.max_retries = std::min(policy.max_retries, 1);
  return policy;
}

Result<http::Response> RegistryClient::send(Endpoint& e, http::Request request, const http::BodySink* sink,
                                            const http::HeadHandler* on_head) {
  request.tls = e.config.tls;
  for (int attempt = 0;; ++attempt) {
    auto authorization = e.auth->authorization(scope_);
    if (!authorization) return std::move(authorization).error();
    request.authorization = *authorization;
    auto response = sink != nullptr ? client_.stream(request, *sink, on_head ? *on_head : http::HeadHandler())
                                    : client_.fetch(request);
    if (!response.ok()) return with_ca_hint(std::move(response).error(), e.config);
    if (response->status != 401 || attempt > 0) return response;
    // The token expired or the registry wants another scope: take its new
    // challenge and try once more.
    auto challenges = parse_www_authenticate(response->header("www-authenticate"));
    e.auth->reject(scope_, challenges.ok() ? std::move(challenges).value() : std::vector<Challenge>{});
  }
}

Error RegistryClient::response_error(const http::Response& response, std::string_view what) const {
  return Error(code_for_status(response.status),
               fmt::format("{}: {} (HTTP {} from {})", what, registry_error_text(response.status, response.body),
                           response.status, response.url));
}

Result<FetchedManifest> RegistryClient::get_manifest(const std::string& selector) {
  bool by_digest = Digest::parse(selector).ok();
  const std::string what = "manifest " + selector;
  return on_endpoints<FetchedManifest>(
      by_digest ? kCapabilityPull : kCapabilityResolve, what,
      [&](Endpoint& e, bool last) -> Result<FetchedManifest> {
        http::Request request = manifest_request(e, "GET", selector);
        IMGPULL_ASSIGN_OR_RETURN(http::Response response,
                                 fetch_with_retries(e, request, what, policy_for(last)));
        if (response.status != 200) return response_error(response, what);
        // Hashed as the digest asked for says (a HEAD may have named a sha512 one).
        auto wanted = Digest::parse(selector);
        Digest actual = Digest::of(response.body, wanted.ok() ? wanted->algorithm() : DigestAlgorithm::kSha256);
        if (wanted.ok() && *wanted != actual) {
          return Error(ErrorCode::kCorrupt,
                       fmt::format("manifest {} from {}: the registry sent bytes that hash to {}", selector,
                                   request.url, actual.str()));
        }
        return FetchedManifest{std::move(response.body), response.header("content-type"), actual};
      },
      [](const Error&) { return false; });
}

http::Request RegistryClient::manifest_request(const Endpoint& e, std::string_view method,
                                               const std::string& selector) const {
  http::Request request;
  request.method = std::string(method);
  request.url = url(e, "manifests", selector);
  request.headers.emplace_back("Accept", manifest_accept_header());
  request.max_buffered_body = kMaxManifestBytes;
  return request;
}

Result<ManifestHead> RegistryClient::head_manifest(const std::string& selector) {
  bool by_digest = Digest::parse(selector).ok();
  const std::string what = "manifest " + selector;
  return on_endpoints<ManifestHead>(
      by_digest ? kCapabilityPull : kCapabilityResolve, what,
      [&](Endpoint& e, bool last) -> Result<ManifestHead> {
        IMGPULL_ASSIGN_OR_RETURN(http::Response response,
                                 fetch_with_retries(e, manifest_request(e, "HEAD", selector), what, policy_for(last)));
        if (response.status != 200) return response_error(response, "HEAD " + what);
        ManifestHead head;
        if (auto digest = Digest::parse(response.header("docker-content-digest")); digest.ok()) head.digest = *digest;
        head.content_type = response.header("content-type");
        uint64_t size = 0;
        std::string length = response.header("content-length");
        auto [end, ec] = std::from_chars(length.data(), length.data() + length.size(), size);
        if (!length.empty() && ec == std::errc() && end == length.data() + length.size()) head.size = size;
        return head;
      },
      [](const Error&) { return false; });
}

Result<std::string> RegistryClient::get_blob(const Descriptor& blob, size_t max_bytes) {
  if (blob.size < 0 || static_cast<uint64_t>(blob.size) > max_bytes) {
    return Error(ErrorCode::kTooLarge, fmt::format("blob {} declares {} bytes, over the limit of {}",
                                                   blob.digest.str(), blob.size, max_bytes));
  }
  const std::string what = "blob " + blob.digest.str();
  return on_endpoints<std::string>(
      kCapabilityPull, what,
      [&](Endpoint& e, bool last) -> Result<std::string> {
        http::Request request;
        request.url = url(e, "blobs", blob.digest.str());
        request.max_buffered_body = max_bytes;
        IMGPULL_ASSIGN_OR_RETURN(http::Response response, fetch_with_retries(e, request, what, policy_for(last)));
        if (response.status != 200) return response_error(response, what);
        Digest actual = Digest::of(response.body, blob.digest.algorithm());
        if (response.body.size() != static_cast<size_t>(blob.size) || actual != blob.digest) {
          return Error(ErrorCode::kCorrupt,
                       fmt::format("blob {} from {}: expected {} bytes with that digest, got {} bytes "
                                   "hashing to {}",
                                   blob.digest.str(), request.url, blob.size, response.body.size(),
                                   actual.str()));
        }
        return std::move(response.body);
      },
      [](const Error&) { return false; });
}

Result<http::Response> RegistryClient::fetch_with_retries(Endpoint& e, const http::Request& request,
                                                          std::string_view what, const RetryPolicy& policy) {
  Retrier retrier(policy, options_.cancelled);
  while (true) {
    auto response = send(e, request, nullptr);
    if (response.ok() && !is_retryable_status(response->status)) return response;
    if (!response.ok() && !is_retryable_error(response.error())) return response;
    Error failure = response.ok() ? response_error(*response, request.method) : response.error();
    auto retry_after = response.ok() ? parse_retry_after(response->header("retry-after")) : std::nullopt;
    if (!retrier.again(failure, retry_after)) {
      Error error = retrier.give_up(what);
      if (response.ok() && response->status == 429) return rate_limited(std::move(error), *response, retry_after);
      return error;
    }
  }
}

Status RegistryClient::fetch_blob(const Descriptor& blob, BlobSink& sink) {
  // A piece of a blob whose earlier request was redirected goes straight to
  // the target, with no registry round trip and no registry credentials. A
  // target that refuses (a signed URL expired) is asked for again through
  // the registry.
  if (sink.range_end()) {
    if (auto location = blob_location(blob.digest)) {
      bool sink_failed = false;
      RetryPolicy once = options_.retry;
      once.max_retries = std::min(once.max_retries, 1);
      Status st = fetch_blob_from(nullptr, *location, blob, sink, once, &sink_failed);
      if (st.ok() || sink_failed || sink.cancelled() || st.error().code() == ErrorCode::kCorrupt) return st;
      set_blob_location(blob.digest, "");
    }
  }
  bool sink_failed = false;
  auto fetched = on_endpoints<bool>(
      kCapabilityPull, "blob " + blob.digest.str(),
      [&](Endpoint& e, bool last) -> Result<bool> {
        Status st = fetch_blob_from(&e, url(e, "blobs", blob.digest.str()), blob, sink, policy_for(last),
                                    &sink_failed);
        if (!st.ok()) return std::move(st).error();
        return true;
      },
      // The sink's own failures (a full disk, a cancelled pull) would fail
      // on the next host too.
      [&](const Error&) { return sink_failed || sink.cancelled(); });
  if (!fetched) return std::move(fetched).error();
  return {};
}

std::optional<std::string> RegistryClient::blob_location(const Digest& blob) const {
  std::lock_guard lock(locations_mutex_);
  auto it = blob_locations_.find(blob);
  if (it == blob_locations_.end() || it->second.empty()) return std::nullopt;
  return it->second;
}

void RegistryClient::set_blob_location(const Digest& blob, const std::string& url) {
  std::lock_guard lock(locations_mutex_);
  blob_locations_[blob] = url;
}

Status RegistryClient::fetch_foreign_blob(const Descriptor& blob, BlobSink& sink) {
  std::string tried;
  for (const auto& url : blob.urls) {
    if (!url.starts_with("https://") && !url.starts_with("http://")) continue;
    bool sink_failed = false;
    Status fetched = fetch_blob_from(nullptr, url, blob, sink, options_.retry, &sink_failed);
    if (fetched.ok()) return fetched;
    if (fetched.error().code() == ErrorCode::kCorrupt || sink.cancelled()) return fetched;
    tried += (tried.empty() ? "" : "; ") + fetched.error().message();
    IMGPULL_TRY(sink.restart());  // the next URL starts from the first byte
  }
  return Error(ErrorCode::kUnavailable,
               fmt::format("non-distributable blob {}: no usable URL ({})", blob.digest.str(),
                           tried.empty() ? "none is http(s)" : tried));
}

Status RegistryClient::fetch_blob_from(Endpoint* endpoint, const std::string& url, const Descriptor& blob,
                                       BlobSink& sink, const RetryPolicy& policy, bool* sink_failed_out) {
  const std::string what = "blob " + blob.digest.str();
  const std::optional<uint64_t> piece_end = sink.range_end();
  Retrier retrier(policy, [&] { return sink.cancelled() || (options_.cancelled && options_.cancelled()); });
  while (true) {
    const uint64_t offset = sink.bytes_held();
    // Every byte arrived before the connection broke: asking for more would
    // only get a 416 (which distribution answers with a broken body).
    if (piece_end && offset >= *piece_end) return {};
    if (!piece_end && offset > 0 && blob.size >= 0 && offset >= static_cast<uint64_t>(blob.size)) return {};
    const uint64_t end = piece_end ? *piece_end : (blob.size >= 0 ? static_cast<uint64_t>(blob.size) : UINT64_MAX);
    http::Request request;
    request.url = url;
    if (piece_end) {
      request.headers.emplace_back("Range", fmt::format("bytes={}-{}", offset, end - 1));
    } else if (offset > 0) {
      request.headers.emplace_back("Range", fmt::format("bytes={}-", offset));
    }
    request.cancelled = [&] { return sink.cancelled(); };  // also while the transfer stalls
    bool& sink_failed = *sink_failed_out;  // the sink's own errors are final, never retried
    sink_failed = false;
    bool satisfied = false;  // the sink wants no more: the transfer was stopped on purpose
    http::HeadHandler on_head = [&](const http::Response& head) -> Status {
      // Redirected: the blob's other pieces go there directly from now on.
      if (endpoint != nullptr && head.url != url) set_blob_location(blob.digest, head.url);
      if (head.status == 206) {
        Status fits = check_partial_content(head.header("content-range"), offset, end, blob.size);
        sink_failed = !fits.ok();
        return fits;
      }
      // 200 to a Range request: the whole blob, from its first byte.
      if (offset == 0 && !piece_end) return {};
      Status restarted = sink.restart();
      if (!restarted.ok() && sink.satisfied()) satisfied = true;
      sink_failed = !restarted.ok() && !satisfied;
      return restarted;
    };
    http::BodySink body = [&](const char* data, size_t size) -> Status {
      Status written = sink.write(data, size);
      sink_failed = !written.ok();
      if (written.ok() && sink.satisfied()) {
        satisfied = true;
        return Error(ErrorCode::kCancelled, "the piece is complete");
      }
      return written;
    };
    auto response = endpoint != nullptr ? send(*endpoint, request, &body, &on_head)
                                        : client_.stream(request, body, on_head);
    if (satisfied) return {};
    std::optional<std::chrono::milliseconds> retry_after;
    Error failure(ErrorCode::kUnavailable, "");
    if (!response.ok()) {
      if (sink_failed || !is_retryable_error(response.error())) return std::move(response).error();
      failure = std::move(response).error();
    } else if (response->status == 200 || response->status == 206) {
      // A piece ends where its answer ends; the plan gives what is missing to
      // the next free connection.
      if (piece_end) return {};
      // A complete answer with a Content-Length is what the registry says the
      // blob is: a wrong size is then its lie, for the sink's size check to
      // report. Without one, an early end may just be a dropped connection.
      if (blob.size < 0 || sink.bytes_held() >= static_cast<uint64_t>(blob.size) ||
          !response->header("content-length").empty()) {
        return {};
      }
      failure = Error(ErrorCode::kUnavailable, fmt::format("connection closed after {} of {} bytes",
                                                          sink.bytes_held(), blob.size));
    } else if (response->status == 416) {
      // Asked within the size the descriptor gives, refused: the server's
      // blob is not that size.
      return Error(ErrorCode::kCorrupt,
                   fmt::format("{}: asked for bytes {}-{} of {} and the server answered 416 (Content-Range \"{}\") "
                               "from {}",
                               what, offset, end - 1, blob.size, response->header("content-range"), response->url));
    } else {
      if (!is_retryable_status(response->status)) return response_error(*response, what);
      retry_after = parse_retry_after(response->header("retry-after"));
      failure = response_error(*response, "GET");
    }
    if (!retrier.again(failure, retry_after)) return retrier.give_up(what);
  }
}

}  // namespace imgpull
