// The distribution API (Docker Registry HTTP API V2 / OCI distribution spec)
// for one repository: ping, manifests, blobs, with authentication handled.
//
// connect() decides how to speak to the registry: https, verified against the
// system CAs or certs.d; plain http only for loopback hosts and hosts listed as
// insecure (as Docker does, except that we never skip TLS verification for
// loopback: a loopback host that speaks TLS must present a trusted
// certificate).
//
//   IMGPULL_ASSIGN_OR_RETURN(auto registry, RegistryClient::connect(client, ref, options));
//   IMGPULL_ASSIGN_OR_RETURN(FetchedManifest m, registry->get_manifest(ref.manifest_selector()));
//   IMGPULL_TRY(registry->stream_blob(layer, sink));
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "imgpull/auth.h"
#include "imgpull/digest.h"
#include "imgpull/error.h"
#include "imgpull/http.h"
#include "imgpull/manifest.h"
#include "imgpull/reference.h"

namespace imgpull {

// How failed requests are tried again: 5xx, 408, 429 and network errors
// (refused, reset, timed out, stalled), with exponential back-off and jitter;
// a Retry-After from the registry is honoured up to max_delay.
struct RetryPolicy {
  int max_retries = 5;  // attempts after the first
  std::chrono::milliseconds base_delay{500};
  std::chrono::milliseconds max_delay{30'000};
};

// Where a resumable blob download puts its bytes.
class BlobSink {
 public:
  virtual ~BlobSink() = default;
  // Bytes already held: a retry asks the registry for the rest (Range).
  virtual uint64_t bytes_held() const = 0;
  // The registry ignored Range and is sending the whole blob again.
  virtual Status restart() = 0;
  virtual Status write(const char* data, size_t size) = 0;
  // True when the pull is being abandoned: no more retries.
  virtual bool cancelled() const { return false; }
};

struct RegistryOptions {
  // Hosts ("host:port" or "host") that may be spoken to over plain http, and
  // whose TLS certificates are not verified: --insecure-registry.
  std::vector<std::string> insecure_registries;
  CredentialLookup credentials;
  RetryPolicy retry;
};

// True for hosts that may use plain http without being listed as insecure:
// localhost and 127.0.0.0/8 and ::1, with any port.
bool is_loopback_host(std::string_view host);
bool is_insecure_host(std::string_view host, const std::vector<std::string>& insecure_registries);

// The registry's own words from an error document
// {"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown"}]}, each
// error's message (else its code) joined by "; "; when the body says nothing
// usable, a short text for the status ("not found", "HTTP 500"). The body is
// whatever the server sent, so anything else in it is ignored.
std::string registry_error_text(long status, std::string_view body);

struct FetchedManifest {
  std::string bytes;
  std::string content_type;
  Digest digest;  // our own hash of `bytes`, never the registry's header
};

class RegistryClient {
 public:
  static Result<std::unique_ptr<RegistryClient>> connect(http::Client& client, const Reference& ref,
                                                         const RegistryOptions& options);

  const std::string& base_url() const { return base_url_; }

  // GET /v2/<repo>/manifests/<selector>. When `selector` is a digest the bytes
  // must hash to it.
  Result<FetchedManifest> get_manifest(const std::string& selector);
  // A small blob (a config), checked against its descriptor.
  Result<std::string> get_blob(const Descriptor& blob, size_t max_bytes);
  // Streams a blob's bytes to `sink`, resuming with Range after a dropped
  // connection or a stall and retrying as the policy says; checking the
  // bytes is the sink's job.
  Status fetch_blob(const Descriptor& blob, BlobSink& sink);
  // The same for a non-distributable layer, from the URLs its descriptor
  // lists (tried in order), never with the registry's credentials.
  Status fetch_foreign_blob(const Descriptor& blob, BlobSink& sink);

 private:
  RegistryClient(http::Client& client, Reference ref, std::string base_url, bool plain_http,
                 const RegistryOptions& options);
  Result<http::Response> send(http::Request request, const http::BodySink* sink,
                              const http::HeadHandler* on_head = nullptr);
  // send() for a request whose body is buffered, tried again as the policy says.
  Result<http::Response> fetch_with_retries(const http::Request& request, std::string_view what);
  Status fetch_blob_from(const std::string& url, bool authenticated, const Descriptor& blob, BlobSink& sink);
  Error response_error(const http::Response& response, std::string_view what) const;

  http::Client& client_;
  Reference ref_;
  std::string base_url_;  // "https://host:port"
  std::string scope_;     // "repository:<path>:pull"
  Authenticator auth_;
  RetryPolicy retry_;
};

}  // namespace imgpull
