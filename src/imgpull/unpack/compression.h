// Which decompressor a layer needs, from its descriptor's media type.
//
//   IMGPULL_ASSIGN_OR_RETURN(Compression c, compression_for_media_type(layer.media_type));
//   auto tar_bytes = make_decompressor(c, blob, kDefaultMaxUncompressedLayerBytes);
#pragma once

#include <string_view>

#include "imgpull/error.h"

namespace imgpull::unpack {

enum class Compression { kNone, kGzip, kZstd };

std::string_view to_string(Compression compression);

// Docker's rootfs.diff.tar(.gzip) and foreign layers, OCI's layer.v1.tar(+gzip|+zstd) and
// their nondistributable variants. Anything else (a helm chart, an artifact) is kUnsupported:
// it is not a filesystem layer.
Result<Compression> compression_for_media_type(std::string_view media_type);

}  // namespace imgpull::unpack
