// imgpull: the command-line tool over libimgpull. Output follows `docker pull`
// and `docker images` so that scripts and habits carry over.
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <ctime>
#include <filesystem>
#include <iostream>
#include <map>
#include <set>

#include <fmt/format.h>

#include "imgpull/credentials.h"
#include "imgpull/pull.h"
#include "imgpull/reference.h"
#include "imgpull/rootfs.h"
#include "imgpull/store.h"

namespace {

using namespace imgpull;
namespace fs = std::filesystem;

struct GlobalOptions {
  std::string root;
  bool debug = false;
  std::vector<std::string> insecure_registries;
  std::vector<std::string> certs_dirs;
  int retries = 5;
  double retry_max_wait_seconds = 30;
  long stall_timeout_seconds = 60;
};

// Directories searched for <host>/ca.crt, first match wins: the user's own,
// then imgpull's, Docker's and containerd's so existing set-ups work.
std::vector<std::string> certs_search_path(const GlobalOptions& g) {
  std::vector<std::string> dirs = g.certs_dirs;
  for (const char* d : {"/etc/imgpull/certs.d", "/etc/docker/certs.d", "/etc/containerd/certs.d"}) {
    dirs.emplace_back(d);
  }
  return dirs;
}

http::ClientOptions client_options(const GlobalOptions& g) {
  http::ClientOptions options;
  options.stall_timeout_seconds = g.stall_timeout_seconds;
  if (g.debug) {
    options.debug_log = [](std::string_view line) { std::cerr << "DEBUG " << line << "\n"; };
  }
  auto dirs = certs_search_path(g);
  options.ca_file_for_host = [dirs](std::string_view host) -> std::string {
    for (const auto& dir : dirs) {
      fs::path ca = fs::path(dir) / std::string(host) / "ca.crt";
      std::error_code ec;
      if (fs::is_regular_file(ca, ec)) return ca.string();
    }
    return "";
  };
  auto insecure = g.insecure_registries;
  options.skip_tls_verify = [insecure](std::string_view host) {
    return is_insecure_host(host, insecure);
  };
  return options;
}

CredentialLookup docker_config_credentials() {
  return [](std::string_view domain) -> Result<std::optional<Credentials>> {
    IMGPULL_ASSIGN_OR_RETURN(DockerConfig config, DockerConfig::load());
    return config.credentials_for(domain);
  };
}

Result<Store> open_store(const GlobalOptions& g) {
  return Store::open(g.root.empty() ? Store::default_root() : fs::path(g.root));
}

int fail(const Error& error) {
  std::cerr << "Error: " << error.message() << "\n";
  return 1;
}

// ---- pull ----

struct PullFlags {
  std::string reference;
  std::string rootfs;
  bool force = false;
  std::string platform;
  int max_concurrent_downloads = 3;
  bool quiet = false;
};

// Prints docker's non-terminal pull output: one line per layer state change.
class PlainProgress {
 public:
  explicit PlainProgress(const Reference& ref) : ref_(ref) {}

  void operator()(const PullEvent& e) {
    std::string id = e.layer ? e.layer->short_hex() : "";
    switch (e.kind) {
      case PullEvent::Kind::kResolved:
        std::cout << fmt::format("{}: Pulling from {}\n",
                                 ref_.digest ? ref_.digest->str() : ref_.tag.value_or("latest"), ref_.path);
        break;
      case PullEvent::Kind::kLayerExists: line(id, "Already exists"); break;
      case PullEvent::Kind::kLayerWaiting: line(id, "Pulling fs layer"); break;
      case PullEvent::Kind::kLayerDownloading:
        if (started_.insert(id).second) line(id, "Downloading");
        break;
      case PullEvent::Kind::kLayerVerifying: line(id, "Verifying Checksum"); break;
      case PullEvent::Kind::kLayerDownloaded: line(id, "Download complete"); break;
      case PullEvent::Kind::kLayerExtracting: break;  // docker shows it only on a terminal
      case PullEvent::Kind::kLayerComplete: line(id, "Pull complete"); break;
    }
    std::cout.flush();
  }

 private:
  static void line(const std::string& id, std::string_view what) {
    std::cout << id << ": " << what << "\n";
  }
  const Reference& ref_;
  std::set<std::string> started_;
};

int run_pull(const GlobalOptions& g, const PullFlags& flags) {
  auto ref = Reference::parse(flags.reference);
  if (!ref) return fail(ref.error());
  PullOptions options;
  options.max_concurrent_downloads = std::max(1, flags.max_concurrent_downloads);
  options.registry.insecure_registries = g.insecure_registries;
  options.registry.credentials = docker_config_credentials();
  options.registry.retry.max_retries = g.retries;
  options.registry.retry.max_delay =
      std::chrono::milliseconds(static_cast<int64_t>(g.retry_max_wait_seconds * 1000));
  options.registry.retry.base_delay = std::min(options.registry.retry.base_delay, options.registry.retry.max_delay);
  if (!flags.platform.empty()) {
    auto platform = Platform::parse(flags.platform);
    if (!platform) return fail(platform.error());
    options.platform = *platform;
  }
  PlainProgress progress(*ref);
  if (!flags.quiet) options.on_event = std::ref(progress);

  unpack::UniqueFd rootfs;
  if (!flags.rootfs.empty()) {
    auto dir = open_rootfs_dir(flags.rootfs, flags.force);
    if (!dir) return fail(std::move(dir).error().wrap("pulling " + ref->str()));
    rootfs = std::move(dir).value();
    options.rootfs_fd = rootfs.get();
    options.apply.warn = [](std::string_view w) { std::cerr << "Warning: " << w << "\n"; };
  }
  auto store = open_store(g);
  if (!store) return fail(store.error());
  http::Client client(client_options(g));
  auto result = pull_image(client, *store, *ref, options);
  if (!result) return fail(result.error());
  if (!flags.quiet) {
    if (result->repo_digest) std::cout << "Digest: " << result->repo_digest->str() << "\n";
    std::cout << fmt::format("Status: {} for {}\n",
                             result->up_to_date ? "Image is up to date" : "Downloaded newer image",
                             ref->familiar());
  }
  std::cout << ref->str() << "\n";
  return 0;
}

// ---- images ----

// go-units' HumanSize, as docker prints sizes: decimal units, 3 significant digits.
std::string human_size(double bytes) {
  static const char* kUnits[] = {"B", "kB", "MB", "GB", "TB", "PB"};
  int unit = 0;
  while (bytes >= 1000 && unit < 5) {
    bytes /= 1000;
    ++unit;
  }
  return fmt::format("{:.3g}{}", bytes, kUnits[unit]);
}

// go-units' HumanDuration + " ago", as docker prints CREATED.
std::string human_age(const std::string& rfc3339) {
  std::tm tm{};
  if (rfc3339.empty() || strptime(rfc3339.c_str(), "%Y-%m-%dT%H:%M:%S", &tm) == nullptr) return "N/A";
  auto created = std::chrono::system_clock::from_time_t(timegm(&tm));
  double seconds = std::chrono::duration<double>(std::chrono::system_clock::now() - created).count();
  auto hours = static_cast<long>(seconds / 3600 + 0.5);
  std::string d;
  if (seconds < 1) d = "Less than a second";
  else if (seconds < 2) d = "1 second";
  else if (seconds < 60) d = fmt::format("{} seconds", static_cast<long>(seconds));
  else if (seconds / 60 < 1.5) d = "About a minute";
  else if (seconds / 60 < 60) d = fmt::format("{} minutes", static_cast<long>(seconds / 60 + 0.5));
  else if (hours == 1) d = "About an hour";
  else if (hours < 48) d = fmt::format("{} hours", hours);
  else if (hours < 24 * 7 * 2) d = fmt::format("{} days", hours / 24);
  else if (hours < 24 * 30 * 2) d = fmt::format("{} weeks", hours / 24 / 7);
  else if (hours < 24 * 365 * 2) d = fmt::format("{} months", hours / 24 / 30);
  else d = fmt::format("{} years", hours / 24 / 365);
  return d + " ago";
}

struct ImageRow {
  std::string repository, tag, digest, id, created, size;
  std::string created_raw;
};

Result<ImageRow> describe_image(const Store& store, const ImageRecord& record) {
  IMGPULL_ASSIGN_OR_RETURN(StoredImage image, store.load_image(record));
  const ImageManifest* manifest = &image.manifest;
  const ImageConfig& config = image.config;
  int64_t size = manifest->config.size;
  for (const auto& layer : manifest->layers) size += layer.size;
  ImageRow row;
  auto ref = Reference::parse(record.name);
  row.repository = ref ? ref->familiar_name() : record.name;
  row.tag = ref && ref->tag && !ref->digest ? *ref->tag : "<none>";
  row.digest = record.repo_digest ? record.repo_digest->str() : (ref && ref->digest ? ref->digest->str() : "<none>");
  row.id = manifest->config.digest.short_hex();
  row.created = human_age(config.created);
  row.created_raw = config.created;
  row.size = human_size(static_cast<double>(size));
  return row;
}

void print_table(const std::vector<std::vector<std::string>>& rows) {
  std::vector<size_t> widths;
  for (const auto& r : rows) {
    widths.resize(std::max(widths.size(), r.size()));
    for (size_t i = 0; i < r.size(); ++i) widths[i] = std::max(widths[i], r[i].size());
  }
  for (const auto& r : rows) {
    std::string line;
    for (size_t i = 0; i < r.size(); ++i) {
      line += r[i];
      if (i + 1 < r.size()) line += std::string(widths[i] - r[i].size() + 3, ' ');
    }
    std::cout << line << "\n";
  }
}

// ---- unpack ----

int run_unpack(const GlobalOptions& g, const std::string& reference, const std::string& dir, bool force) {
  auto ref = Reference::parse(reference);
  if (!ref) return fail(ref.error());
  auto store = open_store(g);
  if (!store) return fail(store.error());
  std::string context = "unpacking " + ref->str();
  auto record = store->find_image(store_name_for(*ref));
  if (!record) return fail(std::move(record).error().wrap(context));
  if (!*record) {
    return fail(Error(ErrorCode::kNotFound, context + ": no such image in the store " +
                                                store->root().string() + " (imgpull pull it first)"));
  }
  auto image = store->load_image(**record);
  if (!image) return fail(std::move(image).error().wrap(context));
  auto rootfs = open_rootfs_dir(dir, force);
  if (!rootfs) return fail(std::move(rootfs).error().wrap(context));
  unpack::ApplyOptions apply;
  apply.warn = [](std::string_view w) { std::cerr << "Warning: " << w << "\n"; };
  auto done = unpack_stored_image(*store, *image, rootfs->get(), apply, [&](size_t i) {
    std::cout << image->manifest.layers[i].digest.short_hex() << ": Extracted\n";
  });
  if (!done.ok()) return fail(std::move(done).error().wrap(context));
  std::cout << "Unpacked " << ref->str() << " into " << dir << "\n";
  return 0;
}

int run_images(const GlobalOptions& g, bool digests, bool quiet) {
  auto store = open_store(g);
  if (!store) return fail(store.error());
  auto records = store->list_images();
  if (!records) return fail(records.error());
  std::vector<ImageRow> rows;
  for (const auto& record : *records) {
    auto row = describe_image(*store, record);
    if (!row) return fail(std::move(row).error().wrap(record.name));
    rows.push_back(std::move(row).value());
  }
  std::stable_sort(rows.begin(), rows.end(),
                   [](const ImageRow& a, const ImageRow& b) { return a.created_raw > b.created_raw; });
  if (quiet) {
    for (const auto& r : rows) std::cout << r.id << "\n";
    return 0;
  }
  std::vector<std::vector<std::string>> table;
  if (digests) {
    table.push_back({"REPOSITORY", "TAG", "DIGEST", "IMAGE ID", "CREATED", "SIZE"});
  } else {
    table.push_back({"REPOSITORY", "TAG", "IMAGE ID", "CREATED", "SIZE"});
  }
  for (const auto& r : rows) {
    if (digests) {
      table.push_back({r.repository, r.tag, r.digest, r.id, r.created, r.size});
    } else {
      table.push_back({r.repository, r.tag, r.id, r.created, r.size});
    }
  }
  print_table(table);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"imgpull: pull container images from any registry into a local OCI store"};
  app.require_subcommand(1);
  GlobalOptions g;
  app.add_option("--root", g.root, "Store directory (default: /var/lib/imgpull as root, else $XDG_DATA_HOME/imgpull)");
  app.add_flag("-D,--debug", g.debug, "Log every HTTP exchange to stderr");
  app.add_option("--insecure-registry", g.insecure_registries,
                 "Registry host that may use plain http or an unverified certificate (repeatable)");
  app.add_option("--retries", g.retries, "Attempts after the first for a failed request (5xx, 429, network)")
      ->default_val(5)->check(CLI::Range(0, 100));
  app.add_option("--retry-max-wait", g.retry_max_wait_seconds,
                 "Longest wait in seconds between attempts, Retry-After included")->default_val(30)->check(CLI::Range(0.0, 3600.0));
  app.add_option("--stall-timeout", g.stall_timeout_seconds,
                 "Seconds without a byte before a transfer counts as stalled and is resumed")->default_val(60)->check(CLI::Range(1, 3600));
  app.add_option("--certs-dir", g.certs_dirs,
                 "Directory of <host>/ca.crt files, searched before /etc/imgpull/certs.d and /etc/docker/certs.d");

  PullFlags pull_flags;
  auto* pull = app.add_subcommand("pull", "Download an image from a registry");
  pull->add_option("reference", pull_flags.reference, "NAME[:TAG|@DIGEST]")->required();
  pull->add_option("--platform", pull_flags.platform, "os/arch[/variant] to pull from a multi-platform image");
  pull->add_option("--max-concurrent-downloads", pull_flags.max_concurrent_downloads,
                   "Layers downloaded at once")->default_val(3)->check(CLI::Range(1, 64));
  pull->add_flag("-q,--quiet", pull_flags.quiet, "Print only the image reference");
  pull->add_option("--rootfs", pull_flags.rootfs,
                   "Also make the image's root filesystem in DIR, applying layers as they download");
  pull->add_flag("--force", pull_flags.force, "With --rootfs: unpack into a directory that is not empty");
  pull->footer("Examples:\n  imgpull pull debian:12\n  imgpull pull --platform linux/arm64 localhost:5000/app:1.0\n"
               "  imgpull pull --rootfs /tmp/debian debian:12");

  bool digests = false, images_quiet = false;
  auto* images = app.add_subcommand("images", "List images in the local store");
  images->add_flag("--digests", digests, "Show digests");
  images->add_flag("-q,--quiet", images_quiet, "Only show image IDs");

  std::string unpack_ref, unpack_dir;
  bool unpack_force = false;
  auto* unpack_cmd = app.add_subcommand("unpack", "Make an image's root filesystem from the local store (no network)");
  unpack_cmd->add_option("reference", unpack_ref, "NAME[:TAG|@DIGEST] of an image in the store")->required();
  unpack_cmd->add_option("dir", unpack_dir, "Directory to make the rootfs in")->required();
  unpack_cmd->add_flag("--force", unpack_force, "Unpack into a directory that is not empty");
  unpack_cmd->footer("Example:\n  imgpull unpack debian:12 /tmp/debian-rootfs");

  CLI11_PARSE(app, argc, argv);
  if (unpack_cmd->parsed()) return run_unpack(g, unpack_ref, unpack_dir, unpack_force);
  if (pull->parsed()) return run_pull(g, pull_flags);
  if (images->parsed()) return run_images(g, digests, images_quiet);
  return 0;
}
