// Runs the reads of a ByteSource in a thread of its own, a few buffers ahead
// of its reader, and optionally hashes the stream in a third thread, from the
// same buffers. Put between the decompressor and the tar reader, it spreads
// applying a layer over three threads of about equal work: inflating, the
// diffID's SHA-256, and writing the files.
//
//   Hasher diff_id_hasher;
//   ReadAheadSource ahead(*decompressor, &diff_id_hasher);  // both read by ahead's threads
//   for (;;) {
//     IMGPULL_ASSIGN_OR_RETURN(auto block, ahead.next_block());
//     if (block.empty()) break;               // end of stream
//     consume(block);                         // valid until the next call
//   }
//   ahead.join();                             // every byte is hashed, the threads are done
//   Digest diff_id = diff_id_hasher.finish();
//
// Destroying it early (the reader failed) stops the thread: it cancels the
// inner source (a download being followed wakes up) and joins it. Memory:
// `buffers` x `buffer_bytes`, fixed.
#pragma once

#include <algorithm>
#include <condition_variable>
#include <cstddef>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <thread>
#include <vector>

#include "imgpull/digest.h"
#include "base/byte_source.h"

namespace imgpull::unpack {

// A ByteSource whose buffers are lent out as blocks: blocks() is itself.
class ReadAheadSource : public ByteSource, public BlockSource {
 public:
  // 32 MiB between inflating and applying. A layer alternates between stretches
  // the inflater is slower at (big files) and stretches the applier is slower at
  // (many small files); with 4 MiB one of the two threads often waited on the
  // other while a core stood idle. Measured on bench/big (--rootfs into tmpfs,
  // 5 runs each): 4 MiB 6.13 s, 32 x 1 MiB 5.76 s, 16 x 2 MiB 5.76 s median.
  static constexpr size_t kDefaultBuffers = 32;
  static constexpr size_t kDefaultBufferBytes = 1024 * 1024;

  // `inner` (and `hasher`) must outlive this; from now on only this object's threads
  // use them. With a hasher, a buffer is reused once both it and the reader are done.
  // `thread_name` names the reading thread (for top -H and perf; 15 characters at most).
  explicit ReadAheadSource(ByteSource& inner, Hasher* hasher = nullptr,
                           size_t buffers = kDefaultBuffers,
                           size_t buffer_bytes = kDefaultBufferBytes,
                           const char* thread_name = "imgpull-readahd");
  ~ReadAheadSource() override;
  ReadAheadSource(const ReadAheadSource&) = delete;
  ReadAheadSource& operator=(const ReadAheadSource&) = delete;

  // The next block of the stream (empty at its end), valid until the next call of
  // next_block or read. Errors of the inner source come out here, in order.
  Result<std::span<const char>> next_block() override;
  BlockSource* blocks() override { return this; }
  // The same bytes, copied.
  Result<size_t> read(void* buf, size_t n) override;
  // Makes the thread stop soon; reads then fail.
  void cancel() override;
  // Waits for the threads to end (at the end of the stream, on an error, or cancelled);
  // after the end of the stream every byte has been hashed.
  void join();

 private:
  struct Slot {
    std::unique_ptr<char[]> data;
    size_t size = 0;
  };
  void run(const char* thread_name);
  void run_hasher();
  uint64_t reusable() const { return hasher_ ? std::min(released_, hashed_) : released_; }

  ByteSource& inner_;
  Hasher* hasher_;
  size_t buffer_bytes_;
  std::vector<Slot> slots_;
  std::mutex mutex_;
  std::condition_variable changed_;
  uint64_t filled_ = 0;    // slots published by the thread
  uint64_t released_ = 0;  // slots given back by the reader
  uint64_t hashed_ = 0;    // slots the hasher is done with
  bool holding_ = false;   // the reader holds slot released_ % size
  bool done_ = false;      // the thread published its last slot (or an error)
  bool stop_ = false;
  std::optional<Error> error_;
  std::span<const char> current_;  // what read() has left of the held slot
  std::thread thread_;
  std::thread hasher_thread_;
};

}  // namespace imgpull::unpack
