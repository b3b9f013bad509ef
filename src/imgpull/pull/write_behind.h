// Hands a stream of bytes to a consumer running in a thread of its own, a few
// buffers behind the producer. A download uses it so that receiving (libcurl's
// thread) and hashing + writing the ingest file (the consumer) overlap: for a
// single 60 MB layer that is most of the SHA-256 time off the transfer's path.
//
//   WriteBehind behind([&](std::span<const char> bytes) { return writer.write(bytes); });
//   for each received piece: IMGPULL_TRY(behind.append(piece));  // copies; may return
//                                                              // an earlier consume error
//   IMGPULL_TRY(behind.drain());  // everything consumed, in order; the first error
//
// The thread starts with the first full buffer, so a stream shorter than one
// buffer (a config, a tiny layer) is consumed by drain() in the caller's thread
// and costs no thread. After a consume error nothing more is consumed. Memory:
// `buffers` x `buffer_bytes`. What a SIGKILL can lose is what is held here.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <thread>
#include <vector>

#include "imgpull/error.h"

namespace imgpull {

class WriteBehind {
 public:
  using Consume = std::function<Status(std::span<const char>)>;
  static constexpr size_t kDefaultBuffers = 4;
  static constexpr size_t kDefaultBufferBytes = 256 * 1024;

  explicit WriteBehind(Consume consume, size_t buffers = kDefaultBuffers,
                       size_t buffer_bytes = kDefaultBufferBytes);
  // Consumes what is held (an orderly stop keeps every received byte), then stops.
  ~WriteBehind();
  WriteBehind(const WriteBehind&) = delete;
  WriteBehind& operator=(const WriteBehind&) = delete;

  // Copies `bytes` in; a full buffer goes to the consumer thread, waiting for
  // a free one when all are queued. Fails with the consumer's first error.
  Status append(std::span<const char> bytes);
  // Hands over the partly filled buffer and waits until everything appended
  // was consumed; returns the consumer's first error, if any.
  Status drain();
  // Waits for a running consume to end, then forgets every byte not consumed
  // yet and any error: the stream starts over.
  void discard();
  // Bytes appended since construction (or the last discard), consumed or not.
  uint64_t appended() const { return appended_; }

 private:
  void run();
  void start_thread();
  // Queues the filling buffer (lock held).
  void hand_over(std::unique_lock<std::mutex>& lock);
  // Buffers queued or being consumed (lock held).
  size_t in_use() const { return queued_.size() + (consuming_ ? 1 : 0); }

  Consume consume_;
  size_t buffer_bytes_;
  std::vector<char> filling_;
  uint64_t appended_ = 0;

  std::mutex mutex_;
  std::condition_variable changed_;
  std::deque<std::vector<char>> queued_;  // full buffers, oldest first
  std::vector<std::vector<char>> spare_;  // consumed buffers, for reuse
  size_t buffers_;
  bool consuming_ = false;  // the thread holds a buffer
  bool stop_ = false;
  std::optional<Error> error_;
  std::thread thread_;
};

}  // namespace imgpull
