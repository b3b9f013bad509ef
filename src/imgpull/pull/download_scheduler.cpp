#include "pull/download_scheduler.h"

#include <thread>

#include "base/thread_name.h"
#include "pull/ingest_sink.h"

namespace imgpull {

bool is_foreign_layer(std::string_view media_type) {
  return media_type.find(".nondistributable.") != std::string_view::npos ||
         media_type.find(".foreign.") != std::string_view::npos;
}

Status DownloadScheduler::run(const std::vector<Descriptor>& blobs, int concurrency) {
  std::atomic<size_t> next{0};
  auto work = [&] {
    name_this_thread("imgpull-fetch");
    while (!stop_.failed()) {
      if (stop_.interrupted()) {
        fail(Error(ErrorCode::kCancelled, "interrupted"));
        return;
      }
      size_t i = next.fetch_add(1);
      if (i >= blobs.size()) return;
      Status st = download(blobs[i]);
      if (!st.ok()) fail(std::move(st).error().wrap("layer " + blobs[i].digest.str()));
    }
  };
  std::vector<std::thread> threads;
  int n = std::max(1, std::min<int>(concurrency, static_cast<int>(blobs.size())));
  for (int t = 0; t < n; ++t) threads.emplace_back(work);
  for (auto& t : threads) t.join();
  std::lock_guard lock(error_mutex_);  // the applier may cancel at any time
  if (first_error_) return *first_error_;
  return {};
}

Status DownloadScheduler::download(const Descriptor& blob) {
  FollowedBlob* follower = nullptr;
  if (auto it = followed_.find(blob.digest); it != followed_.end()) follower = it->second.get();
  // A blob whose bytes are wrong is fetched once more from its first byte (a
  // flipped bit on the way, a partial file a crash mangled); wrong twice, the
  // registry itself serves it wrong and the pull fails.
  for (int attempt = 0;; ++attempt) {
    IMGPULL_ASSIGN_OR_RETURN(auto writer, store_.begin_ingest(blob.digest, blob.size));
    if (!writer) {
      // Another process committed it while we waited for its lock.
      if (follower != nullptr) follower->grew(static_cast<uint64_t>(blob.size));
      break;
    }
    if (writer->resumed_bytes() > 0) {
      bytes_resumed_ += writer->resumed_bytes();
      events_.layer(PullEvent::Kind::kLayerResumed, blob, writer->resumed_bytes());
    }
    if (follower != nullptr) {
      IMGPULL_ASSIGN_OR_RETURN(int fd, writer->open_reader());
      follower->opened(fd);
      follower->grew(writer->bytes_written());  // what a resumed file already holds
    }
    IngestSink sink(blob, *writer, follower, events_, stop_, bytes_received_);
    Status fetched = is_foreign_layer(blob.media_type) ? registry_.fetch_foreign_blob(blob, sink)
                                                       : registry_.fetch_blob(blob, sink);
    if (fetched.ok()) fetched = sink.flush();  // the gathered tail, before the digest is checked
    if (fetched.ok()) {
      events_.layer(PullEvent::Kind::kLayerVerifying, blob, writer->bytes_written());
      fetched = writer->commit();
    }
    if (fetched.ok()) {
      events_.layer(PullEvent::Kind::kLayerDownloaded, blob, static_cast<uint64_t>(blob.size));
      break;
    }
    Error error = std::move(fetched).error();
    // Anything but wrong bytes (the network, the disk, an interrupt) keeps the
    // partial file for the next pull: the writer goes, the file stays, with
    // what was gathered but not yet written (best effort: the disk may be
    // what failed).
    if (error.code() != ErrorCode::kCorrupt) {
      (void)sink.flush();
      return error;
    }
    sink.abandon();
    writer->discard();  // wrong bytes are never resumed from
    if (attempt > 0) {
      return Error(ErrorCode::kCorrupt, error.message() + " (fetched twice from the first byte, wrong both times)");
    }
    if (follower != nullptr && !follower->rewind()) {
      return Error(ErrorCode::kCorrupt,
                   error.message() + " (not fetched again: its bytes were already applied to the "
                                     "rootfs; pull again into a fresh rootfs directory)");
    }
    events_.layer(PullEvent::Kind::kLayerRefetching, blob);
  }
  if (follower != nullptr) {
    follower->finished(store_.blob_path(blob.digest));
  } else {
    events_.layer(PullEvent::Kind::kLayerComplete, blob, static_cast<uint64_t>(blob.size));
  }
  return {};
}

void DownloadScheduler::fail(Error error) {
  std::lock_guard lock(error_mutex_);
  for (auto& [digest, follower] : followed_) follower->failed(error);
  if (!first_error_) first_error_ = std::move(error);
  stop_.fail();
}

}  // namespace imgpull
