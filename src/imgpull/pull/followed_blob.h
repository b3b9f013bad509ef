// A layer blob being downloaded, read by the rootfs applier while it grows:
// the download writes the ingest file, the applier reads the same file (from
// the page cache) up to what has been written, and waits for more. So the
// applier never waits for a whole blob, and a download never waits for the
// applier.
//
//   FollowedBlob blob;                      // one per blob a rootfs needs
//   // download thread:                     // applier thread:
//   blob.opened(writer->open_reader());     FollowedBlob::Reader reader(blob);
//   blob.grew(bytes_written);               reader.read(buf, n);  // waits for bytes
//   blob.finished(store.blob_path(d));      reader.read(buf, n);  // 0 at the end
//
// Descriptors: the ingest file's is shared between the download and a reader
// that started on it, and closed when both are done with it; a blob whose
// download finished before its reader started is opened from the store by the
// reader. However far the downloads run ahead of the applier (120 layers...),
// a pull holds one descriptor per download in flight plus one for the layer
// being applied.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <optional>

#include "base/byte_source.h"
#include "base/unique_fd.h"
#include "imgpull/digest.h"
#include "imgpull/error.h"

namespace imgpull {

class FollowedBlob {
 public:
  // The download has opened the ingest file: `fd`, read-only, is ours now.
  void opened(int fd);
  // The first `written` bytes are in the file.
  void grew(uint64_t written);
  // All bytes are in the store at `committed` (the download is done).
  void finished(std::filesystem::path committed);
  // The download failed (or the pull stopped): readers get `error`.
  void failed(const Error& error);
  // Forgets what was written, for a download that starts over in a new
  // ingest file (opened() follows). Refused once a reader was handed a byte:
  // bytes applied to a rootfs cannot be taken back.
  bool rewind();

  // One reader per application of the layer (an image may list a blob twice).
  class Reader : public ByteSource {
   public:
    explicit Reader(FollowedBlob& blob) : blob_(blob) {}
    // Waits until there are bytes past what was read, the end, or an error.
    Result<size_t> read(void* buf, size_t n) override;
    // Wakes a waiting read, which fails: the applier stopped.
    void cancel() override;

   private:
    FollowedBlob& blob_;
    std::shared_ptr<UniqueFd> fd_;
    uint64_t offset_ = 0;
    bool cancelled_ = false;  // guarded by blob_.mutex_
  };

 private:
  std::mutex mutex_;
  std::condition_variable changed_;
  std::shared_ptr<UniqueFd> fd_;  // the ingest file, while it is being written
  std::filesystem::path committed_;
  uint64_t written_ = 0;
  bool done_ = false;
  bool handed_out_ = false;  // a reader got bytes: see rewind()
  std::optional<Error> error_;
};

// The blobs a rootfs applier follows, by digest.
using FollowedBlobs = std::map<Digest, std::unique_ptr<FollowedBlob>>;

}  // namespace imgpull
