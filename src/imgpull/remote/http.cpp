#include "remote/http.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <fmt/format.h>
#include <openssl/ssl.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cctype>
#include <cstdlib>
#include <map>
#include <mutex>

#include "base/text.h"
#include "remote/url.h"

namespace imgpull::http {
namespace {

bool is_redirect(long status) {
  return status == 301 || status == 302 || status == 303 || status == 307 || status == 308;
}

// The only header values a debug log shows: a registry's rate-limit figures
// (RateLimit-Limit, RateLimit-Remaining, ... and Docker Hub's
// Docker-RateLimit-Source, the address or account counted), which say why a
// pull was refused and carry no secret.
bool is_loggable_header(std::string_view lower_case_name) {
  return lower_case_name == "ratelimit" || lower_case_name.starts_with("ratelimit-") ||
         lower_case_name == "docker-ratelimit-source";
}

// " [ratelimit-limit: 100;w=21600, ratelimit-remaining: 99;w=21600]", or "".
std::string loggable_headers(const Response& response) {
  std::string shown;
  for (const auto& [name, value] : response.headers) {
    if (!is_loggable_header(name)) continue;
    std::string printable = value;  // whatever the server sent: no terminal control sequences
    for (char& c : printable) {
      if (static_cast<unsigned char>(c) < 0x20 || static_cast<unsigned char>(c) >= 0x7f) c = '?';
    }
    shown += fmt::format("{}{}: {}", shown.empty() ? "" : ", ", name, printable);
  }
  return shown.empty() ? "" : " [" + shown + "]";
}

// The state of one exchange, seen by libcurl's callbacks.
struct Exchange {
  CURL* handle = nullptr;
  Response* response = nullptr;
  const BodySink* sink = nullptr;  // null: buffer the body
  const HeadHandler* on_head = nullptr;
  bool head_seen = false;
  size_t max_body = 0;
  uint64_t body_bytes = 0;
  std::optional<Error> abort_reason;
  const std::function<bool()>* cancelled = nullptr;          // the client's (a signal)
  const std::function<bool()>* request_cancelled = nullptr;  // the request's own
  // The server asked for a TLS client certificate and we had none to give.
  bool client_certificate_requested = false;

  long status() const {
    long code = 0;
    curl_easy_getinfo(handle, CURLINFO_RESPONSE_CODE, &code);
    return code;
  }
};

size_t on_body(char* data, size_t, size_t size, void* user) {
  auto* ex = static_cast<Exchange*>(user);
  ex->body_bytes += size;
  long status = ex->status();
  if (ex->sink != nullptr && status >= 200 && status < 300) {
    if (!ex->head_seen && ex->on_head != nullptr && *ex->on_head) {
      ex->head_seen = true;
      ex->response->status = status;
      Status started = (*ex->on_head)(*ex->response);
      if (!started.ok()) {
        ex->abort_reason = std::move(started).error();
        return 0;
      }
    }
    Status st = (*ex->sink)(data, size);
    if (!st.ok()) {
      ex->abort_reason = std::move(st).error();
      return 0;  // makes libcurl stop with CURLE_WRITE_ERROR
    }
    return size;
  }
  std::string& body = ex->response->body;
  size_t limit = ex->sink != nullptr ? kMaxErrorBody : ex->max_body;
  if (body.size() + size > limit) {
    if (ex->sink != nullptr || is_redirect(status)) {  // only for a message: keep what fits
      body.append(data, limit - std::min(limit, body.size()));
      return size;
    }
    ex->abort_reason = Error(ErrorCode::kTooLarge,
                             fmt::format("response body is larger than the limit of {}",
                                         format_bytes_binary(limit)));
    return 0;
  }
  body.append(data, size);
  return size;
}

// libcurl calls this often during a transfer, also while no byte arrives.
int on_progress(void* user, curl_off_t, curl_off_t, curl_off_t, curl_off_t) {
  auto* ex = static_cast<Exchange*>(user);
  if (ex->cancelled != nullptr && *ex->cancelled && (*ex->cancelled)()) {
    if (!ex->abort_reason) ex->abort_reason = Error(ErrorCode::kCancelled, "interrupted");
    return 1;  // CURLE_ABORTED_BY_CALLBACK
  }
  if (ex->request_cancelled != nullptr && (*ex->request_cancelled)()) {
    if (!ex->abort_reason) ex->abort_reason = Error(ErrorCode::kCancelled, "cancelled");
    return 1;
  }
  return 0;
}

size_t on_header(char* data, size_t, size_t size, void* user) {
  auto* ex = static_cast<Exchange*>(user);
  std::string_view line(data, size);
  if (line.starts_with("HTTP/")) {  // a new response (after a 100 Continue, say)
    ex->response->headers.clear();
    return size;
  }
  auto colon = line.find(':');
  if (colon != std::string_view::npos) {
    ex->response->headers.emplace_back(ascii_lowered(trim_space(line.substr(0, colon))),
                                       std::string(trim_space(line.substr(colon + 1))));
  }
  return size;
}

Error transport_error(CURLcode code, const char* detail, std::string_view url) {
  std::string what = detail[0] != '\0' ? detail : curl_easy_strerror(code);
  std::string where = loggable_url(url);
  switch (code) {
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
      return Error(ErrorCode::kUnavailable, fmt::format("cannot resolve host for {}: {}", where, what));
    case CURLE_COULDNT_CONNECT:
      return Error(ErrorCode::kUnavailable, fmt::format("cannot connect to {}: {}", where, what));
    case CURLE_OPERATION_TIMEDOUT:
      return Error(ErrorCode::kUnavailable, fmt::format("timed out talking to {}: {}", where, what));
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CACERT_BADFILE:
      return Error(ErrorCode::kTls,
                   fmt::format("TLS certificate of {} is not trusted: {}", where, what));
    case CURLE_SSL_CERTPROBLEM:
      return Error(ErrorCode::kTls, fmt::format("client certificate for {} cannot be used: {}", where, what));
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_SEND_ERROR:
      if (code != CURLE_SSL_CONNECT_ERROR) {
        return Error(ErrorCode::kUnavailable, fmt::format("request to {} failed: {}", where, what));
      }
      return Error(ErrorCode::kTls, fmt::format("TLS handshake with {} failed: {}", where, what));
    default:
      return Error(ErrorCode::kUnavailable, fmt::format("request to {} failed: {}", where, what));
  }
}

// The exchange being performed on this thread, for OpenSSL's callbacks: a
// transfer runs start to end inside curl_easy_perform on one thread.
thread_local Exchange* current_exchange = nullptr;

// OpenSSL calls this when the server requests a client certificate and none
// is configured: noting it lets us say so, where the failure itself (a TLS
// 1.3 server closing after the handshake) reads like a network error.
int on_client_certificate_request(SSL*, X509**, EVP_PKEY**) {
  if (current_exchange != nullptr) current_exchange->client_certificate_requested = true;
  return 0;  // none: the handshake goes on without one
}

CURLcode on_ssl_context(CURL*, void* ssl_ctx, void*) {
  SSL_CTX_set_client_cert_cb(static_cast<SSL_CTX*>(ssl_ctx), on_client_certificate_request);
  return CURLE_OK;
}

// libcurl asks for a lock per kind of shared data (DNS cache, TLS sessions).
struct ShareLocks {
  std::array<std::mutex, CURL_LOCK_DATA_LAST> locks;
};

void lock_share(CURL*, curl_lock_data data, curl_lock_access, void* user) {
  static_cast<ShareLocks*>(user)->locks[data].lock();
}

void unlock_share(CURL*, curl_lock_data data, void* user) {
  static_cast<ShareLocks*>(user)->locks[data].unlock();
}

}  // namespace

struct Client::Impl {
  ClientOptions options;
  // Debug lines say when each request started, from here: a timeline of the pull.
  std::chrono::steady_clock::time_point created = std::chrono::steady_clock::now();
  ProxySettings proxy_settings;
  std::mutex ca_lock;
  std::map<std::string, std::string> ca_bundles;  // extra CA PEM -> system bundle + it

  const std::string& ca_bundle_with(const std::string& extra_pem);
  CURLSH* share = nullptr;
  ShareLocks share_locks;
  std::mutex pool_lock;
  std::vector<CURL*> idle_handles;

  CURL* borrow() {
    {
      std::lock_guard lock(pool_lock);
      if (!idle_handles.empty()) {
        CURL* h = idle_handles.back();
        idle_handles.pop_back();
        return h;
      }
    }
    return curl_easy_init();
  }

  void give_back(CURL* h) {
    std::lock_guard lock(pool_lock);
    idle_handles.push_back(h);
  }

  Result<Response> perform(const Request& request, const BodySink* sink, const HeadHandler* on_head);
  Result<Response> perform_hop(CURL* h, const Request& request, const std::string& url,
                               bool send_authorization, bool as_get, const BodySink* sink,
                               const HeadHandler* on_head);
};

Client::Client(ClientOptions options) : impl_(std::make_unique<Impl>()) {
  static std::once_flag global_init;
  std::call_once(global_init, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
  impl_->options = std::move(options);
  impl_->proxy_settings = impl_->options.proxy ? *impl_->options.proxy : ProxySettings::from_environment();
  impl_->share = curl_share_init();
  curl_share_setopt(impl_->share, CURLSHOPT_LOCKFUNC, lock_share);
  curl_share_setopt(impl_->share, CURLSHOPT_UNLOCKFUNC, unlock_share);
  curl_share_setopt(impl_->share, CURLSHOPT_USERDATA, &impl_->share_locks);
  curl_share_setopt(impl_->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS);
  curl_share_setopt(impl_->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION);
}

Client::~Client() {
  for (CURL* h : impl_->idle_handles) curl_easy_cleanup(h);
  curl_share_cleanup(impl_->share);
}

const std::string& Client::Impl::ca_bundle_with(const std::string& extra_pem) {
  std::lock_guard lock(ca_lock);
  auto found = ca_bundles.find(extra_pem);
  if (found != ca_bundles.end()) return found->second;
  std::string bundle;
  // The bundle libcurl was built to use (Debian: /etc/ssl/certs/ca-certificates.crt).
  CURL* probe = curl_easy_init();
  char* default_path = nullptr;
  if (probe != nullptr && curl_easy_getinfo(probe, CURLINFO_CAINFO, &default_path) == CURLE_OK &&
      default_path != nullptr) {
    if (FILE* f = std::fopen(default_path, "rb")) {
      char buf[64 * 1024];
      size_t n = 0;
      while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) bundle.append(buf, n);
      std::fclose(f);
    }
  }
  if (probe != nullptr) curl_easy_cleanup(probe);
  if (!bundle.empty() && bundle.back() != '\n') bundle += '\n';
  bundle += extra_pem;
  return ca_bundles.emplace(extra_pem, std::move(bundle)).first->second;
}

Result<Response> Client::fetch(const Request& request) {
  return impl_->perform(request, nullptr, nullptr);
}

Result<Response> Client::stream(const Request& request, const BodySink& sink, const HeadHandler& on_head) {
  return impl_->perform(request, &sink, &on_head);
}

Result<Response> Client::Impl::perform(const Request& request, const BodySink* sink,
                                       const HeadHandler* on_head) {
  CURL* h = borrow();
  if (h == nullptr) return Error(ErrorCode::kInternal, "libcurl could not make a handle");
  const std::string first_origin = origin_of(request.url);
  std::string url = request.url;
  bool as_get = false;
  Result<Response> result = Error(ErrorCode::kInternal, "no request made");
  for (int hop = 0; hop <= request.max_redirects; ++hop) {
    bool same_origin = origin_of(url) == first_origin;
    result = perform_hop(h, request, url, same_origin, as_get, sink, on_head);
    if (!result.ok() || !is_redirect(result->status) || request.max_redirects == 0) break;
    std::string location = result->header("location");
    if (location.empty()) break;
    auto next = resolve_url(url, location);
    if (!next.ok()) {
      result = std::move(next).error();
      break;
    }
    // A POST answered by 301/302/303 is retried as GET, as browsers and curl do.
    if (result->status != 307 && result->status != 308) as_get = true;
    url = std::move(next).value();
    if (hop == request.max_redirects) {
      result = Error(ErrorCode::kUnavailable,
                     fmt::format("too many redirects (more than {}) from {}", request.max_redirects,
                                 loggable_url(request.url)));
    }
  }
  give_back(h);
  return result;
}

Result<Response> Client::Impl::perform_hop(CURL* h, const Request& request, const std::string& url,
                                           bool send_authorization, bool as_get,
                                           const BodySink* sink, const HeadHandler* on_head) {
  curl_easy_reset(h);  // keeps the connection, forgets the previous request's options
  Response response;
  response.url = url;  // known to a HeadHandler too
  Exchange ex;
  ex.handle = h;
  ex.response = &response;
  ex.sink = sink;
  ex.on_head = on_head;
  ex.max_body = request.max_buffered_body;
  char error_buffer[CURL_ERROR_SIZE] = {0};

  curl_slist* headers = nullptr;
  for (const auto& [name, value] : request.headers) {
    headers = curl_slist_append(headers, (name + ": " + value).c_str());
  }
  if (send_authorization && request.authorization) {
    headers = curl_slist_append(headers, ("Authorization: " + *request.authorization).c_str());
  }

  curl_easy_setopt(h, CURLOPT_URL, url.c_str());
  curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(h, CURLOPT_SHARE, share);
  curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers);
  curl_easy_setopt(h, CURLOPT_USERAGENT, options.user_agent.c_str());
  curl_easy_setopt(h, CURLOPT_ERRORBUFFER, error_buffer);
  curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, options.connect_timeout_seconds);
  curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, 1L);
  curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME, options.stall_timeout_seconds);
  curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(h, CURLOPT_WRITEDATA, &ex);
  curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
  curl_easy_setopt(h, CURLOPT_HEADERDATA, &ex);
  if (options.cancelled || request.cancelled) {
    if (options.cancelled) ex.cancelled = &options.cancelled;
    if (request.cancelled) ex.request_cancelled = &request.cancelled;
    curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, on_progress);
    curl_easy_setopt(h, CURLOPT_XFERINFODATA, &ex);
  }
  // Large receive buffers cut the number of callbacks (and syscalls) per blob.
  curl_easy_setopt(h, CURLOPT_BUFFERSIZE, 512L * 1024);

  // The request's own TLS settings belong to its own origin; any other
  // origin (a redirect to a CDN) gets what is configured for that host.
  std::string host = host_of_origin(origin_of(url));
  TlsSettings tls;
  if (request.tls && origin_of(url) == origin_of(request.url)) {
    tls = *request.tls;
  } else if (options.tls_for_host) {
    auto configured = options.tls_for_host(host);
    if (!configured) {
      curl_slist_free_all(headers);
      return std::move(configured).error();
    }
    tls = std::move(configured).value();
  }
  curl_blob ca_blob{};
  if (!tls.ca_pem.empty()) {
    // The system bundle and the extra CAs together, as Docker and containerd
    // add certs.d CAs to the system pool rather than replace it.
    const std::string& bundle = ca_bundle_with(tls.ca_pem);
    ca_blob.data = const_cast<char*>(bundle.data());  // libcurl copies it
    ca_blob.len = bundle.size();
    ca_blob.flags = CURL_BLOB_COPY;
    curl_easy_setopt(h, CURLOPT_CAINFO_BLOB, &ca_blob);
  }
  if (!tls.client_cert_file.empty()) {
    curl_easy_setopt(h, CURLOPT_SSLCERT, tls.client_cert_file.c_str());
    curl_easy_setopt(h, CURLOPT_SSLCERTTYPE, "PEM");
    if (!tls.client_key_file.empty()) curl_easy_setopt(h, CURLOPT_SSLKEY, tls.client_key_file.c_str());
  }
  if (tls.client_cert_file.empty()) curl_easy_setopt(h, CURLOPT_SSL_CTX_FUNCTION, on_ssl_context);
  if (tls.skip_verify || !request.verify_peer) {
    curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 0L);
    curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 0L);
  }
  // Proxies are chosen here, not by libcurl's own reading of the
  // environment: the same variables as Docker (HTTP_PROXY in upper case
  // too), and loopback hosts never proxied.
  std::string proxy = proxy_settings.proxy_for(url);
  curl_easy_setopt(h, CURLOPT_PROXY, proxy.c_str());  // "" = no proxy, whatever the environment says
  if (!proxy.empty() && !proxy_settings.no_proxy.empty()) {
    curl_easy_setopt(h, CURLOPT_NOPROXY, proxy_settings.no_proxy.c_str());
  }
  std::string method = as_get ? "GET" : request.method;
  if (method == "HEAD") {
    curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
  } else if (method == "POST") {
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, request.body.c_str());
    curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(request.body.size()));
  } else if (method != "GET") {
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method.c_str());
  }

  current_exchange = &ex;
  auto started = std::chrono::steady_clock::now();
  CURLcode code = curl_easy_perform(h);
  current_exchange = nullptr;
  curl_slist_free_all(headers);
  curl_off_t micros = 0;
  curl_easy_getinfo(h, CURLINFO_TOTAL_TIME_T, &micros);
  response.status = ex.status();
  response.url = url;

  if (options.debug_log) {
    std::string outcome = code == CURLE_OK || ex.abort_reason
                              ? std::to_string(response.status)
                              : std::string("error: ") + curl_easy_strerror(code);
    double at = std::chrono::duration<double>(started - created).count();
    options.debug_log(fmt::format("+{:.3f}s {} {} -> {} ({}, {} ms){}", at, method, loggable_url(url), outcome,
                                  format_bytes_binary(ex.body_bytes), micros / 1000,
                                  loggable_headers(response)));
  }
  if (ex.abort_reason) return std::move(*ex.abort_reason);
  if (code != CURLE_OK) {
    Error error = transport_error(code, error_buffer, url);
    if (ex.client_certificate_requested) {
      error = Error(ErrorCode::kTls,
                    fmt::format("{} requires a TLS client certificate and none is configured for {} (put "
                                "client.cert and client.key in certs.d/{}/, or set client in hosts.toml): {}",
                                loggable_url(url), host, host, error.message()));
    }
    if (!proxy.empty()) {
      std::string shown = origin_of(proxy);  // never the proxy's user:password
      error.wrap(fmt::format("through proxy {}", shown.empty() ? "(from the environment)" : shown));
    }
    return error;
  }
  return response;
}

std::string Response::header(std::string_view name) const {
  for (const auto& [key, value] : headers) {
    if (key == name) return value;
  }
  return "";
}

std::vector<std::string> Response::header_values(std::string_view name) const {
  std::vector<std::string> out;
  for (const auto& [key, value] : headers) {
    if (key == name) out.push_back(value);
  }
  return out;
}

ProxySettings ProxySettings::from_environment() {
  // Go's httpproxy.FromEnvironment: the upper-case name wins when set.
  auto env = [](const char* upper, const char* lower) -> std::string {
    for (const char* name : {upper, lower}) {
      const char* v = std::getenv(name);
      if (v != nullptr && *v != '\0') return v;
    }
    return "";
  };
  ProxySettings p;
  p.http_proxy = env("HTTP_PROXY", "http_proxy");
  p.https_proxy = env("HTTPS_PROXY", "https_proxy");
  p.no_proxy = env("NO_PROXY", "no_proxy");
  return p;
}

std::string ProxySettings::proxy_for(std::string_view url) const {
  std::string origin = origin_of(url);
  if (origin.empty()) return "";
  if (is_loopback_host(host_of_origin(origin))) return "";
  return origin.starts_with("https://") ? https_proxy : http_proxy;
}

bool is_tls_handshake_failure(const Error& error) {
  return error.code() == ErrorCode::kTls && error.message().starts_with("TLS handshake");
}

std::string format_bytes_binary(uint64_t bytes) {
  if (bytes < 1024) return fmt::format("{} B", bytes);
  static constexpr std::array<const char*, 4> kUnits = {"KiB", "MiB", "GiB", "TiB"};
  double value = static_cast<double>(bytes) / 1024;
  size_t unit = 0;
  while (value >= 1024 && unit + 1 < kUnits.size()) {
    value /= 1024;
    ++unit;
  }
  return fmt::format("{:.1f} {}", value, kUnits[unit]);
}

}  // namespace imgpull::http
