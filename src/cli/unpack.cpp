// `imgpull unpack`: an image's root filesystem from the store, no network.
#include <filesystem>
#include <iostream>
#include <memory>
#include <string>

#include "bundle_cmd.h"
#include "commands.h"
#include "imgpull/client.h"
#include "imgpull/reference.h"

namespace imgpull::cli {
namespace {

struct UnpackFlags {
  std::string reference;
  std::string dir;
  std::string bundle;      // instead of dir: an OCI runtime bundle here
  std::string bundle_cmd;  // as pull's
  bool force = false;
  bool sync = false;
};

int run_unpack(const GlobalOptions& g, const UnpackFlags& flags) {
  auto ref = Reference::parse(flags.reference);
  if (!ref) return fail(ref.error());
  if (flags.dir.empty() == flags.bundle.empty()) {
    return fail(Error(ErrorCode::kInvalidArgument, "give a directory for the rootfs, or --bundle DIR"));
  }
  UnpackRequest request;
  const std::string& dir = flags.bundle.empty() ? flags.dir : flags.bundle;
  if (!flags.bundle.empty()) {
    request.bundle.emplace();
    if (!flags.bundle_cmd.empty()) {
      auto cmd = parse_bundle_cmd(flags.bundle_cmd);
      if (!cmd) return fail(cmd.error());
      request.bundle->cmd = std::move(cmd).value();
    }
  }
  auto client = Client::open(client_options(g));
  if (!client) return fail(client.error());
  request.force = flags.force;
  request.sync = flags.sync;
  request.on_warning = warn;
  request.on_layer_applied = [](size_t, const Descriptor& layer) {
    std::cout << layer.digest.short_hex() << ": Extracted\n";
  };
  auto done = client->unpack(*ref, dir, request);
  if (!done) return fail(done.error());
  if (request.bundle) {
    std::cout << "Unpacked " << ref->str() << " into " << (std::filesystem::path(dir) / "rootfs").string()
              << ", with " << (std::filesystem::path(dir) / "config.json").string() << "\n";
  } else {
    std::cout << "Unpacked " << ref->str() << " into " << dir << "\n";
  }
  return 0;
}

}  // namespace

void add_unpack_command(CLI::App& app, const GlobalOptions& g, Runner& run) {
  auto flags = std::make_shared<UnpackFlags>();
  auto* unpack = app.add_subcommand("unpack", "Make an image's root filesystem from the local store (no network)");
  unpack->add_option("reference", flags->reference, "NAME[:TAG|@DIGEST] of an image in the store")->required();
  auto* dir = unpack->add_option("dir", flags->dir, "Directory to make the rootfs in (made beside it, renamed to it only when complete)");
  auto* bundle = unpack->add_option("--bundle", flags->bundle,
                                    "Instead of DIR: make an OCI runtime bundle in this directory (rootfs/ and "
                                    "config.json, which `runc run` starts)")
                     ->excludes(dir);
  add_bundle_cmd_option(*unpack, flags->bundle_cmd, bundle);
  unpack->add_flag("--force", flags->force,
                   "Replace a directory that is not empty (its contents are deleted once the new tree is in "
                   "place; never the store or $HOME)");
  unpack->add_flag("--sync", flags->sync, "Flush the directory's filesystem to disk before exiting (syncfs)");
  unpack->footer("Examples:\n  imgpull unpack debian:12 /tmp/debian-rootfs\n"
                 "  imgpull unpack --bundle /srv/web nginx:latest");
  run_when_parsed(*unpack, run, [&g, flags] { return run_unpack(g, *flags); });
}

}  // namespace imgpull::cli
