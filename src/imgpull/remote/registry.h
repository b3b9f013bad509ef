// The distribution API (Docker Registry HTTP API V2 / OCI distribution spec)
// for one repository: ping, manifests, blobs, with authentication handled.
//
// A registry may be served by several hosts (hosts.toml, see hosts.h):
// mirrors tried in order, then the upstream. Manifests by tag are asked only
// of hosts with the "resolve" capability; manifests by digest and blobs of
// hosts with "pull". A host that fails (cannot be reached, answers an error)
// is left for the next one; the error when all fail names each host tried.
//
// How to speak to each host is decided on first use: https, verified against
// the system CAs or certs.d; plain http only for loopback hosts, hosts listed
// as insecure and hosts a hosts.toml names with http:// (as Docker does,
// except that we never skip TLS verification for loopback: a loopback host
// that speaks TLS must present a trusted certificate).
//
//   IMGPULL_ASSIGN_OR_RETURN(auto registry, RegistryClient::connect(client, ref, options));
//   IMGPULL_ASSIGN_OR_RETURN(FetchedManifest m, registry->get_manifest(ref.manifest_selector()));
//   IMGPULL_TRY(registry->fetch_blob(layer, sink));
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <optional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "remote/auth.h"
#include "imgpull/digest.h"
#include "imgpull/error.h"
#include "remote/hosts.h"
#include "remote/http.h"
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

// Where a resumable blob download puts its bytes: the whole blob, or one
// piece of it when several connections share the blob.
class BlobSink {
 public:
  virtual ~BlobSink() = default;
  // The next byte wanted (bytes already held: a retry asks for the rest).
  virtual uint64_t bytes_held() const = 0;
  // For a piece: one past its last byte. Its requests then always carry a
  // closed Range ("bytes=<held>-<end - 1>"), never an open-ended one, so a
  // server never streams more than the piece. nullopt: the whole blob.
  virtual std::optional<uint64_t> range_end() const { return std::nullopt; }
  // The server ignored Range and is sending the whole blob from its first
  // byte. A piece that cannot take it (another connection carries the blob)
  // says so with satisfied().
  virtual Status restart() = 0;
  virtual Status write(const char* data, size_t size) = 0;
  // True when the pull is being abandoned: no more retries.
  virtual bool cancelled() const { return false; }
  // True once the sink wants no more bytes (another connection took the
  // rest of its piece): the transfer stops there, successfully.
  virtual bool satisfied() const { return false; }
};

struct RegistryOptions {
  // Hosts ("host:port" or "host") that may be spoken to over plain http, and
  // whose TLS certificates are not verified: --insecure-registry.
  std::vector<std::string> insecure_registries;
  CredentialLookup credentials;
  RetryPolicy retry;
  // True when the pull is being abandoned (an interrupt): no more attempts,
  // and back-off sleeps end early.
  std::function<bool()> cancelled;
  // The hosts to try (load_hosts_config); empty: the registry itself.
  HostsConfig hosts;
};

using http::is_loopback_host;
bool is_insecure_host(std::string_view host, const std::vector<std::string>& insecure_registries);

// A host's answer to GET <base>/ (the API version check), reached as
// RegistryClient reaches hosts: https first, plain http only when allowed.
struct Ping {
  std::string base_url;  // "https://host:port/v2"
  bool plain_http = false;
  http::Response response;
};
Result<Ping> ping_endpoint(http::Client& client, const RegistryEndpoint& endpoint,
                           const std::vector<std::string>& insecure_registries);

// The engine of the public check_login (client.h), which `imgpull login`
// runs before it stores anything, as docker login does: GET /v2/ on the
// registry itself (`host`, "registry-1.docker.io" for Docker Hub), then its
// challenge answered with `credentials` (Basic, or a token fetched from the
// realm without a scope) and GET /v2/ again, which must answer 200. Wrong
// credentials are kUnauthorized.
Status ping_with_credentials(http::Client& client, std::string_view host, std::string_view registry_domain,
                             const Credentials& credentials, const std::vector<std::string>& insecure_registries);
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

// What a HEAD of a manifest says, without the manifest. The digest is the
// registry's word for which document the tag names: good for asking for that
// document by digest (which verifies it) or finding it in the store, never
// for trusting bytes.
struct ManifestHead {
  std::optional<Digest> digest;  // Docker-Content-Digest, when present and well-formed
  std::string content_type;
  std::optional<uint64_t> size;  // Content-Length, when present
};

// What a pull needs of a registry: the seam between the pull pipeline and
// the network. RegistryClient is the real one; the pipeline's unit tests use
// testing/fake_registry.h.
class Registry {
 public:
  virtual ~Registry() = default;
  // GET /v2/<repo>/manifests/<selector>. When `selector` is a digest the bytes
  // must hash to it.
  virtual Result<FetchedManifest> get_manifest(const std::string& selector) = 0;
  // HEAD /v2/<repo>/manifests/<selector>: what the selector names, at no
  // cost to a rate limit that counts manifest GETs (Docker Hub's).
  virtual Result<ManifestHead> head_manifest(const std::string& selector) = 0;
  // A small blob (a config), checked against its descriptor.
  virtual Result<std::string> get_blob(const Descriptor& blob, size_t max_bytes) = 0;
  // Streams a blob's bytes to `sink`, resuming with Range after a dropped
  // connection or a stall and retrying as the policy says (then from the
  // next host, which resumes where the last left off); checking the bytes
  // is the sink's job.
  virtual Status fetch_blob(const Descriptor& blob, BlobSink& sink) = 0;
  // The same for a non-distributable layer, from the URLs its descriptor
  // lists (tried in order), never with the registry's credentials.
  virtual Status fetch_foreign_blob(const Descriptor& blob, BlobSink& sink) = 0;
};

class RegistryClient : public Registry {
 public:
  // Prepares the hosts; nothing is sent until the first request.
  static Result<std::unique_ptr<RegistryClient>> connect(http::Client& client, const Reference& ref,
                                                         const RegistryOptions& options);
  ~RegistryClient() override;

  Result<FetchedManifest> get_manifest(const std::string& selector) override;
  Result<ManifestHead> head_manifest(const std::string& selector) override;
  Result<std::string> get_blob(const Descriptor& blob, size_t max_bytes) override;
  Status fetch_blob(const Descriptor& blob, BlobSink& sink) override;
  Status fetch_foreign_blob(const Descriptor& blob, BlobSink& sink) override;

 private:
  struct Endpoint;
  RegistryClient(http::Client& client, Reference ref, const RegistryOptions& options);
  // Chooses the endpoint's scheme once (a host allowed plain http is asked
  // whether it speaks TLS); no request to the API itself.
  Status ensure_connected(Endpoint& endpoint);
  // Runs `attempt` on each endpoint with `capability`, in order, until one
  // succeeds; `final_error` says whether an error must not move on.
  template <typename T>
  Result<T> on_endpoints(HostCapability capability, std::string_view what,
                         const std::function<Result<T>(Endpoint&, bool last)>& attempt,
                         const std::function<bool(const Error&)>& final_error);
  std::string url(const Endpoint& endpoint, std::string_view kind, std::string_view name) const;
  // A request for a manifest (GET or HEAD), accepting every type we parse.
  http::Request manifest_request(const Endpoint& endpoint, std::string_view method, const std::string& selector) const;
  Result<http::Response> send(Endpoint& endpoint, http::Request request, const http::BodySink* sink,
                              const http::HeadHandler* on_head = nullptr);
  // send() for a request whose body is buffered, tried again as the policy says.
  Result<http::Response> fetch_with_retries(Endpoint& endpoint, const http::Request& request,
                                            std::string_view what, const RetryPolicy& policy);
  Status fetch_blob_from(Endpoint* endpoint, const std::string& url, const Descriptor& blob, BlobSink& sink,
                         const RetryPolicy& policy, bool* sink_failed);
  Error response_error(const http::Response& response, std::string_view what) const;
  // A host with another to fall back on gets one retry, not the full policy.
  RetryPolicy policy_for(bool last) const;

  // Where an earlier request for the blob was redirected (a CDN, an object
  // store's signed URL): the next pieces of it go straight there.
  std::optional<std::string> blob_location(const Digest& blob) const;
  void set_blob_location(const Digest& blob, const std::string& url);

  http::Client& client_;
  Reference ref_;
  std::string scope_;  // "repository:<path>:pull"
  RegistryOptions options_;
  std::string hosts_source_;  // the hosts.toml, for messages
  std::mutex connect_mutex_;  // download threads may reach a host first at once
  std::vector<std::unique_ptr<Endpoint>> endpoints_;
  mutable std::mutex locations_mutex_;
  std::map<Digest, std::string> blob_locations_;
};

}  // namespace imgpull
