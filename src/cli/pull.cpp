// `imgpull pull`: an image from a registry into the store (and, with
// --rootfs, its root filesystem), showing progress as docker pull does.
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <iostream>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include <fmt/format.h>

#include "bundle_cmd.h"
#include "commands.h"
#include "imgpull/client.h"
#include "imgpull/reference.h"
#include "interrupts.h"
#include "progress.h"
#include "tty_progress.h"

namespace imgpull::cli {
namespace {

struct PullFlags {
  std::string reference;
  std::string rootfs;
  std::string bundle;      // --bundle DIR: an OCI runtime bundle (rootfs/ + config.json)
  std::string bundle_cmd;  // --bundle-cmd: a JSON array replacing the image's Cmd
  bool force = false;
  bool fetch_foreign_layers = false;
  bool sync = false;
  uint64_t max_layer_bytes = uint64_t{64} << 30;  // the library's default, shown in --help
  std::string platform;
  int max_concurrent_downloads = 0;  // not given: as many as there are connections
  int max_connections = 16;
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

int run_pull(const GlobalOptions& g, const PullFlags& flags) {
  PullOutput output = pull_output(flags);
  auto failed = [&](const Error& error) {
    if (output == PullOutput::kJson) std::cout << error_json(error) << std::endl;
    return fail(error);
  };
  auto ref = Reference::parse(flags.reference);
  if (!ref) return failed(ref.error());
  PullRequest request;
  request.max_concurrent_downloads = flags.max_concurrent_downloads;
  request.max_connections = flags.max_connections;
  if (!flags.platform.empty()) {
    auto platform = Platform::parse(flags.platform);
    if (!platform) return failed(platform.error());
    request.platform = *platform;
  }
  request.bundle = flags.bundle;
  if (!flags.bundle_cmd.empty()) {
    auto cmd = parse_bundle_cmd(flags.bundle_cmd);
    if (!cmd) return failed(cmd.error());
    request.bundle_options.cmd = std::move(cmd).value();
  }
  ClientOptions options = client_options(g);
  options.cancelled = interrupted;
  request.on_warning = warn;

  PlainProgress plain(pulling_from_line(*ref));
  std::optional<TtyProgress> tty;
  switch (output) {
    case PullOutput::kQuiet: break;
    case PullOutput::kJson:
      request.on_event = [](const PullEvent& e) { std::cout << event_json(e) << std::endl; };
      break;
    case PullOutput::kPlain:
      request.on_event = [&plain](const PullEvent& e) {
        if (auto line = plain.on_event(e)) std::cout << *line << std::endl;
      };
      break;
    case PullOutput::kTerminal:
      tty.emplace(STDOUT_FILENO, pulling_from_line(*ref));
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
    case PullOutput::kJson: std::cout << pulled_json(*result, *ref) << std::endl; return 0;
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

}  // namespace

void add_pull_command(CLI::App& app, const GlobalOptions& g, Runner& run) {
  auto flags = std::make_shared<PullFlags>();
  auto* pull = app.add_subcommand("pull", "Download an image from a registry");
  pull->add_option("reference", flags->reference, "NAME[:TAG|@DIGEST]")->required();
  pull->add_option("--platform", flags->platform, "os/arch[/variant] to pull from a multi-platform image");
  pull->add_option("--max-concurrent-downloads", flags->max_concurrent_downloads,
                   "Layers downloaded at once (default: as many as there are connections)")
      ->check(CLI::Range(1, 64));
  pull->add_option("--max-connections", flags->max_connections,
                   "Most connections to the registry at once; big layers are fetched in pieces over several, "
                   "and more are opened while the download gets faster")
      ->default_val(flags->max_connections)
      ->check(CLI::Range(1, 64));
  auto* quiet = pull->add_flag("-q,--quiet", flags->quiet, "Print only the image reference");
  pull->add_flag("--json", flags->json,
                 "Print progress as JSON, one object per line (see README), ending with a summary")
      ->excludes(quiet);
  auto* rootfs = pull->add_option("--rootfs", flags->rootfs,
                                   "Also make the image's root filesystem in DIR, applying layers as they download; it is "
                                   "made beside DIR and renamed to DIR only when complete");
  auto* bundle = pull->add_option("--bundle", flags->bundle,
                                  "Also make an OCI runtime bundle in DIR: DIR/rootfs as --rootfs makes it, and "
                                  "DIR/config.json from the image config, which `runc run` starts")
                     ->excludes(rootfs);
  add_bundle_cmd_option(*pull, flags->bundle_cmd, bundle);
  pull->add_flag("--force", flags->force,
                 "With --rootfs or --bundle: replace a DIR that is not empty (its contents are deleted once the "
                 "new tree is in place; never the store or $HOME)");
  pull->add_option("--max-layer-size", flags->max_layer_bytes,
                   "With --rootfs: refuse a layer whose uncompressed tar is larger (bytes; a gzip-bomb bound)")
      ->default_val(flags->max_layer_bytes);
  pull->add_flag("--sync", flags->sync,
                 "Flush the store (and the --rootfs) to disk before exiting: one syncfs per filesystem");
  pull->add_flag("--fetch-foreign-layers", flags->fetch_foreign_layers,
                 "Download non-distributable layers from the URLs in their descriptors (no credentials sent)");
  pull->footer("Examples:\n  imgpull pull debian:12\n  imgpull pull --platform linux/arm64 localhost:5000/app:1.0\n"
               "  imgpull pull --rootfs /tmp/debian debian:12\n"
               "  imgpull pull --bundle web nginx:latest && cd web && runc run web1");
  run_when_parsed(*pull, run, [&g, flags] {
    handle_interrupts();  // before the pull starts any thread
    return run_pull(g, *flags);
  });
}

}  // namespace imgpull::cli
