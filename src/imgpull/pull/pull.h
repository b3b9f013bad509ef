// The pull: from a reference to a verified image in the local store, and, if
// asked, its root filesystem made while the layers download. The public face
// of this is Client::pull (include/imgpull/client.h); this is the engine.
//
//   resolve the manifest (a HEAD for a tag, then only the documents the
//   store lacks, following indexes to the wanted platform: resolve.h; the
//   registry is connected and authenticated at its first use) -> the config
//   -> skip the layers the store has -> download the others, N at once, each
//   byte hashed on its way to the ingest file, each blob verified and
//   committed -> (apply each layer in order as its bytes arrive, checked
//   against its diffID) -> store the manifests -> name the image.
//
// Everything a pull writes is content-addressed and verified before it is
// committed, and index.json names the image only after all of its blobs are
// in place, so an interrupted pull leaves only partial files in ingest/,
// which the next pull of those blobs continues.
//
//   PullOptions options;
//   options.on_event = [](const PullEvent& e) { ... };
//   auto connect = [&]() -> Result<std::unique_ptr<Registry>> { return RegistryClient::connect(http, ref, ro); };
//   IMGPULL_ASSIGN_OR_RETURN(PullResult r, pull_image(store, ref, options, connect));
#pragma once

#include <functional>
#include <memory>

#include "imgpull/client.h"
#include "imgpull/error.h"
#include "imgpull/manifest.h"
#include "imgpull/reference.h"
#include "imgpull/store.h"
#include "pull/download_scheduler.h"
#include "remote/registry.h"
#include "unpack/layer_applier.h"

namespace imgpull {

struct PullOptions {
  Platform platform = Platform::host();
  DownloadOptions downloads;  // connections, pieces
  // When >= 0, a directory (a StagedDir's, unpack/staged_dir.h) in which
  // the image's root filesystem is made while the layers download: each
  // layer is applied as its bytes arrive, in order, and checked against the
  // config's diffID.
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

// Reaches the image's registry (pinging it and learning how to authenticate);
// called at most once per pull, and not at all when the store has everything.
using ConnectRegistry = std::function<Result<std::unique_ptr<Registry>>()>;

Result<PullResult> pull_image(Store& store, const Reference& ref, const PullOptions& options,
                              const ConnectRegistry& connect);

}  // namespace imgpull
