// Where one downloading blob's bytes go: hashed and written to its ingest
// file in the store by a thread of its own (WriteBehind) so that receiving
// and hashing overlap, told to the rootfs applier following the blob, and
// reported as progress.
//
//   IngestSink sink(layer, *writer, follower, events, stop, bytes_received);
//   IMGPULL_TRY(registry.fetch_blob(layer, sink));   // calls sink.write(...)
//   IMGPULL_TRY(sink.flush());                       // then writer->commit()
#pragma once

#include <atomic>
#include <cstdint>
#include <span>

#include "imgpull/store.h"
#include "pull/events.h"
#include "pull/followed_blob.h"
#include "pull/stop_signal.h"
#include "pull/write_behind.h"
#include "remote/registry.h"

namespace imgpull {

// libcurl hands a body over in small pieces; they are gathered into writes of
// this size, so a 1 GB layer costs four thousand write(2)s and wake-ups of the
// rootfs applier instead of sixty thousand. Hashing and writing them runs up
// to kIngestBuffers behind the receiving. Not more: what is held is what a
// SIGKILL loses per running download (an orderly stop writes it out), and the
// crash test bounds that loss.
inline constexpr size_t kIngestWriteBytes = 256 * 1024;
inline constexpr size_t kIngestBuffers = 3;

class IngestSink : public BlobSink {
 public:
  // `follower` may be null (no rootfs, or the blob is not one it needs);
  // `bytes_received` counts what every download of the pull received.
  IngestSink(const Descriptor& blob, BlobWriter& writer, FollowedBlob* follower, PullEvents& events,
             const StopSignal& stop, std::atomic<uint64_t>& bytes_received);

  // Received bytes, whether written to the ingest file yet or not.
  uint64_t bytes_held() const override { return held_before_ + behind_.appended(); }
  bool cancelled() const override { return stop_.stopping(); }
  Status restart() override;
  Status write(const char* data, size_t size) override;

  // Writes everything received; call before the blob is committed.
  Status flush() { return behind_.drain(); }
  // Forgets what is not written yet, once no write runs: the bytes are wrong.
  void abandon() { behind_.discard(); }

 private:
  // In behind_'s thread (or in flush's): hash, write, tell the follower.
  Status write_through(std::span<const char> bytes);

  const Descriptor& blob_;
  BlobWriter& writer_;
  FollowedBlob* follower_;
  PullEvents& events_;
  const StopSignal& stop_;
  std::atomic<uint64_t>& bytes_received_;
  uint64_t next_report_ = 0;
  uint64_t held_before_;  // what the ingest file held when this sink began
  WriteBehind behind_;    // last: its thread stops before the rest goes
};

}  // namespace imgpull
