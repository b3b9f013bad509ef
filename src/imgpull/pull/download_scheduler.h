// Downloads an image's missing blobs into the store, at most N at once. Each
// blob is verified and committed, or fetched once more from its first byte
// when its bytes were wrong; a rootfs applier following a blob is told of
// every byte written and of the end. The first failure stops every download.
//
//   DownloadScheduler downloads(registry, store, events, followed, stop);
//   IMGPULL_TRY(downloads.run(missing, /*concurrency=*/3));
//   // from another thread, when the applier fails: downloads.cancel(error);
#pragma once

#include <atomic>
#include <mutex>
#include <optional>
#include <vector>

#include "imgpull/error.h"
#include "imgpull/manifest.h"
#include "imgpull/store.h"
#include "pull/events.h"
#include "pull/followed_blob.h"
#include "pull/stop_signal.h"
#include "remote/registry.h"

namespace imgpull {

class DownloadScheduler {
 public:
  // `followed` holds the blobs a rootfs applier reads while they download
  // (may be empty); `stop` is shared with the rest of the pull.
  DownloadScheduler(Registry& registry, Store& store, PullEvents& events, FollowedBlobs& followed,
                    StopSignal& stop)
      : registry_(registry), store_(store), events_(events), followed_(followed), stop_(stop) {}

  // Fetches `blobs` with at most `concurrency` at once; returns the first
  // failure (or the error cancel() was given), after every thread ended.
  Status run(const std::vector<Descriptor>& blobs, int concurrency);
  // Stops every download, from any thread: another step of the pull failed.
  void cancel(Error error) { fail(std::move(error)); }

  uint64_t bytes_downloaded() const { return bytes_received_.load(); }
  uint64_t bytes_resumed() const { return bytes_resumed_.load(); }

 private:
  Status download(const Descriptor& blob);
  void fail(Error error);

  Registry& registry_;
  Store& store_;
  PullEvents& events_;
  FollowedBlobs& followed_;
  StopSignal& stop_;
  std::atomic<uint64_t> bytes_received_{0};
  std::atomic<uint64_t> bytes_resumed_{0};
  std::mutex error_mutex_;
  std::optional<Error> first_error_;
};

// Layers a registry does not serve: their descriptors list URLs elsewhere.
bool is_foreign_layer(std::string_view media_type);

}  // namespace imgpull
