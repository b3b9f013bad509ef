// HTTP for talking to registries, over libcurl.
//
// One Client serves a whole pull and may be used from several threads at
// once: each call borrows an easy handle from a pool, so a handle keeps its
// connection alive between calls (N download threads = N reused connections)
// while DNS answers and TLS sessions are shared between handles.
//
// Redirects are followed here, not by libcurl, so that every hop is logged and
// the Authorization header is only ever sent to the origin it was meant for.
//
//   http::Client client({.debug_log = [](std::string_view l) { std::cerr << l << "\n"; }});
//   http::Request req{.url = "https://127.0.0.1:5000/v2/"};
//   IMGPULL_ASSIGN_OR_RETURN(http::Response res, client.fetch(req));
//   if (res.status == 401) std::cerr << res.header("www-authenticate") << "\n";
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "imgpull/error.h"
#include "remote/url.h"  // the URL helpers are part of this API

namespace imgpull::http {

// Bodies we keep in memory (manifests, tokens, error documents) are bounded;
// 4 MiB is the manifest limit containerd and the distribution registry use.
inline constexpr size_t kDefaultMaxBufferedBody = 4 * 1024 * 1024;
// Error bodies are only for messages: a few KiB say all a registry says.
inline constexpr size_t kMaxErrorBody = 16 * 1024;

// How to speak TLS to one origin: from certs.d (ca.crt, client.cert/.key) or
// a hosts.toml entry (ca, client, skip_verify).
struct TlsSettings {
  // Extra CA certificates (PEM text), trusted in addition to the system bundle.
  std::string ca_pem;
  // A client certificate (PEM file) for servers that ask for one (mutual
  // TLS); `client_key_file` "" means the key is in the certificate file.
  std::string client_cert_file;
  std::string client_key_file;
  bool skip_verify = false;

  bool empty() const { return ca_pem.empty() && client_cert_file.empty() && !skip_verify; }
};

// Proxies as Docker (Go's net/http) takes them from the environment:
// HTTPS_PROXY for https URLs, HTTP_PROXY for http URLs (upper case first,
// then lower case), NO_PROXY for hosts to reach directly (comma-separated
// names matching the host and its subdomains, IPs, CIDRs, "*"). Loopback
// hosts (localhost, 127.0.0.0/8, ::1) are never proxied, as in Go.
struct ProxySettings {
  std::string http_proxy;
  std::string https_proxy;
  std::string no_proxy;

  static ProxySettings from_environment();
  // The proxy URL for a request to `url`, "" for a direct connection.
  // NO_PROXY itself is left to libcurl (CURLOPT_NOPROXY).
  std::string proxy_for(std::string_view url) const;
};

struct Request {
  std::string method = "GET";
  std::string url;
  std::vector<std::pair<std::string, std::string>> headers;
  // Sent as "Authorization: <value>" to the origin of `url` only; dropped on a
  // redirect to any other scheme, host or port.
  std::optional<std::string> authorization;
  // TLS settings for the origin of `url` only (a hosts.toml mirror's own
  // CA and client certificate); other origins a redirect leads to get
  // ClientOptions::tls_for_host. nullptr: tls_for_host for every origin.
  std::shared_ptr<const TlsSettings> tls;
  std::string body;  // sent when non-empty (POST forms)
  // Stops the transfer (kCancelled) once it returns true; asked while bytes
  // arrive and while none do, so a stalled download is dropped at once when
  // another step of its pull failed. Adds to ClientOptions::cancelled.
  std::function<bool()> cancelled;
  size_t max_buffered_body = kDefaultMaxBufferedBody;
  int max_redirects = 10;  // 0: a redirect is not followed but returned as the response
  // false: https without checking the server's certificate, for a probe that only
  // asks whether a server speaks TLS at all. Such a request must carry nothing
  // secret and its answer must not be used. (curl neither reuses such a connection
  // nor its TLS session for a verifying request.)
  bool verify_peer = true;
};

struct Response {
  long status = 0;
  // Headers of the final response, names lower-cased, in arrival order.
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;  // the body (fetch), or an error body up to kMaxErrorBody (stream)
  std::string url;   // the URL that answered, after redirects

  // The first value of a header ("" when absent); `name` is lower-case.
  std::string header(std::string_view name) const;
  std::vector<std::string> header_values(std::string_view name) const;
};

// Receives the body of a 2xx response as it arrives. Returning an Error
// aborts the transfer and becomes the result of Client::stream.
using BodySink = std::function<Status(const char* data, size_t size)>;
// Called once per stream, before the first byte of a 2xx body, with the
// status and headers (a resumed download checks 206 against 200 here).
using HeadHandler = std::function<Status(const Response& head)>;

struct ClientOptions {
  // Called once per HTTP exchange: "GET URL -> 200 (1.2 KiB, 14 ms)", then
  // the registry's rate-limit headers if it sent any ("[ratelimit-limit:
  // 100;w=21600, ratelimit-remaining: 99;w=21600]"). Never given any other
  // header value, so no secret can reach it.
  std::function<void(std::string_view)> debug_log;
  // TLS settings for an origin host ("127.0.0.1:5000") that a request does
  // not bring itself: certs.d/<host>/ files, --insecure-registry.
  // An error (a certs.d client certificate without its key) fails the request.
  std::function<Result<TlsSettings>(std::string_view host)> tls_for_host;
  // std::nullopt: ProxySettings::from_environment() at construction.
  std::optional<ProxySettings> proxy;
  std::string user_agent = "imgpull/0.1";
  long connect_timeout_seconds = 30;
  // A transfer slower than 1 byte/s for this long is a stall.
  long stall_timeout_seconds = 60;
  // Polled while a transfer runs (several times a second, also while it
  // waits for bytes); true aborts it with ErrorCode::kCancelled. How an
  // interrupt (Ctrl-C) stops a pull promptly.
  std::function<bool()> cancelled;
};

class Client {
 public:
  explicit Client(ClientOptions options = {});
  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  // Performs the request and buffers the body (bounded by
  // request.max_buffered_body: a larger body is kTooLarge).
  Result<Response> fetch(const Request& request);

  // Performs the request; the body of a 2xx answer goes to `sink`, any other
  // answer's body is kept (bounded) in Response::body for the error message.
  Result<Response> stream(const Request& request, const BodySink& sink,
                          const HeadHandler& on_head = {});

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// True when an https attempt failed in a way that means the server speaks
// plain HTTP on that port (a handshake failure, not an untrusted certificate).
bool is_tls_handshake_failure(const Error& error);

// "1.2 KiB", "14 B", "3.4 MiB": for logs.
std::string format_bytes_binary(uint64_t bytes);

}  // namespace imgpull::http
