#include "imgpull/client.h"

#include <algorithm>
#include <cstdlib>
#include <optional>
#include <utility>

#include "bundle/bundle.h"
#include "remote/hosts.h"
#include "remote/http.h"
#include "pull/pull.h"
#include "remote/registry.h"
#include "unpack/rootfs.h"
#include "unpack/staged_dir.h"
#include "base/sync_fs.h"

namespace imgpull {
namespace fs = std::filesystem;

namespace {

// Directories searched for <host>/ca.crt, first match wins: the caller's own,
// then imgpull's, Docker's and containerd's, so existing set-ups work as they are.
std::vector<fs::path> certs_search_path(const ClientOptions& options) {
  std::vector<fs::path> dirs = options.certs_dirs;
  for (const char* d : {"/etc/imgpull/certs.d", "/etc/docker/certs.d", "/etc/containerd/certs.d"}) {
    dirs.emplace_back(d);
  }
  return dirs;
}

std::vector<std::string> certs_roots(const ClientOptions& options) {
  std::vector<std::string> roots;
  for (const auto& dir : certs_search_path(options)) roots.push_back(dir.string());
  return roots;
}

http::ClientOptions http_options(const ClientOptions& options) {
  http::ClientOptions http;
  http.stall_timeout_seconds = options.stall_timeout_seconds;
  http.debug_log = options.debug_log;
  http.cancelled = options.cancelled;
  // certs.d/<host>/: *.crt CAs and a client.cert/client.key pair, as Docker
  // reads them; --insecure-registry turns verification off.
  http.tls_for_host = [roots = certs_roots(options), insecure = options.insecure_registries](
                          std::string_view host) -> Result<http::TlsSettings> {
    IMGPULL_ASSIGN_OR_RETURN(http::TlsSettings tls, tls_from_cert_dirs(roots, host));
    if (is_insecure_host(host, insecure)) tls.skip_verify = true;
    return tls;
  };
  return http;
}

// Read at each lookup rather than once, so a `login` in another shell during
// a long-lived Client is seen, as docker's daemon sees it.
CredentialLookup docker_config_credentials() {
  return [](std::string_view domain) -> Result<std::optional<Credentials>> {
    IMGPULL_ASSIGN_OR_RETURN(DockerConfig config, DockerConfig::load());
    return config.credentials_for(domain);
  };
}

RegistryOptions registry_options(const ClientOptions& options) {
  RegistryOptions registry;
  registry.insecure_registries = options.insecure_registries;
  registry.credentials = options.credentials ? options.credentials : docker_config_credentials();
  registry.retry.max_retries = options.retries;
  registry.retry.max_delay = options.retry_max_wait;
  registry.retry.base_delay = std::min(registry.retry.base_delay, registry.retry.max_delay);
  return registry;
}

// Where pull --rootfs and unpack make a rootfs: beside `dir`, renamed into
// place when complete. --force replaces a `dir` that holds something, but
// never the store or the home directory (a slip of the keyboard away).
Result<StagedDir> stage_output_dir(const Store& store, const fs::path& dir, bool force) {
  StagedDirOptions options;
  options.replace = force;
  options.records = store.staging_records_dir();
  options.protect = {store.root()};
  if (const char* home = std::getenv("HOME"); home != nullptr && *home != '\0') options.protect.emplace_back(home);
  return StagedDir::begin(dir, options);
}

// With `sync`, the contents reach the disk before the rename that names them,
// and the rename after (see StagedDir::commit); `also_sync` (the store) goes
// in the same syncfs when it shares the filesystem.
Status finish_output_dir(StagedDir& out, bool sync, std::vector<fs::path> also_sync) {
  if (sync) {
    also_sync.push_back(out.path());
    IMGPULL_TRY(sync_filesystems(also_sync));
  }
  return out.commit(sync);
}

unpack::ApplyOptions apply_options(const std::function<void(std::string_view)>& on_warning,
                                   std::optional<uint64_t> max_layer_bytes) {
  unpack::ApplyOptions apply;
  apply.warn = on_warning;
  if (max_layer_bytes) apply.max_uncompressed_bytes = *max_layer_bytes;
  // Without root, what could not be applied is said once, after the last layer.
  if (!apply.preserve_ownership) apply.unapplied = std::make_shared<unpack::UnappliedTally>();
  return apply;
}

void report_unapplied(const unpack::ApplyOptions& apply, const std::function<void(std::string_view)>& on_warning) {
  if (!apply.unapplied || !on_warning) return;
  if (auto summary = apply.unapplied->summary()) on_warning(*summary);
}

}  // namespace

struct Client::Impl {
  Impl(Store s, const ClientOptions& options)
      : store(std::move(s)),
        http(http_options(options)),
        registry(registry_options(options)),
        cancelled(options.cancelled),
        certs_roots(imgpull::certs_roots(options)) {}
  Store store;
  http::Client http;
  RegistryOptions registry;
  std::function<bool()> cancelled;
  std::vector<std::string> certs_roots;  // where <host>/hosts.toml files are looked for
};

Client::Client(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Client::Client(Client&&) noexcept = default;
Client& Client::operator=(Client&&) noexcept = default;
Client::~Client() = default;

Result<Client> Client::open(ClientOptions options) {
  IMGPULL_ASSIGN_OR_RETURN(Store store, Store::open(options.root.empty() ? Store::default_root() : options.root));
  return Client(std::make_unique<Impl>(std::move(store), options));
}

Store& Client::store() { return impl_->store; }

Result<PullResult> Client::pull(std::string_view reference, const PullRequest& request) {
  IMGPULL_ASSIGN_OR_RETURN(Reference ref, Reference::parse(reference));
  return pull(ref, request);
}

Result<PullResult> Client::pull(const Reference& ref, const PullRequest& request) {
  if (!request.bundle.empty()) return bundle::pull_bundle(*this, ref, request);
  RegistryOptions registry = impl_->registry;
  // Mirrors and per-host settings, read at each pull (containerd's hosts.toml).
  auto hosts = load_hosts_config(impl_->certs_roots, ref.domain, ref.registry_host());
  if (!hosts) return std::move(hosts).error().wrap("pulling " + ref.str());
  registry.hosts = std::move(hosts).value();
  registry.cancelled = impl_->cancelled;
  auto connect = [&]() -> Result<std::unique_ptr<Registry>> {
    IMGPULL_ASSIGN_OR_RETURN(auto client, RegistryClient::connect(impl_->http, ref, registry));
    return std::unique_ptr<Registry>(std::move(client));
  };

  PullOptions options;
  if (request.platform) options.platform = *request.platform;
  options.downloads.max_concurrent_blobs = std::max(0, request.max_concurrent_downloads);
  if (request.max_connections > 0) {
    options.downloads.max_connections = request.max_connections;
    options.downloads.initial_connections = std::min(options.downloads.initial_connections, request.max_connections);
  }
  options.fetch_foreign_layers = request.fetch_foreign_layers;
  options.on_event = request.on_event;
  options.cancelled = impl_->cancelled;
  std::optional<StagedDir> rootfs;
  if (!request.rootfs.empty()) {
    auto staged = stage_output_dir(impl_->store, request.rootfs, request.force);
    if (!staged) return std::move(staged).error().wrap("pulling " + ref.str());
    rootfs.emplace(std::move(staged).value());
    options.rootfs_fd = rootfs->fd();
    options.apply = apply_options(request.on_warning, request.max_layer_bytes);
  }
  auto pulled = pull_image(impl_->store, ref, options, connect);
  if (!pulled) return pulled;  // the half-made rootfs goes with `rootfs`
  if (rootfs) report_unapplied(options.apply, request.on_warning);
  Status finished;
  if (rootfs) {
    finished = finish_output_dir(*rootfs, request.sync, {impl_->store.root()});
  } else if (request.sync) {
    finished = sync_filesystems({impl_->store.root()});
  }
  if (!finished.ok()) return std::move(finished).error().wrap("pulling " + ref.str());
  return pulled;
}

Status Client::unpack(const Reference& ref, const fs::path& dir, const UnpackRequest& request) {
  if (request.bundle) return bundle::unpack_bundle(*this, ref, dir, request);
  std::string context = "unpacking " + ref.str();
  auto record = impl_->store.find_image(store_name_for(ref));
  if (!record) return std::move(record).error().wrap(context);
  if (!*record) {
    return Error(ErrorCode::kNotFound, context + ": no such image in the store " + impl_->store.root().string() +
                                           " (imgpull pull it first)");
  }
  auto image = impl_->store.load_image(**record);
  if (!image) return std::move(image).error().wrap(context);
  auto rootfs = stage_output_dir(impl_->store, dir, request.force);
  if (!rootfs) return std::move(rootfs).error().wrap(context);
  const auto& layers = image->manifest.layers;
  auto from_store = [&](size_t i) { return open_layer_from_store(impl_->store, layers[i]); };
  std::function<void(size_t)> on_layer;
  if (request.on_layer_applied) on_layer = [&](size_t i) { request.on_layer_applied(i, layers[i]); };
  unpack::ApplyOptions apply = apply_options(request.on_warning, std::nullopt);
  Status done = apply_layers(rootfs->fd(), image->manifest, image->config, from_store, apply, on_layer);
  if (done.ok()) report_unapplied(apply, request.on_warning);
  if (done.ok()) done = finish_output_dir(*rootfs, request.sync, {});
  if (!done.ok()) return std::move(done).error().wrap(context);
  return ok_status();
}

Status check_login(const ClientOptions& options, std::string_view registry_host, std::string_view registry_domain,
                   const Credentials& credentials) {
  http::Client http(http_options(options));
  return ping_with_credentials(http, registry_host, registry_domain, credentials, options.insecure_registries);
}

}  // namespace imgpull
