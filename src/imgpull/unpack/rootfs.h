// Materialising an image's root filesystem from its layers, in order, each
// checked against the config's diffID.
//
// The pull streams layers into this while they download (see pull.h); the
// `unpack` command feeds it blobs from the store:
//
//   IMGPULL_ASSIGN_OR_RETURN(auto dir, open_rootfs_dir("/tmp/rootfs", /*force=*/false));
//   IMGPULL_ASSIGN_OR_RETURN(StoredImage image, store.load_image(record));
//   IMGPULL_TRY(unpack_stored_image(store, image, dir.get(), {}, nullptr));
#pragma once

#include <cstddef>
#include <filesystem>
#include <functional>

#include "imgpull/digest.h"
#include "imgpull/error.h"
#include "imgpull/manifest.h"
#include "imgpull/store.h"
#include "base/byte_source.h"
#include "unpack/layer_applier.h"
#include "base/unique_fd.h"

namespace imgpull {

// Opens the directory a rootfs is made in, creating it if missing. A
// directory with anything in it is refused unless `force`, so a typo cannot
// merge an image into someone's home directory.
Result<UniqueFd> open_rootfs_dir(const std::filesystem::path& dir, bool force);

// Applies layer `index` of `manifest` from `source` onto the rootfs and checks
// the uncompressed stream against `config.diff_ids[index]`.
Result<unpack::ApplyResult> apply_verified_layer(int rootfs_fd, const ImageManifest& manifest,
                                                 const ImageConfig& config, size_t index,
                                                 ByteSource& source,
                                                 const unpack::ApplyOptions& options);

// The rootfs of an image whose blobs are all in the store; no network.
// `on_layer_applied(index)` is called after each layer.
Status unpack_stored_image(const Store& store, const StoredImage& image, int rootfs_fd,
                           const unpack::ApplyOptions& options,
                           const std::function<void(size_t index)>& on_layer_applied);

}  // namespace imgpull
