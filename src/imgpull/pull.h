// The pull: from a reference to a verified image in the local store.
//
//   resolve the manifest (following an index to the wanted platform)
//   -> fetch the config -> download every missing layer, N at a time, each
//   byte hashed on its way to the ingest file -> commit blobs -> store the
//   manifests -> name the image in index.json.
//
// Everything a pull writes is content-addressed and verified before it is
// committed, and index.json names the image only after all of its blobs are
// in place, so an interrupted pull leaves nothing half-written behind.
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

#include "imgpull/digest.h"
#include "imgpull/error.h"
#include "imgpull/http.h"
#include "imgpull/manifest.h"
#include "imgpull/reference.h"
#include "imgpull/registry.h"
#include "imgpull/store.h"
#include "imgpull/unpack/layer_applier.h"

namespace imgpull {

struct PullEvent {
  enum class Kind {
    kResolved,          // the manifest is known: `layers` lists what will follow
    kLayerExists,       // already in the store, not fetched
    kLayerWaiting,      // to be fetched, waiting for a download slot
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
  // Called from the download threads, one call at a time.
  std::function<void(const PullEvent&)> on_event;
};

struct PullResult {
  std::string name;               // the index.json name: "docker.io/library/x:latest"
  Digest manifest_digest;         // the OCI manifest the store names
  std::optional<Digest> repo_digest;  // what the registry serves for the reference
  Digest config_digest;
  bool up_to_date = false;        // nothing was downloaded and the name already pointed here
  uint64_t bytes_downloaded = 0;
  std::vector<Descriptor> layers;
};

Result<PullResult> pull_image(http::Client& client, Store& store, const Reference& ref,
                              const PullOptions& options);

// The name an image is recorded under in the store for `ref`: the tag form
// when there is a tag and no digest, else the digest form.
std::string store_name_for(const Reference& ref);

}  // namespace imgpull
