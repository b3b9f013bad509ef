// One blob downloaded as pieces by several connections at once. Each
// piece's bytes go to the blob's ingest file at their offsets; the SHA-256
// follows the contiguous prefix (hashed as it is written where it can be,
// read back from the page cache where a later piece finished first); a
// rootfs applier following the blob is told how far the prefix reaches; and
// what the file holds is recorded beside it, so that a killed pull resumes
// every piece on disk.
//
//   RangedBlob blob(layer, *writer, plan, index, follower, events);
//   // in each piece's write-behind thread:  blob.write(piece_id, offset, bytes);
//   // once the plan says the blob is complete: blob.finish_hash(); writer->commit();
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <mutex>
#include <span>

#include "imgpull/manifest.h"
#include "imgpull/store.h"
#include "pull/events.h"
#include "pull/followed_blob.h"
#include "pull/range_plan.h"

namespace imgpull {

// What is held is recorded once this many new bytes of a blob came and this
// long has passed since its last record: a SIGKILL makes the next pull fetch
// again at most 100 ms of a blob (or 1 MiB). Every MiB on a fast link was 60
// file replacements for a 60 MiB layer on loopback, a tenth of its pull.
inline constexpr uint64_t kRecordEveryBytes = 1 << 20;
inline constexpr std::chrono::milliseconds kRecordEvery{100};

class RangedBlob {
 public:
  RangedBlob(const Descriptor& blob, BlobWriter& writer, RangePlan& plan, size_t plan_index, FollowedBlob* follower,
             PullEvents& events);

  // Bytes of piece `piece` at `offset`, from that piece's write-behind thread.
  Status write(uint64_t piece, uint64_t offset, std::span<const char> bytes);
  // Records what is held now (a piece ended, or the pull stops).
  Status record();
  // No record from now on: the blob is being committed (or discarded), and
  // the record goes with its file.
  void stop_recording();
  // Every byte is held: hashes what is not hashed yet. Then commit the writer.
  Status finish_hash();

 private:
  // Hashes the prefix as far as it reaches, unless another thread is at it
  // (it then hashes these bytes too, or finish_hash does).
  // `prefix`: where the blob's written bytes run without a gap from its start.
  Status hash_prefix(uint64_t offset, std::span<const char> bytes, uint64_t prefix);

  const Descriptor& blob_;
  BlobWriter& writer_;
  RangePlan& plan_;
  size_t index_;
  FollowedBlob* follower_;
  PullEvents& events_;
  std::mutex hash_mutex_;
  std::mutex record_mutex_;
  std::atomic<uint64_t> unrecorded_{0};  // bytes written since the last record
  std::atomic<std::chrono::steady_clock::rep> last_record_{0};  // steady_clock ticks
  bool recording_ = true;                 // guarded by record_mutex_
  std::atomic<uint64_t> next_report_{0};
};

}  // namespace imgpull
