// Exporting images from the store, as `docker save` does:
//
//  docker-archive  a tar that `docker load`, `podman load` and
//                  `skopeo copy docker-archive:` read, in docker's classic
//                  layout (the one every version of those tools accepts):
//                    manifest.json              [{"Config","RepoTags","Layers"}]
//                    repositories               {"repo":{"tag":"<top layer id>"}}
//                    <config hex>.json          the image config, as stored
//                    <layer id>/layer.tar       the layer, *uncompressed*
//                    <layer id>/VERSION, json   docker's legacy per-layer files
//                  where a layer id is the layer's chain ID (its diffID
//                  hashed with those below it), so an id names one stack of
//                  layers and images sharing a base share its directories.
//  OCI layout      a directory (or a tar of one) in the store's own format
//                  holding just these images: `skopeo`, `umoci`, `podman
//                  load` and `imgpull --root` read it.
//
// Layers are decompressed as they are written, in fixed buffers whatever
// their size, and every byte written is checked: uncompressed layers against
// the config's diffIDs, other blobs against their digests. Files are written
// under a temporary name and renamed into place, so a failed export leaves
// nothing behind.
//
//   IMGPULL_ASSIGN_OR_RETURN(FoundImage a, find_local_image(store, "alpine"));
//   IMGPULL_TRY(save_archive(store, group_for_export({a}), ArchiveFormat::kDocker, "alpine.tar"));
#pragma once

#include <filesystem>
#include <vector>

#include "imgpull/error.h"
#include "imgpull/images.h"
#include "imgpull/store.h"

namespace imgpull {

// One image to export and the names it goes under.
struct ExportImage {
  StoredImage image;
  // The records the user named ("docker.io/library/x:1"); empty for an
  // image named by its ID, which docker saves without RepoTags.
  std::vector<ImageRecord> records;
};

// One entry per image (config), in the order first named, with every record
// named for it, as docker save groups its arguments.
std::vector<ExportImage> group_for_export(const std::vector<FoundImage>& found);

enum class ArchiveFormat { kDocker, kOci };

// Writes the archive to `out_fd` (a file or a pipe: nothing is seeked).
Status write_archive(const Store& store, const std::vector<ExportImage>& images, ArchiveFormat format,
                     int out_fd);

// Writes the archive to `file`, through a temporary file renamed into place.
Status save_archive(const Store& store, const std::vector<ExportImage>& images, ArchiveFormat format,
                    const std::filesystem::path& file);

// Writes an OCI layout directory `dir`, which must not exist or be empty.
Status save_oci_layout(const Store& store, const std::vector<ExportImage>& images,
                       const std::filesystem::path& dir);

// A layer's chain ID (image-spec config.md): the first layer's diffID, then
// sha256 of "<chain id below> <diffID>".
std::vector<Digest> chain_ids(const std::vector<Digest>& diff_ids);

}  // namespace imgpull
