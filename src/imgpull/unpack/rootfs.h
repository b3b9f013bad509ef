// An image's root filesystem from its layers: each applied in order and
// checked against the config's diffID. The one loop both `pull --rootfs`
// (layers read while they download) and `unpack` (layers read from the store)
// run; they differ only in where a layer's bytes come from.
//
//   IMGPULL_ASSIGN_OR_RETURN(StagedDir dir, StagedDir::begin("/tmp/rootfs", {}));  // unpack/staged_dir.h
//   IMGPULL_TRY(apply_layers(dir.fd(), image.manifest, image.config,
//                            [&](size_t i) { return open_layer_from_store(store, image.manifest.layers[i]); },
//                            unpack::ApplyOptions{}, nullptr));
#pragma once

#include <cstddef>
#include <functional>
#include <memory>

#include "base/byte_source.h"
#include "imgpull/digest.h"
#include "imgpull/error.h"
#include "imgpull/manifest.h"
#include "imgpull/store.h"
#include "unpack/layer_applier.h"

namespace imgpull {

// The compressed bytes of layer `index` of the manifest.
using LayerSourceFor = std::function<Result<std::unique_ptr<ByteSource>>(size_t index)>;

// A stored layer blob.
Result<std::unique_ptr<ByteSource>> open_layer_from_store(const Store& store, const Descriptor& layer);

// Applies every layer of `manifest` onto the rootfs, in order, each checked
// against `config.diff_ids` (whose count must match the layers'). Stops at the
// first error, which names the layer; the rootfs then holds part of the image
// (which is why callers make it in a StagedDir).
// `on_applied(index)` is called after each layer, when not empty.
Status apply_layers(int rootfs_fd, const ImageManifest& manifest, const ImageConfig& config,
                    const LayerSourceFor& source_for, const unpack::ApplyOptions& options,
                    const std::function<void(size_t index)>& on_applied);

// The check apply_layers starts with, also made by a pull before it downloads
// anything: one diffID per layer.
Status check_diff_id_count(const ImageManifest& manifest, const ImageConfig& config);

}  // namespace imgpull
