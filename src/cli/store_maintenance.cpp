// The commands that look after the store as a whole: prune (alias gc), verify.
#include <iostream>
#include <memory>

#include <fmt/format.h>

#include "commands.h"
#include "imgpull/images.h"
#include "progress.h"

namespace imgpull::cli {
namespace {

struct PruneFlags {
  bool verbose = false;
};

int run_prune(const GlobalOptions& g, const PruneFlags& flags) {
  return with_store(g, [&](Store& store) {
    PruneOptions options;
    options.on_wait = [&] {
      std::cerr << "Waiting for the other imgpull processes using " << store.root().string()
                << " to finish (a pull in progress?)\n";
    };
    if (flags.verbose) {
      options.on_deleted = [](const PrunedItem& item) {
        std::cout << "deleted: " << item.what << " (" << human_size(static_cast<double>(item.bytes)) << ")\n";
      };
    }
    auto report = prune_store(store, options);
    if (!report) return fail(report.error());
    std::cout << "Total reclaimed space: " << human_size(static_cast<double>(report->bytes_reclaimed)) << "\n";
    return 0;
  });
}

int run_verify(const GlobalOptions& g) {
  return with_store(g, [](Store& store) {
    auto report = verify_store(store, [](const VerifyProblem& p) { std::cout << p.message << "\n"; });
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
  });
}

}  // namespace

void add_prune_command(CLI::App& app, const GlobalOptions& g, Runner& run) {
  auto flags = std::make_shared<PruneFlags>();
  auto* prune = app.add_subcommand("prune", "Delete blobs no image in the store uses, stale partial downloads and "
                                            "root filesystems killed pulls left half-made");
  prune->alias("gc");
  prune->add_flag("-v,--verbose", flags->verbose, "Print each deleted blob");
  prune->footer("Waits for other imgpull processes using the store (a running pull) to finish.\n"
                "Example:\n  imgpull rmi debian:12 && imgpull prune -v");
  run_when_parsed(*prune, run, [&g, flags] { return run_prune(g, *flags); });
}

void add_verify_command(CLI::App& app, const GlobalOptions& g, Runner& run) {
  auto* verify = app.add_subcommand("verify", "Re-hash every blob and check every image has its blobs");
  verify->footer("Exits 1 when a blob is corrupt or missing.\nExample:\n  imgpull verify");
  run_when_parsed(*verify, run, [&g] { return run_verify(g); });
}

}  // namespace imgpull::cli
