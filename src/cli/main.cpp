// imgpull: the command-line tool over libimgpull. Output follows `docker pull`
// and `docker images` so that scripts and habits carry over.
#include <pthread.h>
#include <signal.h>
#include <termios.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <functional>
#include <iostream>
#include <map>
#include <optional>
#include <set>
#include <string_view>
#include <thread>

#include <fmt/format.h>

#include "docs.h"
#include "imgpull/client.h"
#include "imgpull/credentials.h"
#include "imgpull/export.h"
#include "imgpull/images.h"
#include "imgpull/reference.h"
#include "imgpull/store.h"
#include "progress.h"
#include "tty_progress.h"

namespace {

using namespace imgpull;
using cli::human_size;
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

ClientOptions client_options(const GlobalOptions& g) {
  ClientOptions options;
  options.root = g.root;
  options.insecure_registries = g.insecure_registries;
  options.certs_dirs.assign(g.certs_dirs.begin(), g.certs_dirs.end());
  options.retries = g.retries;
  options.retry_max_wait = std::chrono::milliseconds(static_cast<int64_t>(g.retry_max_wait_seconds * 1000));
  options.stall_timeout_seconds = g.stall_timeout_seconds;
  if (g.debug) {
    options.debug_log = [](std::string_view line) { std::cerr << "DEBUG " << line << "\n"; };
  }
  return options;
}

Result<Store> open_store(const GlobalOptions& g) {
  return Store::open(g.root.empty() ? Store::default_root() : fs::path(g.root));
}

int fail(const Error& error) {
  std::cerr << "Error: " << error.message() << "\n";
  return 1;
}

// ---- interrupts ----

// The signal (SIGINT or SIGTERM) that asked us to stop, 0 while none did.
std::atomic<int> g_interrupt{0};

bool interrupted() { return g_interrupt.load() != 0; }

// SIGINT and SIGTERM are blocked in every thread and taken by one thread with
// sigwait, so no download thread is ever interrupted mid-syscall: the first
// signal only sets g_interrupt, which the transfers poll and stop on, leaving
// their partial files for the next pull. A second signal ends the process at
// once (the partial files are still safe: every write is whole or resumable).
void handle_interrupts() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);  // inherited by every thread made after this
  std::thread([set] {
    while (true) {
      int sig = 0;
      if (sigwait(&set, &sig) != 0) continue;
      int expected = 0;
      if (!g_interrupt.compare_exchange_strong(expected, sig)) _exit(128 + sig);
    }
  }).detach();
}

// The exit status for a pull stopped by a signal: 128 + its number, as a shell reports it.
int interrupted_exit(const fs::path& root) {
  int sig = g_interrupt.load();
  std::cerr << fmt::format("imgpull: interrupted by {}; partial downloads are kept in {} and the next pull "
                           "continues them\n",
                           sig == SIGTERM ? "SIGTERM" : "SIGINT", (root / "ingest").string());
  return 128 + sig;
}

// ---- pull ----

struct PullFlags {
  std::string reference;
  std::string rootfs;
  bool force = false;
  bool fetch_foreign_layers = false;
  bool sync = false;
  uint64_t max_layer_bytes = uint64_t{64} << 30;  // the library's default, shown in --help
  std::string platform;
  int max_concurrent_downloads = 3;
  bool quiet = false;
  bool json = false;
};

// How pull reports progress: see README "Output".
enum class PullOutput { kTerminal, kPlain, kQuiet, kJson };

PullOutput pull_output(const PullFlags& flags) {
  if (flags.json) return PullOutput::kJson;
  if (flags.quiet) return PullOutput::kQuiet;
  const char* term = std::getenv("TERM");
  bool dumb = term != nullptr && std::string_view(term) == "dumb";
  return ::isatty(STDOUT_FILENO) && !dumb ? PullOutput::kTerminal : PullOutput::kPlain;
}

void warn(std::string_view what) { std::cerr << "Warning: " << what << "\n"; }

int run_pull(const GlobalOptions& g, const PullFlags& flags) {
  PullOutput output = pull_output(flags);
  auto failed = [&](const Error& error) {
    if (output == PullOutput::kJson) std::cout << cli::error_json(error) << std::endl;
    return fail(error);
  };
  auto ref = Reference::parse(flags.reference);
  if (!ref) return failed(ref.error());
  PullRequest request;
  request.max_concurrent_downloads = flags.max_concurrent_downloads;
  if (!flags.platform.empty()) {
    auto platform = Platform::parse(flags.platform);
    if (!platform) return failed(platform.error());
    request.platform = *platform;
  }
  ClientOptions options = client_options(g);
  options.cancelled = interrupted;
  request.on_warning = warn;

  cli::PlainProgress plain(cli::pulling_from_line(*ref));
  std::optional<cli::TtyProgress> tty;
  switch (output) {
    case PullOutput::kQuiet: break;
    case PullOutput::kJson:
      request.on_event = [](const PullEvent& e) { std::cout << cli::event_json(e) << std::endl; };
      break;
    case PullOutput::kPlain:
      request.on_event = [&plain](const PullEvent& e) {
        if (auto line = plain.on_event(e)) std::cout << *line << std::endl;
      };
      break;
    case PullOutput::kTerminal:
      tty.emplace(STDOUT_FILENO, cli::pulling_from_line(*ref));
      request.on_event = [&tty](const PullEvent& e) { tty->on_event(e); };
      // Lines for the same terminal go above the progress, not through it.
      if (::isatty(STDERR_FILENO)) {
        request.on_warning = [&tty](std::string_view w) { tty->print_above("Warning: " + std::string(w)); };
        if (options.debug_log) {
          options.debug_log = [&tty](std::string_view line) { tty->print_above("DEBUG " + std::string(line)); };
        }
      }
      break;
  }
  request.rootfs = flags.rootfs;
  request.force = flags.force;
  request.sync = flags.sync;
  request.max_layer_bytes = flags.max_layer_bytes;
  request.fetch_foreign_layers = flags.fetch_foreign_layers;
  auto client = Client::open(std::move(options));
  if (!client) return failed(client.error());
  auto result = client->pull(*ref, request);
  if (tty) tty->finish();
  if (interrupted()) return interrupted_exit(client->store().root());
  if (!result) return failed(result.error());
  switch (output) {
    case PullOutput::kJson: std::cout << cli::pulled_json(*result, *ref) << std::endl; return 0;
    case PullOutput::kQuiet: break;
    case PullOutput::kTerminal:
    case PullOutput::kPlain:
      if (result->repo_digest) std::cout << "Digest: " << result->repo_digest->str() << "\n";
      std::cout << fmt::format("Status: {} for {}\n",
                               result->up_to_date ? "Image is up to date" : "Downloaded newer image",
                               ref->familiar());
      break;
  }
  std::cout << ref->str() << "\n";
  return 0;
}

// ---- login / logout ----

struct LoginFlags {
  std::string server;  // "" = Docker Hub
  std::string username;
  std::string password;
  bool password_stdin = false;
};

// One line from the terminal, echo off for secrets.
std::optional<std::string> prompt(const char* label, bool secret) {
  std::cerr << label << std::flush;
  termios old{};
  bool restore = secret && tcgetattr(STDIN_FILENO, &old) == 0;
  if (restore) {
    termios quiet = old;
    quiet.c_lflag &= ~static_cast<tcflag_t>(ECHO);
    tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet);
  }
  std::string line;
  bool got = static_cast<bool>(std::getline(std::cin, line));
  if (restore) {
    tcsetattr(STDIN_FILENO, TCSAFLUSH, &old);
    std::cerr << "\n";
  }
  if (!got) return std::nullopt;
  return line;
}

// The registry host to talk to for a credential key.
std::string login_host(const std::string& key) {
  return key == kDockerHubCredentialKey ? "registry-1.docker.io" : key;
}

int run_login(const GlobalOptions& g, LoginFlags flags) {
  if (flags.password_stdin && !flags.password.empty()) {
    return fail(Error(ErrorCode::kInvalidArgument, "--password and --password-stdin are mutually exclusive"));
  }
  if (flags.password_stdin && flags.username.empty()) {
    return fail(Error(ErrorCode::kInvalidArgument, "Must provide --username with --password-stdin"));
  }
  if (!flags.password.empty()) {
    std::cerr << "WARNING! Using --password via the CLI is insecure. Use --password-stdin.\n";
  }
  if (flags.password_stdin) {
    std::string all((std::istreambuf_iterator<char>(std::cin)), std::istreambuf_iterator<char>());
    if (all.ends_with('\n')) all.pop_back();
    if (all.ends_with('\r')) all.pop_back();
    flags.password = std::move(all);
  }
  const std::string key = credential_key(flags.server);
  bool tty = ::isatty(STDIN_FILENO) != 0;
  if (flags.username.empty() || (flags.password.empty() && !flags.password_stdin)) {
    if (!tty) return fail(Error(ErrorCode::kInvalidArgument, "Cannot perform an interactive login from a non TTY device"));
    if (flags.username.empty()) {
      auto user = prompt("Username: ", false);
      if (!user || user->empty()) return fail(Error(ErrorCode::kInvalidArgument, "Username is required"));
      flags.username = *user;
    }
    if (flags.password.empty()) {
      auto pass = prompt("Password: ", true);
      if (!pass) return fail(Error(ErrorCode::kInvalidArgument, "Password is required"));
      flags.password = *pass;
    }
  }
  if (flags.password.empty()) return fail(Error(ErrorCode::kInvalidArgument, "Password is required"));
  Credentials credentials{flags.username, flags.password, ""};
  std::string host = login_host(key);
  std::string domain = key == kDockerHubCredentialKey ? "docker.io" : key;
  Status verified = check_login(client_options(g), host, domain, credentials);
  if (!verified.ok()) return fail(std::move(verified).error().wrap("login to " + domain + " failed"));
  std::string config_path = docker_config_path();
  if (config_path.empty()) {
    return fail(Error(ErrorCode::kInvalidArgument, "no home directory for ~/.docker/config.json; set DOCKER_CONFIG"));
  }
  auto helper = credential_helper_for(config_path, key);
  if (!helper) return fail(helper.error());
  Status saved = save_login(config_path, key, credentials);
  if (!saved.ok()) return fail(std::move(saved).error().wrap("storing credentials for " + domain));
  if (helper->empty()) {
    std::cerr << "WARNING! Your password will be stored unencrypted in " << config_path << ".\n"
              << "Configure a credential helper (credsStore) to store it elsewhere.\n";
  }
  std::cout << "Login Succeeded\n";
  return 0;
}

int run_logout(const std::string& server) {
  const std::string key = credential_key(server);
  std::string config_path = docker_config_path();
  if (config_path.empty()) {
    return fail(Error(ErrorCode::kInvalidArgument, "no home directory for ~/.docker/config.json; set DOCKER_CONFIG"));
  }
  auto removed = remove_login(config_path, key);
  if (!removed) return fail(std::move(removed).error().wrap("logout from " + key));
  if (!*removed) {
    std::cout << "Not logged in to " << key << "\n";
    return 0;
  }
  std::cout << "Removing login credentials for " << key << "\n";
  return 0;
}

// ---- images ----

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
  int64_t size = content_size(*manifest);
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

int run_unpack(const GlobalOptions& g, const std::string& reference, const std::string& dir, bool force,
               bool sync) {
  auto ref = Reference::parse(reference);
  if (!ref) return fail(ref.error());
  auto client = Client::open(client_options(g));
  if (!client) return fail(client.error());
  UnpackRequest request;
  request.force = force;
  request.sync = sync;
  request.on_warning = warn;
  request.on_layer_applied = [](size_t, const Descriptor& layer) {
    std::cout << layer.digest.short_hex() << ": Extracted\n";
  };
  auto done = client->unpack(*ref, dir, request);
  if (!done) return fail(done.error());
  std::cout << "Unpacked " << ref->str() << " into " << dir << "\n";
  return 0;
}

// docker's {{json .}} for one `images` row.
std::string image_row_json(const ImageRow& r);

int run_images(const GlobalOptions& g, bool digests, bool quiet, const std::string& pattern = "",
               const std::string& format = "") {
  bool json = format == "json" || format == "{{json .}}";
  if (!format.empty() && format != "table" && !json) {
    return fail(Error(ErrorCode::kInvalidArgument, "--format must be table or json, not " + format));
  }
  auto store = open_store(g);
  if (!store) return fail(store.error());
  auto records = store->list_images();
  if (!records) return fail(records.error());
  std::vector<ImageRow> rows;
  for (const auto& record : *records) {
    if (!pattern.empty() && !matches_image_pattern(pattern, record.name)) continue;
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
  if (json) {
    for (const auto& r : rows) std::cout << image_row_json(r) << "\n";
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


// ---- local image commands: inspect, history, tag, rmi, prune, verify, save ----

// Go's time.Time.String() in UTC, as docker's CreatedAt shows it.
std::string docker_time(const std::string& rfc3339) {
  std::tm tm{};
  if (rfc3339.empty() || strptime(rfc3339.c_str(), "%Y-%m-%dT%H:%M:%S", &tm) == nullptr) return "";
  char buf[64];
  std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S +0000 UTC", &tm);
  return buf;
}

std::string image_row_json(const ImageRow& r) {
  nlohmann::json row = {{"Containers", "N/A"},  {"CreatedAt", docker_time(r.created_raw)},
                        {"CreatedSince", r.created}, {"Digest", r.digest},
                        {"ID", r.id},              {"Repository", r.repository},
                        {"SharedSize", "N/A"},     {"Size", r.size},
                        {"Tag", r.tag},            {"UniqueSize", "N/A"},
                        {"VirtualSize", r.size}};
  return row.dump();
}

int run_inspect(const GlobalOptions& g, const std::vector<std::string>& refs) {
  auto store = open_store(g);
  if (!store) return fail(store.error());
  nlohmann::ordered_json out = nlohmann::ordered_json::array();
  std::vector<Error> errors;
  for (const auto& ref : refs) {
    auto found = find_local_image(*store, ref);
    auto doc = found ? inspect_image(*store, found->image) : Result<nlohmann::ordered_json>(found.error());
    if (doc) out.push_back(std::move(doc).value());
    else errors.push_back(std::move(doc).error());
  }
  // As docker: what was found, then an error line for each name that was not.
  std::cout << out.dump(4) << "\n";
  for (const auto& e : errors) fail(e);
  return errors.empty() ? 0 : 1;
}

// docker's Ellipsis: at most `max` characters (code points), the last one "…".
std::string ellipsis(const std::string& s, size_t max) {
  auto starts_char = [](char c) { return (static_cast<unsigned char>(c) & 0xC0) != 0x80; };
  if (static_cast<size_t>(std::count_if(s.begin(), s.end(), starts_char)) <= max) return s;
  size_t kept = 0, end = 0;
  for (; end < s.size(); ++end) {
    if (starts_char(s[end]) && kept++ == max - 1) break;
  }
  return s.substr(0, end) + "…";
}

struct HistoryFlags {
  std::string reference;
  bool no_trunc = false;
  bool quiet = false;
};

int run_history(const GlobalOptions& g, const HistoryFlags& flags) {
  auto store = open_store(g);
  if (!store) return fail(store.error());
  auto found = find_local_image(*store, flags.reference);
  if (!found) return fail(found.error());
  std::vector<std::vector<std::string>> table{{"IMAGE", "CREATED", "CREATED BY", "SIZE", "COMMENT"}};
  for (const auto& row : image_history(found->image)) {
    std::string id = !row.id ? "<missing>" : flags.no_trunc ? row.id->str() : row.id->short_hex();
    if (flags.quiet) {
      std::cout << id << "\n";
      continue;
    }
    std::string created_by = row.created_by;
    std::replace(created_by.begin(), created_by.end(), '\t', ' ');
    std::replace(created_by.begin(), created_by.end(), '\n', ' ');
    if (!flags.no_trunc) created_by = ellipsis(created_by, 45);
    table.push_back({id, human_age(row.created), created_by, human_size(static_cast<double>(row.size)),
                     row.comment});
  }
  if (!flags.quiet) print_table(table);
  return 0;
}

int run_tag(const GlobalOptions& g, const std::string& source, const std::string& target) {
  auto store = open_store(g);
  if (!store) return fail(store.error());
  auto found = find_local_image(*store, source);
  if (!found) return fail(found.error());
  auto tagged = tag_image(*store, found->image, target);
  if (!tagged) return fail(tagged.error());
  return 0;
}

int run_rmi(const GlobalOptions& g, const std::vector<std::string>& refs) {
  auto store = open_store(g);
  if (!store) return fail(store.error());
  int status = 0;
  for (const auto& ref : refs) {  // as docker: one failure does not stop the others
    auto removed = remove_local_image(*store, ref);
    if (!removed) {
      status = fail(removed.error());
      continue;
    }
    for (const auto& name : removed->untagged) std::cout << "Untagged: " << name << "\n";
    if (removed->deleted) std::cout << "Deleted: " << removed->deleted->str() << "\n";
  }
  return status;
}

int run_prune(const GlobalOptions& g, bool verbose) {
  auto store = open_store(g);
  if (!store) return fail(store.error());
  PruneOptions options;
  options.on_wait = [&] {
    std::cerr << "Waiting for the other imgpull processes using " << store->root().string()
              << " to finish (a pull in progress?)\n";
  };
  if (verbose) {
    options.on_deleted = [](const PrunedItem& item) {
      std::cout << "deleted: " << item.what << " (" << human_size(static_cast<double>(item.bytes)) << ")\n";
    };
  }
  auto report = prune_store(*store, options);
  if (!report) return fail(report.error());
  std::cout << "Total reclaimed space: " << human_size(static_cast<double>(report->bytes_reclaimed)) << "\n";
  return 0;
}

int run_verify(const GlobalOptions& g) {
  auto store = open_store(g);
  if (!store) return fail(store.error());
  auto report = verify_store(*store, [](const VerifyProblem& p) { std::cout << p.message << "\n"; });
  if (!report) return fail(report.error());
  std::string checked = fmt::format("{} blobs ({}) and {} images", report->blobs_checked,
                                    human_size(static_cast<double>(report->bytes_checked)), report->images_checked);
  if (report->ok()) {
    std::cout << "Verified " << checked << ": no problems\n";
    return 0;
  }
  std::cout << "Verified " << checked << ": " << report->problems.size() << " problem"
            << (report->problems.size() == 1 ? "" : "s") << "\n";
  return 1;
}

struct SaveFlags {
  std::vector<std::string> references;
  std::string output;
  std::string format = "docker-archive";
};

int run_save(const GlobalOptions& g, const SaveFlags& flags) {
  bool oci = flags.format == "oci" || flags.format == "oci-archive" || flags.format == "oci-dir";
  if (!oci && flags.format != "docker-archive" && flags.format != "docker") {
    return fail(Error(ErrorCode::kInvalidArgument,
                      "--format must be docker-archive, oci, oci-archive or oci-dir, not " + flags.format));
  }
  // --format oci writes a directory unless the output is named *.tar.
  bool oci_dir = flags.format == "oci-dir" || (flags.format == "oci" && !flags.output.empty() &&
                                               !flags.output.ends_with(".tar"));
  if (flags.output.empty() && oci_dir) {
    return fail(Error(ErrorCode::kInvalidArgument, "--format oci-dir needs -o DIR"));
  }
  if (flags.output.empty() && ::isatty(STDOUT_FILENO)) {
    return fail(Error(ErrorCode::kInvalidArgument,
                      "Cowardly refusing to save to a terminal. Use the -o flag or redirect"));
  }
  auto store = open_store(g);
  if (!store) return fail(store.error());
  std::vector<FoundImage> found;
  for (const auto& ref : flags.references) {
    auto image = find_local_image(*store, ref);
    if (!image) return fail(image.error());
    found.push_back(std::move(image).value());
  }
  auto images = group_for_export(found);
  ArchiveFormat format = oci ? ArchiveFormat::kOci : ArchiveFormat::kDocker;
  Status saved = oci_dir               ? save_oci_layout(*store, images, flags.output)
                 : flags.output.empty() ? write_archive(*store, images, format, STDOUT_FILENO)
                                        : save_archive(*store, images, format, flags.output);
  if (!saved.ok()) return fail(saved.error());
  return 0;
}

// The local image commands, registered on `app`; returns the function that
// runs the one parsed, or nullptr when none of them was.
struct LocalCommands {
  std::vector<std::string> inspect_refs;
  HistoryFlags history;
  std::string tag_source, tag_target;
  std::vector<std::string> rmi_refs;
  bool prune_verbose = false;
  SaveFlags save;
  CLI::App *inspect = nullptr, *history_cmd = nullptr, *tag = nullptr, *rmi = nullptr, *prune = nullptr,
           *verify = nullptr, *save_cmd = nullptr;

  void add_to(CLI::App& app) {
    inspect = app.add_subcommand("inspect", "Show details of local images as JSON, like docker image inspect");
    inspect->add_option("reference", inspect_refs, "NAME[:TAG|@DIGEST] or image ID")->required();
    inspect->footer("Example:\n  imgpull inspect debian:12 | jq '.[0].RootFS.Layers'");

    history_cmd = app.add_subcommand("history", "Show the history of a local image");
    history_cmd->add_option("reference", history.reference, "NAME[:TAG|@DIGEST] or image ID")->required();
    history_cmd->add_flag("--no-trunc", history.no_trunc, "Don't truncate output");
    history_cmd->add_flag("-q,--quiet", history.quiet, "Only show image IDs");
    history_cmd->footer("Example:\n  imgpull history --no-trunc debian:12");

    tag = app.add_subcommand("tag", "Give a local image another name");
    tag->add_option("source", tag_source, "SOURCE_IMAGE[:TAG] or image ID")->required();
    tag->add_option("target", tag_target, "TARGET_IMAGE[:TAG]")->required();
    tag->footer("Example:\n  imgpull tag debian:12 localhost:5000/base/debian:stable");

    rmi = app.add_subcommand("rmi", "Remove names of local images (blobs stay until prune)");
    rmi->add_option("reference", rmi_refs, "NAME[:TAG|@DIGEST] or image ID")->required();
    rmi->footer("Example:\n  imgpull rmi debian:12 && imgpull prune");

    prune = app.add_subcommand("prune", "Delete blobs no image in the store uses, stale partial downloads and "
                                        "root filesystems killed pulls left half-made");
    prune->alias("gc");
    prune->add_flag("-v,--verbose", prune_verbose, "Print each deleted blob");
    prune->footer("Waits for other imgpull processes using the store (a running pull) to finish.\n"
                  "Example:\n  imgpull rmi debian:12 && imgpull prune -v");

    verify = app.add_subcommand("verify", "Re-hash every blob and check every image has its blobs");
    verify->footer("Exits 1 when a blob is corrupt or missing.\nExample:\n  imgpull verify");

    save_cmd = app.add_subcommand("save", "Save images to a tar archive (docker-archive) or an OCI layout");
    save_cmd->add_option("reference", save.references, "NAME[:TAG|@DIGEST] or image ID")->required();
    save_cmd->add_option("-o,--output", save.output, "Write to FILE (or DIR for an OCI layout) instead of stdout");
    save_cmd->add_option("--format", save.format,
                         "docker-archive (default: docker load, podman load, skopeo), oci (a directory, or a "
                         "tar when -o ends with .tar), oci-archive, oci-dir");
    save_cmd->footer("Examples:\n  imgpull save -o debian.tar debian:12 && docker load -i debian.tar\n"
                     "  imgpull save --format oci -o debian-oci debian:12 && umoci stat --image debian-oci:"
                     "docker.io/library/debian:12");
  }

  std::optional<int> run(const GlobalOptions& g) const {
    if (inspect->parsed()) return run_inspect(g, inspect_refs);
    if (history_cmd->parsed()) return run_history(g, history);
    if (tag->parsed()) return run_tag(g, tag_source, tag_target);
    if (rmi->parsed()) return run_rmi(g, rmi_refs);
    if (prune->parsed()) return run_prune(g, prune_verbose);
    if (verify->parsed()) return run_verify(g);
    if (save_cmd->parsed()) return run_save(g, save);
    return std::nullopt;
  }
};
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
                 "Directory of <host>/ directories (hosts.toml, ca.crt, client.cert/.key), searched before "
                 "/etc/imgpull/certs.d, /etc/docker/certs.d and /etc/containerd/certs.d (repeatable)");

  PullFlags pull_flags;
  auto* pull = app.add_subcommand("pull", "Download an image from a registry");
  pull->add_option("reference", pull_flags.reference, "NAME[:TAG|@DIGEST]")->required();
  pull->add_option("--platform", pull_flags.platform, "os/arch[/variant] to pull from a multi-platform image");
  pull->add_option("--max-concurrent-downloads", pull_flags.max_concurrent_downloads,
                   "Layers downloaded at once")->default_val(3)->check(CLI::Range(1, 64));
  auto* pull_quiet = pull->add_flag("-q,--quiet", pull_flags.quiet, "Print only the image reference");
  pull->add_flag("--json", pull_flags.json,
                 "Print progress as JSON, one object per line (see README), ending with a summary")
      ->excludes(pull_quiet);
  pull->add_option("--rootfs", pull_flags.rootfs,
                   "Also make the image's root filesystem in DIR, applying layers as they download; it is "
                   "made beside DIR and renamed to DIR only when complete");
  pull->add_flag("--force", pull_flags.force,
                 "With --rootfs: replace a DIR that is not empty (its contents are deleted once the new "
                 "tree is in place; never the store or $HOME)");
  pull->add_option("--max-layer-size", pull_flags.max_layer_bytes,
                   "With --rootfs: refuse a layer whose uncompressed tar is larger (bytes; a gzip-bomb bound)")
      ->default_val(pull_flags.max_layer_bytes);
  pull->add_flag("--sync", pull_flags.sync,
                 "Flush the store (and the --rootfs) to disk before exiting: one syncfs per filesystem");
  pull->add_flag("--fetch-foreign-layers", pull_flags.fetch_foreign_layers,
                 "Download non-distributable layers from the URLs in their descriptors (no credentials sent)");
  pull->footer("Examples:\n  imgpull pull debian:12\n  imgpull pull --platform linux/arm64 localhost:5000/app:1.0\n"
               "  imgpull pull --rootfs /tmp/debian debian:12");

  bool digests = false, images_quiet = false;
  std::string images_pattern, images_format;
  auto* images = app.add_subcommand("images", "List images in the local store");
  images->add_option("repository", images_pattern, "Only REPOSITORY[:TAG] (a glob: 'localhost:5000/*')");
  images->add_flag("--digests", digests, "Show digests");
  images->add_flag("-q,--quiet", images_quiet, "Only show image IDs");
  images->add_option("--format", images_format, "table (default), or json: one object per line, as docker's '{{json .}}'");
  images->footer("Examples:\n  imgpull images debian\n  imgpull images --format json 'localhost:5000/*'");

  std::string unpack_ref, unpack_dir;
  bool unpack_force = false, unpack_sync = false;
  auto* unpack_cmd = app.add_subcommand("unpack", "Make an image's root filesystem from the local store (no network)");
  unpack_cmd->add_option("reference", unpack_ref, "NAME[:TAG|@DIGEST] of an image in the store")->required();
  unpack_cmd->add_option("dir", unpack_dir,
                         "Directory to make the rootfs in (made beside it, renamed to it only when complete)")
      ->required();
  unpack_cmd->add_flag("--force", unpack_force,
                       "Replace a directory that is not empty (its contents are deleted once the new tree is "
                       "in place; never the store or $HOME)");
  unpack_cmd->add_flag("--sync", unpack_sync, "Flush the directory's filesystem to disk before exiting (syncfs)");
  unpack_cmd->footer("Example:\n  imgpull unpack debian:12 /tmp/debian-rootfs");

  LoginFlags login_flags;
  auto* login = app.add_subcommand("login", "Check credentials against a registry and store them as docker login does");
  login->add_option("server", login_flags.server, "Registry host[:port] (default: Docker Hub)");
  login->add_option("-u,--username", login_flags.username, "Username");
  login->add_option("-p,--password", login_flags.password, "Password (visible to other users: prefer --password-stdin)");
  login->add_flag("--password-stdin", login_flags.password_stdin, "Take the password from stdin");
  login->footer(
      "Stores the credentials in the credential helper config.json names (credHelpers, credsStore),\n"
      "else base64-encoded in $DOCKER_CONFIG/config.json (default ~/.docker/config.json), mode 0600.\n"
      "Examples:\n  imgpull login -u alice localhost:5000\n"
      "  echo \"$TOKEN\" | imgpull login -u alice --password-stdin registry.example.com\n"
      "  imgpull login -u alice   # Docker Hub");

  std::string logout_server;
  auto* logout = app.add_subcommand("logout", "Remove the credentials stored for a registry");
  logout->add_option("server", logout_server, "Registry host[:port] (default: Docker Hub)");
  logout->footer("Examples:\n  imgpull logout localhost:5000\n  imgpull logout   # Docker Hub");

  LocalCommands local_commands;
  local_commands.add_to(app);

  app.set_version_flag("--version", std::string("imgpull ") + IMGPULL_VERSION);
  std::string completion_shell;
  auto* completion = app.add_subcommand("completion", "Print a shell completion script");
  completion->add_option("shell", completion_shell, "Shell: bash")->required()->check(CLI::IsMember({"bash"}));
  completion->footer("Examples:\n  source <(imgpull completion bash)\n"
                     "  imgpull completion bash > /etc/bash_completion.d/imgpull");
  auto* man = app.add_subcommand("man", "Print the manual page, imgpull(1), made from the same text as --help");
  man->footer("Example:\n  imgpull man | man -l -");

  CLI11_PARSE(app, argc, argv);
  if (completion->parsed()) {
    std::cout << cli::bash_completion(app);
    return 0;
  }
  if (man->parsed()) {
    std::cout << cli::man_page(app, IMGPULL_VERSION);
    return 0;
  }
  if (auto status = local_commands.run(g)) return *status;
  if (unpack_cmd->parsed()) return run_unpack(g, unpack_ref, unpack_dir, unpack_force, unpack_sync);
  if (pull->parsed()) {
    handle_interrupts();
    return run_pull(g, pull_flags);
  }
  if (login->parsed()) return run_login(g, login_flags);
  if (logout->parsed()) return run_logout(logout_server);
  if (images->parsed()) return run_images(g, digests, images_quiet, images_pattern, images_format);
  return 0;
}
