// The pull: from a reference to a verified image in the local store. The
// public face of this is Client::pull (client.h); this is the engine under it.
//
//   resolve the manifest (following an index to the wanted platform)
//   -> fetch the config -> download every missing layer, N at a time, each
//   byte hashed on its way to the ingest file -> commit blobs -> store the
//   manifests -> name the image in index.json.
//
// Everything a pull writes is content-addressed and verified before it is
// committed, and index.json names the image only after all of its blobs are
// in place, so an interrupted pull leaves nothing half-written behind: only
// partial files in ingest/, which the next pull of those blobs continues.
// A blob whose bytes turn out wrong is discarded and fetched once more from
// its first byte; wrong again, the pull fails naming it.
//
//   PullOptions options;
//   options.on_event = [](const PullEvent& e) { ... };
//   IMGPULL_ASSIGN_OR_RETURN(PullResult r, pull_image(client, store, ref, options));
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "imgpull/client.h"
#include "imgpull/digest.h"
#include "imgpull/error.h"
#include "remote/http.h"
#include "imgpull/manifest.h"
#include "imgpull/reference.h"
#include "remote/registry.h"
#include "imgpull/store.h"
#include "unpack/layer_applier.h"

namespace imgpull {

struct PullOptions {
  Platform platform = Platform::host();
  int max_concurrent_downloads = 3;  // as Docker's default
  RegistryOptions registry;
  // When >= 0, a directory (see open_rootfs_dir) in which the image's root
  // filesystem is made while the layers download: each layer is applied as
  // its bytes arrive, in order, and checked against the config's diffID.
  int rootfs_fd = -1;
  // Non-distributable ("foreign") layers are fetched from the URLs in their
  // descriptors only when this is set (never with registry credentials);
  // otherwise such a layer not already in the store fails the pull.
  bool fetch_foreign_layers = false;
  unpack::ApplyOptions apply;
  // Polled by the downloads; true stops the pull with ErrorCode::kCancelled,
  // keeping partial downloads in ingest/ for the next pull to continue.
  std::function<bool()> cancelled;
  // Called from the download threads, one call at a time.
  std::function<void(const PullEvent&)> on_event;
};

Result<PullResult> pull_image(http::Client& client, Store& store, const Reference& ref,
                              const PullOptions& options);

}  // namespace imgpull
