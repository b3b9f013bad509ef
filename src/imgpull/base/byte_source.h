// Pull-style byte streams: the one interface every stage of unpacking reads
// through (a blob file, a download in flight, a decompressor, a read-ahead),
// so the stages stack without knowing what is below them. A source that holds
// the stream in buffers of its own can also lend them (blocks()), and a
// reader that can work on bytes where they lie (a decompressor, the tar
// reader) then skips the copy into its own buffer.
//
//   IMGPULL_ASSIGN_OR_RETURN(auto blob, FileSource::open(store.blob_path(layer.digest)));
//   char buf[65536];
//   for (;;) {
//     IMGPULL_ASSIGN_OR_RETURN(size_t n, blob->read(buf, sizeof buf));
//     if (n == 0) break;  // end of stream
//     consume(buf, n);
//   }
//
//   if (BlockSource* lender = blob->blocks()) {   // no copy: read its buffers
//     IMGPULL_ASSIGN_OR_RETURN(std::span<const char> block, lender->next_block());
//   }
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <span>
#include <string_view>

#include "imgpull/error.h"
#include "base/unique_fd.h"

namespace imgpull {

// A stream handed out in blocks the source owns, rather than copied into the
// reader's buffer.
class BlockSource {
 public:
  // The next block of the stream (empty at its end), valid until the next
  // call of next_block (or of read on the ByteSource that lent it). Errors of
  // the stream come out here, in order.
  virtual Result<std::span<const char>> next_block() = 0;

 protected:
  ~BlockSource() = default;  // owned as the ByteSource that offers it
};

// A pull-style byte stream; read returns 0 at end of stream (and only there:
// a source with nothing to give yet blocks instead).
class ByteSource {
 public:
  virtual ~ByteSource() = default;
  virtual Result<size_t> read(void* buf, size_t n) = 0;
  // Asks a read blocked in this source (or below it), possibly on another thread, to
  // return soon, with an error; sources that never block need not do anything.
  // Wrappers pass it on to their inner source.
  virtual void cancel() {}
  // The same stream as blocks this source lends, or nullptr when it has none
  // of its own to lend (the default). Asked once, before the first read; a
  // reader then takes the stream by blocks or by reads, never both.
  virtual BlockSource* blocks() { return nullptr; }
};

// Reads until `n` bytes or the end of the stream; returns how many were read.
Result<size_t> read_full(ByteSource& source, void* buf, size_t n);

// Reads a file descriptor to its end.
class FileSource : public ByteSource {
 public:
  // Opens `path` read-only; the source owns the descriptor.
  static Result<std::unique_ptr<FileSource>> open(const std::filesystem::path& path);
  // Reads `fd` from its current offset; the caller keeps ownership.
  explicit FileSource(int fd) : fd_(fd) {}

  Result<size_t> read(void* buf, size_t n) override;

 private:
  explicit FileSource(UniqueFd owned) : fd_(owned.get()), owned_(std::move(owned)) {}

  int fd_;
  UniqueFd owned_;
};

// Reads bytes held in memory (which must outlive the source).
class MemorySource : public ByteSource {
 public:
  explicit MemorySource(std::string_view bytes) : bytes_(bytes) {}
  Result<size_t> read(void* buf, size_t n) override;

 private:
  std::string_view bytes_;
};

}  // namespace imgpull
