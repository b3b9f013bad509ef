// Runs the reads of a ByteSource in a thread of its own, a few buffers ahead
// of its reader. Put between the decompressor+diffID hasher and the tar
// reader, it lets one core inflate and hash a layer while another writes its
// files: the two halves of applying a layer take about the same time.
//
//   HashingSource hashed(*decompressor);
//   ReadAheadSource ahead(hashed);            // hashed is now read by ahead's thread
//   for (;;) {
//     IMGPULL_ASSIGN_OR_RETURN(auto block, ahead.next_block());
//     if (block.empty()) break;               // end of stream
//     consume(block);                         // valid until the next call
//   }
//   ahead.join();                             // the thread is done with `hashed`
//   Digest diff_id = hashed.finish();
//
// Destroying it early (the reader failed) stops the thread: it cancels the
// inner source (a download being followed wakes up) and joins it. Memory:
// `buffers` x `buffer_bytes`, fixed.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <thread>
#include <vector>

#include "imgpull/unpack/byte_source.h"

namespace imgpull::unpack {

class ReadAheadSource : public ByteSource {
 public:
  static constexpr size_t kDefaultBuffers = 4;
  static constexpr size_t kDefaultBufferBytes = 1024 * 1024;

  // `inner` must outlive this; it is read only by this object's thread from now on.
  explicit ReadAheadSource(ByteSource& inner, size_t buffers = kDefaultBuffers,
                           size_t buffer_bytes = kDefaultBufferBytes);
  ~ReadAheadSource() override;
  ReadAheadSource(const ReadAheadSource&) = delete;
  ReadAheadSource& operator=(const ReadAheadSource&) = delete;

  // The next block of the stream (empty at its end), valid until the next call of
  // next_block or read. Errors of the inner source come out here, in order.
  Result<std::span<const char>> next_block();
  // The same bytes, copied.
  Result<size_t> read(void* buf, size_t n) override;
  // Makes the thread stop soon; reads then fail.
  void cancel() override;
  // Waits for the thread to end (it ends at the end of the stream, on an error, or cancelled).
  void join();

 private:
  struct Slot {
    std::unique_ptr<char[]> data;
    size_t size = 0;
  };
  void run();

  ByteSource& inner_;
  size_t buffer_bytes_;
  std::vector<Slot> slots_;
  std::mutex mutex_;
  std::condition_variable changed_;
  uint64_t filled_ = 0;    // slots published by the thread
  uint64_t released_ = 0;  // slots given back by the reader
  bool holding_ = false;   // the reader holds slot released_ % size
  bool done_ = false;      // the thread published its last slot (or an error)
  bool stop_ = false;
  std::optional<Error> error_;
  std::span<const char> current_;  // what read() has left of the held slot
  std::thread thread_;
};

}  // namespace imgpull::unpack
