// Reads the entries of a tar stream (ustar, PAX, GNU long names and links,
// sparse files) through libarchive, from a ByteSource that already yields tar
// bytes: only the tar formats are enabled and no filters, so a layer cannot
// smuggle in a second compression, a cpio or a zip.
//
//   IMGPULL_ASSIGN_OR_RETURN(auto reader, TarReader::open(tar_bytes));
//   for (;;) {
//     IMGPULL_ASSIGN_OR_RETURN(std::optional<TarEntry> entry, reader->next());
//     if (!entry) break;
//     for (;;) {
//       IMGPULL_ASSIGN_OR_RETURN(auto block, reader->read_block());
//       if (!block) break;
//       pwrite(fd, block->data, block->size, block->offset);  // offsets skip sparse holes
//     }
//   }
//   IMGPULL_TRY(reader->drain());  // the bytes after the end-of-archive marker, for the diffID
//
// libarchive keeps header strings (PAX records, GNU long names) in memory but
// refuses special headers over 1 MiB, so a header claiming a huge size fails
// instead of allocating; file data is only ever streamed.
#pragma once

#include <sys/types.h>
#include <time.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "imgpull/error.h"
#include "base/byte_source.h"

struct archive;

namespace imgpull::unpack {

struct TarEntry {
  enum class Type { kRegular, kDirectory, kSymlink, kHardlink, kCharDevice, kBlockDevice, kFifo,
                    kOther };
  Type type = Type::kOther;
  std::string path;         // as written in the archive, not yet cleaned
  std::string link_target;  // symlink target or hardlink target path
  mode_t mode = 0;          // permission bits with setuid/setgid/sticky (07777)
  uid_t uid = 0;
  gid_t gid = 0;
  dev_t rdev = 0;
  int64_t size = 0;         // the file's size; for a sparse file, with its holes
  std::optional<timespec> mtime;
  std::optional<timespec> atime;
  std::vector<std::pair<std::string, std::string>> xattrs;  // name, value
};

class TarReader {
 public:
  // A piece of the current entry's data, to be written at `offset` in the file.
  struct Block {
    const void* data = nullptr;
    size_t size = 0;
    int64_t offset = 0;
  };

  // `source` must outlive the reader.
  static Result<std::unique_ptr<TarReader>> open(ByteSource& source);
  ~TarReader();
  TarReader(const TarReader&) = delete;
  TarReader& operator=(const TarReader&) = delete;

  // The next entry, or nullopt after the last one.
  Result<std::optional<TarEntry>> next();
  // The current entry's next block of data, or nullopt after its last.
  Result<std::optional<Block>> read_block();
  // Reads the source to its end (libarchive stops at the end-of-archive marker).
  Status drain();

 private:
  explicit TarReader(ByteSource& source);
  static ssize_t read_callback(struct archive* archive, void* self, const void** buffer);
  Error archive_error(std::string_view doing) const;

  ByteSource& source_;
  BlockSource* blocks_;  // source_'s blocks, when it lends them
  struct archive* archive_ = nullptr;
  std::unique_ptr<char[]> buffer_;
  std::optional<Error> source_error_;  // the source's own error, kept over libarchive's
};

}  // namespace imgpull::unpack
