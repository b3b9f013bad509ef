// `imgpull unpack`: an image's root filesystem from the store, no network.
#include <iostream>
#include <memory>
#include <string>

#include "commands.h"
#include "imgpull/client.h"
#include "imgpull/reference.h"

namespace imgpull::cli {
namespace {

struct UnpackFlags {
  std::string reference;
  std::string dir;
  bool force = false;
  bool sync = false;
};

int run_unpack(const GlobalOptions& g, const UnpackFlags& flags) {
  auto ref = Reference::parse(flags.reference);
  if (!ref) return fail(ref.error());
  auto client = Client::open(client_options(g));
  if (!client) return fail(client.error());
  UnpackRequest request;
  request.force = flags.force;
  request.sync = flags.sync;
  request.on_warning = warn;
  request.on_layer_applied = [](size_t, const Descriptor& layer) {
    std::cout << layer.digest.short_hex() << ": Extracted\n";
  };
  auto done = client->unpack(*ref, flags.dir, request);
  if (!done) return fail(done.error());
  std::cout << "Unpacked " << ref->str() << " into " << flags.dir << "\n";
  return 0;
}

}  // namespace

void add_unpack_command(CLI::App& app, const GlobalOptions& g, Runner& run) {
  auto flags = std::make_shared<UnpackFlags>();
  auto* unpack = app.add_subcommand("unpack", "Make an image's root filesystem from the local store (no network)");
  unpack->add_option("reference", flags->reference, "NAME[:TAG|@DIGEST] of an image in the store")->required();
  unpack->add_option("dir", flags->dir,
                      "Directory to make the rootfs in (made beside it, renamed to it only when complete)")
      ->required();
  unpack->add_flag("--force", flags->force,
                   "Replace a directory that is not empty (its contents are deleted once the new tree is in "
                   "place; never the store or $HOME)");
  unpack->add_flag("--sync", flags->sync, "Flush the directory's filesystem to disk before exiting (syncfs)");
  unpack->footer("Example:\n  imgpull unpack debian:12 /tmp/debian-rootfs");
  run_when_parsed(*unpack, run, [&g, flags] { return run_unpack(g, *flags); });
}

}  // namespace imgpull::cli
