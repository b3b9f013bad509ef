// Streaming decompressors: a ByteSource of compressed layer bytes in, a
// ByteSource of tar bytes out, in fixed buffers whatever the layer's size.
//
//   FileSource blob(fd);
//   char buf[65536];
//   auto tar = make_decompressor(Compression::kGzip, blob, kDefaultMaxUncompressedLayerBytes);
//   IMGPULL_ASSIGN_OR_RETURN(size_t n, tar->read(buf, sizeof buf));
//
// gzip goes through isa-l's igzip (several times zlib's speed) and accepts
// multi-member streams as pigz writes them; zstd goes through
// ZSTD_decompressStream and accepts several frames (and skippable frames).
// Every decompressor fails with
//  kCorrupt   on bad data, a bad checksum, a truncated stream, an empty
//             stream or bytes after the last member/frame that are not
//             another member/frame;
//  kTooLarge  once more than `max_output_bytes` come out (a decompression
//             bomb), the check being made before the caller sees the bytes
//             past the limit.
#pragma once

#include <cstdint>
#include <memory>

#include "base/byte_source.h"
#include "unpack/compression.h"

namespace imgpull::unpack {

// How much compressed input a decompressor holds at once.
inline constexpr size_t kDecompressInputBufferBytes = 128 * 1024;

// zstd frames may ask for a window of up to 2^31 bytes; we allow zstd's own default
// limit (2^27 = 128 MiB), which every normal compression level stays under, so a crafted
// frame cannot make us allocate gigabytes. Frames that need more fail with kTooLarge.
inline constexpr int kMaxZstdWindowLog = 27;

// `compressed` must outlive the returned source.
std::unique_ptr<ByteSource> make_decompressor(Compression compression, ByteSource& compressed,
                                              uint64_t max_output_bytes);

namespace detail {
// Unbounded decompressors; make_decompressor puts the output limit on top.
std::unique_ptr<ByteSource> make_gzip_source(ByteSource& compressed);
std::unique_ptr<ByteSource> make_zstd_source(ByteSource& compressed);
}  // namespace detail

}  // namespace imgpull::unpack
