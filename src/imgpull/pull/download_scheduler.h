// Downloads an image's missing blobs into the store over a budget of
// connections that grows while the link rewards it (connection_budget.h).
// A big blob is fetched as closed byte ranges by several connections at once
// (range_plan.h, ranged_blob.h); a small one whole, by one connection, with
// no extra round trip. Each blob is verified and committed, or fetched once
// more from its first byte when its bytes were wrong; a rootfs applier
// following a blob is told how far its contiguous bytes reach. The first
// failure stops every download.
//
//   DownloadScheduler downloads(registry, store, events, followed, stop);
//   IMGPULL_TRY(downloads.run(missing, DownloadOptions{}));
//   // from another thread, when the applier fails: downloads.cancel(error);
#pragma once

#include <atomic>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <optional>
#include <vector>

#include "imgpull/error.h"
#include "imgpull/manifest.h"
#include "imgpull/store.h"
#include "pull/connection_budget.h"
#include "pull/events.h"
#include "pull/followed_blob.h"
#include "pull/range_plan.h"
#include "pull/ranged_blob.h"
#include "pull/stop_signal.h"
#include "remote/registry.h"

namespace imgpull {

struct DownloadOptions {
  // Connections at once: the budget starts at `initial_connections` and grows
  // while each step raises the total rate, up to `max_connections`.
  int initial_connections = 4;
  int max_connections = 16;
  // Blobs fetched at once (docker's --max-concurrent-downloads; 0: as many
  // as there are connections); more connections than blobs split the blobs
  // in flight.
  int max_concurrent_blobs = 0;
  // A blob is fetched in pieces only from twice this size up; a piece is
  // split only while more than twice this is left of it.
  uint64_t min_piece_bytes = 4 << 20;
};

class DownloadScheduler {
 public:
  // `followed` holds the blobs a rootfs applier reads while they download
  // (may be empty); `stop` is shared with the rest of the pull.
  DownloadScheduler(Registry& registry, Store& store, PullEvents& events, FollowedBlobs& followed,
                    StopSignal& stop);
  ~DownloadScheduler();

  // Fetches `blobs`; returns the first failure (or the error cancel() was
  // given), after every connection's thread ended.
  Status run(const std::vector<Descriptor>& blobs, const DownloadOptions& options);
  // Stops every download, from any thread: another step of the pull failed.
  void cancel(Error error) { fail(std::move(error)); }

  uint64_t bytes_downloaded() const { return bytes_received_.load(); }
  uint64_t bytes_resumed() const { return bytes_resumed_.load(); }
  // The most pieces that were in flight at once.
  int peak_connections() const { return peak_connections_; }

 private:
  struct Blob;
  Status open(Blob& blob, const Piece& piece);
  void work();
  Status fetch_whole(Blob& blob, const Piece& piece);
  Status fetch_piece(Blob& blob, const Piece& piece);
  // Every byte of the blob is in: verify and commit it, or start it over.
  Status finish(Blob& blob);
  // The blob's bytes were wrong: start it over from its first byte, once.
  Status fetch_again(Blob& blob, Error wrong);
  void fail(Error error);
  bool all_done() const;

  Registry& registry_;
  Store& store_;
  PullEvents& events_;
  FollowedBlobs& followed_;
  StopSignal& stop_;
  std::unique_ptr<RangePlan> plan_;
  std::vector<std::unique_ptr<Blob>> blobs_;  // by plan index
  std::atomic<size_t> done_{0};
  std::atomic<uint64_t> bytes_received_{0};
  std::atomic<uint64_t> bytes_resumed_{0};
  std::mutex budget_mutex_;
  std::optional<ConnectionBudget> budget_;
  int peak_connections_ = 0;
  std::mutex wake_mutex_;
  std::condition_variable wake_;  // a piece ended, a blob finished, or the pull failed
  std::mutex error_mutex_;
  std::optional<Error> first_error_;
};

// Layers a registry does not serve: their descriptors list URLs elsewhere.
bool is_foreign_layer(std::string_view media_type);

}  // namespace imgpull
