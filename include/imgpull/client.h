// libimgpull's front door: pull an image into the local store (and, if asked,
// make its root filesystem while it downloads), or unpack one already there.
//
//   imgpull::ClientOptions options;            // store at the default root,
//   auto client = imgpull::Client::open(options);  // ~/.docker/config.json credentials
//   if (!client) { std::cerr << client.error().message() << "\n"; return 1; }
//   imgpull::PullRequest request;
//   request.rootfs = "/tmp/debian";
//   request.on_event = [](const imgpull::PullEvent& e) { if (e.layer) std::cerr << e.layer->short_hex(); };
//   auto pulled = client->pull("debian:12", request);
//
// The store itself (images, inspect, save, prune: images.h, export.h) is
// reached through Client::store() or Store::open.
//
// Everything a pull writes is content-addressed and verified before it is
// committed, and the image is named in the store only after all of its blobs
// are in place, so an interrupted pull leaves nothing half-written; the next
// one continues from what is there. A root filesystem appears at its
// directory by one rename once it is complete.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "imgpull/bundle.h"
#include "imgpull/credentials.h"
#include "imgpull/digest.h"
#include "imgpull/error.h"
#include "imgpull/manifest.h"
#include "imgpull/reference.h"
#include "imgpull/store.h"

namespace imgpull {

// What a pull is doing, layer by layer: enough to draw docker's progress.
struct PullEvent {
  enum class Kind {
    kResolved,          // the manifest is known: `layers` lists what will follow
    kLayerExists,       // already in the store, not fetched
    kLayerWaiting,      // to be fetched, waiting for a download slot
    kLayerResumed,      // an interrupted pull left `current` bytes: only the rest is fetched
    kLayerRefetching,   // its bytes were wrong (digest/size): discarded, fetched once more from zero
    kLayerDownloading,  // bytes arriving: current/total
    kLayerVerifying,    // all bytes in, checking size and digest
    kLayerDownloaded,   // verified and committed to the store
    kLayerExtracting,   // being applied to the rootfs: current/total compressed bytes read
                        // (0 when it starts, total once the layer is applied)
    kLayerComplete,     // nothing more to do for this layer
  };
  Kind kind;
  std::optional<Digest> layer;
  uint64_t current = 0;
  uint64_t total = 0;
  std::vector<Descriptor> layers;  // for kResolved
};

struct PullResult {
  std::string name;               // the index.json name: "docker.io/library/x:latest"
  Digest manifest_digest;         // the OCI manifest the store names
  std::optional<Digest> repo_digest;  // what the registry serves for the reference
  Digest config_digest;
  bool up_to_date = false;        // nothing was downloaded and the name already pointed here
  uint64_t bytes_downloaded = 0;
  uint64_t bytes_resumed = 0;     // taken over from partial files an interrupted pull left
  std::vector<Descriptor> layers;
};

struct ClientOptions {
  // The store (an OCI layout); empty: Store::default_root().
  std::filesystem::path root;
  // Hosts ("host:port" or "host") that may use plain http or an unverified
  // certificate. localhost and 127.0.0.0/8 may use plain http regardless.
  std::vector<std::string> insecure_registries;
  // certs.d directories, searched before /etc/imgpull/certs.d,
  // /etc/docker/certs.d and /etc/containerd/certs.d: <host>/hosts.toml
  // (containerd's: mirrors, CAs, client certificates), else Docker's
  // <host>/*.crt and <host>/client.cert + client.key.
  std::vector<std::filesystem::path> certs_dirs;
  // Attempts after the first for a failed request (5xx, 429, network error),
  // and the longest wait between two, Retry-After included.
  int retries = 5;
  std::chrono::milliseconds retry_max_wait{30'000};
  // Seconds without a byte before a transfer counts as stalled and resumes.
  long stall_timeout_seconds = 60;
  // One line per HTTP exchange ("GET url -> 200 (1.2 KiB, 14 ms)"), secrets masked.
  std::function<void(std::string_view line)> debug_log;
  // Polled by transfers, retry waits and the pull several times a second:
  // once it returns true, the pull stops with ErrorCode::kCancelled, keeping
  // partial downloads for the next pull to continue. Empty: never.
  std::function<bool()> cancelled;
  // Registry credentials; empty: $DOCKER_CONFIG/config.json or
  // ~/.docker/config.json with its credential helpers, read at each lookup.
  CredentialLookup credentials;
};

struct PullRequest {
  std::optional<Platform> platform;  // of a multi-platform image; empty: this host's
  // Layers downloaded at once (docker's --max-concurrent-downloads); 0: as
  // many as there are connections.
  int max_concurrent_downloads = 0;
  // The most connections to the registry at once; 0: the default (16). A
  // big layer is fetched in pieces over several; how many are used grows
  // while the total rate does.
  int max_connections = 0;
  // Non-empty: also make the image's root filesystem in this directory,
  // applying each layer as it downloads, checked against the config's diffIDs.
  // It is made beside the directory (same parent, so same filesystem; the
  // parent must be writable) and renamed into place only once every layer is
  // applied and verified: a failed pull leaves nothing there, a killed one a
  // hidden staging directory that the next pull or unpack into it, or
  // `prune_store`, removes. A missing or empty directory is fine; a mount
  // point is refused.
  std::filesystem::path rootfs;
  // A rootfs directory that holds something is refused unless set; then it
  // is REPLACED: the new tree is swapped in with one rename (its mode and
  // owner taken from the old one) and the old tree is deleted. Never the
  // store, $HOME, or a directory holding either.
  bool force = false;
  // Refuse a layer whose uncompressed tar is larger (a gzip-bomb bound); empty: 64 GiB.
  std::optional<uint64_t> max_layer_bytes;
  // Non-distributable layers are fetched from their descriptors' URLs (never
  // with registry credentials) only when set; otherwise they fail the pull.
  bool fetch_foreign_layers = false;
  // Before returning, flush the store and the rootfs to stable storage (one
  // syncfs per filesystem, not an fsync per file). Off by default, as docker,
  // containerd and podman do not sync a pull either; a power cut may then lose
  // what the last seconds wrote (`imgpull verify` finds it).
  bool sync = false;
  // Called from the download threads, one call at a time.
  std::function<void(const PullEvent&)> on_event;
  // Things skipped while making the rootfs (aufs metadata, sockets, ...; not
  // running as root, what could not be applied, in one line at the end), and
  // what may keep a bundle from starting.
  std::function<void(std::string_view)> on_warning;

  // Non-empty: make an OCI runtime bundle (bundle.h) in this directory: its
  // rootfs/ made as `rootfs` is, then config.json. Not together with `rootfs`.
  std::filesystem::path bundle;
  BundleOptions bundle_options;
};

struct UnpackRequest {
  bool force = false;  // replace a directory that holds something (see PullRequest::force)
  bool sync = false;   // flush the rootfs to stable storage before returning (see PullRequest)
  std::function<void(std::string_view)> on_warning;
  std::function<void(size_t index, const Descriptor& layer)> on_layer_applied;

  // Set: `dir` becomes an OCI runtime bundle (bundle.h): the rootfs in
  // dir/rootfs, then dir/config.json.
  std::optional<BundleOptions> bundle;
};

class Client {
 public:
  // Opens (creating if needed) the store. No network until a pull.
  static Result<Client> open(ClientOptions options);

  Client(Client&&) noexcept;
  Client& operator=(Client&&) noexcept;
  ~Client();

  Result<PullResult> pull(const Reference& ref, const PullRequest& request);
  // `reference` as docker takes it: "debian", "ghcr.io/o/r:1", "x@sha256:...".
  Result<PullResult> pull(std::string_view reference, const PullRequest& request);

  // Makes the root filesystem of an image in the store in `dir`; no network.
  // Like PullRequest::rootfs, it appears at `dir` complete or not at all.
  Status unpack(const Reference& ref, const std::filesystem::path& dir, const UnpackRequest& request);

  Store& store();

 private:
  struct Impl;
  explicit Client(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// What `imgpull login` checks before it stores anything, as docker login
// does: GET /v2/ on `registry_host` ("registry-1.docker.io" for Docker Hub),
// its challenge answered with `credentials` (Basic, or a token from the realm
// without a scope), and GET /v2/ again, which must answer 200. Wrong
// credentials are kUnauthorized. Nothing is stored: see save_login.
Status check_login(const ClientOptions& options, std::string_view registry_host, std::string_view registry_domain,
                   const Credentials& credentials);

// The name an image is recorded under in the store for `ref`: the tag form
// when there is a tag and no digest, else the digest form.
std::string store_name_for(const Reference& ref);

}  // namespace imgpull
