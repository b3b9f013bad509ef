#include "unpack/layer_applier.h"

#include <sys/stat.h>

#include <optional>
#include <string>

#include "unpack/decompress.h"
#include "unpack/entry_applier.h"
#include "unpack/read_ahead.h"
#include "unpack/tar_reader.h"

namespace imgpull::unpack {
namespace {

// Compressed bytes read ahead of the decompressor: 4 MiB, in blocks of the size the
// download writes, so that on a slow link inflating starts after 256 KiB, not 1 MiB.
constexpr size_t kCompressedReadAheadBuffers = 16;
constexpr size_t kCompressedReadAheadBufferBytes = 256 * 1024;

Status check_is_directory(int fd) {
  struct stat st;
  if (fstat(fd, &st) != 0 || !S_ISDIR(st.st_mode)) {
    return Error(ErrorCode::kInvalidArgument, "the rootfs descriptor is not an open directory");
  }
  return ok_status();
}

}  // namespace

Result<ApplyResult> apply_layer(int rootfs_fd, ByteSource& compressed, Compression compression,
                                const ApplyOptions& options) {
  IMGPULL_TRY(check_is_directory(rootfs_fd));
  // compressed -> read-ahead -> decompressor -> read-ahead (+ diffID hasher thread) ->
  // libarchive -> the rootfs. The first read-ahead takes the reads of the compressed bytes
  // (and their copy out of the page cache) off the inflating thread, which on layers of
  // big files is the slowest of the three; the decompressor inflates its blocks in place.
  std::optional<ReadAheadSource> compressed_ahead;
  if (compression != Compression::kNone) {
    compressed_ahead.emplace(compressed, nullptr, kCompressedReadAheadBuffers,
                             kCompressedReadAheadBufferBytes, "imgpull-read");
  }
  auto tar_bytes = make_decompressor(compression, compressed_ahead ? *compressed_ahead : compressed,
                                     options.max_uncompressed_bytes);
  // Inflating and hashing run in ahead's two threads, the entries are applied in this one.
  Hasher diff_id(DigestAlgorithm::kSha256);
  ReadAheadSource ahead(*tar_bytes, &diff_id, ReadAheadSource::kDefaultBuffers,
                        ReadAheadSource::kDefaultBufferBytes, "imgpull-inflate");
  IMGPULL_ASSIGN_OR_RETURN(auto reader, TarReader::open(ahead));
  EntryApplier applier(rootfs_fd, options);
  uint64_t entries = 0;
  for (;;) {
    IMGPULL_ASSIGN_OR_RETURN(auto entry, reader->next());
    if (!entry) break;
    if (++entries > options.max_entries) {
      return Error(ErrorCode::kTooLarge, "layer has more than " +
                                             std::to_string(options.max_entries) + " entries");
    }
    IMGPULL_TRY(applier.apply(*entry, *reader));
  }
  IMGPULL_TRY(applier.finish());
  // The diffID covers the whole stream, also the padding after the end-of-archive blocks.
  IMGPULL_TRY(reader->drain());
  ahead.join();  // every byte is hashed
  uint64_t bytes = diff_id.bytes_hashed();
  return ApplyResult{diff_id.finish(), bytes, entries};
}

}  // namespace imgpull::unpack
