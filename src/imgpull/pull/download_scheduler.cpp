#include "pull/download_scheduler.h"

#include <algorithm>
#include <chrono>
#include <thread>

#include "base/thread_name.h"
#include "pull/ingest_sink.h"
#include "pull/piece_sink.h"

namespace imgpull {
namespace {

// How often the budget looks at the rate, and idle connections at the plan.
constexpr std::chrono::milliseconds kTick{20};

}  // namespace

bool is_foreign_layer(std::string_view media_type) {
  return media_type.find(".nondistributable.") != std::string_view::npos ||
         media_type.find(".foreign.") != std::string_view::npos;
}

struct DownloadScheduler::Blob {
  explicit Blob(Descriptor d) : descriptor(std::move(d)) {}
  Descriptor descriptor;
  size_t index = 0;  // in the plan
  bool ranged = false;
  FollowedBlob* follower = nullptr;
  std::unique_ptr<BlobWriter> writer;
  std::unique_ptr<RangedBlob> pieces;
  // Writers and piece state of attempts given up (wrong bytes): kept until
  // the end, as a piece of the old attempt may still hold a reference.
  std::vector<std::unique_ptr<BlobWriter>> old_writers;
  std::vector<std::unique_ptr<RangedBlob>> old_pieces;
  int attempt = 0;
  std::atomic<bool> finishing{false};
  bool done = false;
};

DownloadScheduler::DownloadScheduler(Registry& registry, Store& store, PullEvents& events, FollowedBlobs& followed,
                                     StopSignal& stop)
    : registry_(registry), store_(store), events_(events), followed_(followed), stop_(stop) {}

DownloadScheduler::~DownloadScheduler() = default;

Status DownloadScheduler::run(const std::vector<Descriptor>& descriptors, const DownloadOptions& options) {
  RangePlan::Options plan;
  plan.min_split_bytes = options.min_piece_bytes;
  plan.max_blobs_in_flight = static_cast<size_t>(std::max(0, options.max_concurrent_blobs));
  plan.rate_window_seconds = 0.02;  // a tick: long enough for a rate, short against a slow link's seconds
  // Docker's flag brings docker's order: the layers in the manifest's order.
  // So does a rootfs made while downloading: its applier takes the layers in
  // that order, each from its first byte, so the bytes it needs next come
  // first (biggest first, it waited for the base layer until the end).
  plan.in_order = !followed_.empty();
  plan.biggest_first = options.max_concurrent_blobs <= 0 && !plan.in_order;
  const bool biggest_first = plan.biggest_first;
  plan_ = std::make_unique<RangePlan>(std::move(plan));
  // Blobs start biggest first (then in the manifest's order), or with
  // --max-concurrent-downloads in the manifest's order; a blob's ingest file
  // is opened (and locked) when a connection first takes it, so only blobs in
  // flight hold descriptors.
  std::vector<Descriptor> order = descriptors;
  if (biggest_first) {
    std::stable_sort(order.begin(), order.end(), [](const Descriptor& a, const Descriptor& b) { return a.size > b.size; });
  }
  for (const auto& d : order) {
    auto blob = std::make_unique<Blob>(d);
    if (auto it = followed_.find(d.digest); it != followed_.end()) blob->follower = it->second.get();
    // Pieces need a size to split, more than one connection, and a
    // registry (not a foreign URL, which may not serve ranges).
    blob->ranged = d.size >= 0 && static_cast<uint64_t>(d.size) >= 2 * options.min_piece_bytes &&
                   options.max_connections > 1 && !is_foreign_layer(d.media_type);
    blob->index = plan_->add_unopened_blob(static_cast<uint64_t>(std::max<int64_t>(d.size, 0)), 0, blob->ranged);
    blobs_.push_back(std::move(blob));
  }

  budget_.emplace(options.initial_connections, options.max_connections);
  plan_->set_connections(budget_->target());
  std::vector<std::thread> connections;
  auto grow_to = [&](int target) {
    while (static_cast<int>(connections.size()) < target && plan_->has_work()) connections.emplace_back([this] { work(); });
    peak_connections_ = std::max(peak_connections_, static_cast<int>(plan_->in_flight()));
  };
  grow_to(budget_->target());
  while (!all_done() && !stop_.failed()) {
    {
      std::unique_lock lock(wake_mutex_);
      wake_.wait_for(lock, kTick);
    }
    if (stop_.interrupted()) fail(Error(ErrorCode::kCancelled, "interrupted"));
    int target;
    {
      std::lock_guard lock(budget_mutex_);
      target = budget_->update(ConnectionBudget::Clock::now(), bytes_received_.load());
    }
    plan_->set_connections(target);
    plan_->retry_busy();
    grow_to(target);
  }
  wake_.notify_all();
  for (auto& t : connections) t.join();
  std::lock_guard lock(error_mutex_);  // the applier may cancel at any time
  if (first_error_) return *first_error_;
  return {};
}

// Takes the blob's ingest file, with whatever an interrupted pull left in
// it, and tells the plan. Never waits for another process writing the same
// blob: this pull holds other blobs' files, which that process may be about
// to want, so the blob is set aside (busy) and tried again at the next tick.
Status DownloadScheduler::open(Blob& blob, const Piece& piece) {
  const Descriptor& d = blob.descriptor;
  IMGPULL_ASSIGN_OR_RETURN(Store::IngestAttempt attempt, store_.try_begin_ingest(d.digest, d.size));
  if (attempt.busy) {  // (its progress line still says Waiting)
    plan_->busy(piece.id);
    return {};
  }
  blob.writer = std::move(attempt.writer);
  uint64_t size = static_cast<uint64_t>(std::max<int64_t>(d.size, 0));
  IntervalSet held;
  if (!blob.writer) {
    // Another process committed it while we waited for its lock.
    held.add(0, size);
    plan_->opened(blob.index, held);
    if (blob.follower != nullptr) {
      blob.follower->grew(size);
      blob.follower->finished(store_.blob_path(d.digest));
    } else {
      events_.layer(PullEvent::Kind::kLayerComplete, d, size);
    }
    blob.done = true;
    ++done_;
    return {};
  }
  if (blob.writer->resumed_bytes() > 0) {
    bytes_resumed_ += blob.writer->resumed_bytes();
    events_.layer(PullEvent::Kind::kLayerResumed, d, blob.writer->resumed_bytes());
  }
  held.add(0, blob.writer->bytes_written());
  for (const auto& [start, end] : blob.writer->recorded_ranges()) held.add(start, end);
  if (blob.ranged) {
    blob.pieces = std::make_unique<RangedBlob>(blob.descriptor, *blob.writer, *plan_, blob.index, blob.follower,
                                               events_);
  }
  if (blob.follower != nullptr) {
    IMGPULL_ASSIGN_OR_RETURN(int fd, blob.writer->open_reader());
    blob.follower->opened(fd);
    blob.follower->grew(held.contiguous_from(0));  // what a resumed file already holds
  }
  plan_->opened(blob.index, held);
  // A record before the first piece writes a byte: a file killed before its
  // next record must never be taken for a prefix of the blob (its holes are
  // zeros).
  if (blob.pieces) IMGPULL_TRY(blob.pieces->record());
  return {};
}

void DownloadScheduler::work() {
  name_this_thread("imgpull-fetch");
  while (!stop_.failed()) {
    if (stop_.interrupted()) {
      fail(Error(ErrorCode::kCancelled, "interrupted"));
      return;
    }
    std::optional<Piece> piece = plan_->next();
    if (!piece) {
      if (all_done()) return;
      std::unique_lock lock(wake_mutex_);
      wake_.wait_for(lock, kTick);
      continue;
    }
    Blob& blob = *blobs_[piece->blob];
    Status st;
    if (!plan_->is_open(blob.index)) {
      // The piece is the blob's first: open its file, then fetch what it lacks.
      st = open(blob, *piece);
      plan_->release(piece->id);  // (nothing when busy() dropped it)
      if (st.ok() && !blob.done && plan_->complete(blob.index)) st = finish(blob);  // nothing to fetch
    } else {
      st = blob.ranged ? fetch_piece(blob, *piece) : fetch_whole(blob, *piece);
    }
    wake_.notify_all();
    if (!st.ok()) {
      fail(std::move(st).error().wrap("layer " + blob.descriptor.digest.str()));
      return;
    }
  }
}

Status DownloadScheduler::fetch_whole(Blob& blob, const Piece& piece) {
  const Descriptor& d = blob.descriptor;
  Status fetched;
  {
    IngestSink sink(d, *blob.writer, blob.follower, events_, stop_, bytes_received_);
    fetched = is_foreign_layer(d.media_type) ? registry_.fetch_foreign_blob(d, sink) : registry_.fetch_blob(d, sink);
    if (fetched.ok()) {
      fetched = sink.flush();  // the gathered tail, before the digest is checked
    } else if (fetched.error().code() != ErrorCode::kCorrupt) {
      // The network, the disk, an interrupt: the partial file stays for the
      // next pull, with what was gathered but not yet written (best effort:
      // the disk may be what failed).
      (void)sink.flush();
    } else {
      sink.abandon();
    }
  }
  if (fetched.ok()) plan_->written(piece.id, blob.writer->bytes_written());
  plan_->release(piece.id);
  if (fetched.ok()) return finish(blob);
  if (fetched.error().code() != ErrorCode::kCorrupt) return fetched;
  blob.writer->discard();  // wrong bytes are never resumed from
  return fetch_again(blob, std::move(fetched).error());
}

Status DownloadScheduler::fetch_piece(Blob& blob, const Piece& piece) {
  const Descriptor& d = blob.descriptor;
  RangedBlob& pieces = *blob.pieces;
  Status fetched;
  {
    PieceSink sink(piece, *plan_, pieces, stop_, bytes_received_);
    auto asked = ConnectionBudget::Clock::now();
    fetched = registry_.fetch_blob(d, sink);
    // Whatever arrived is written, whether the piece ended well or not: it is
    // held, recorded, and resumed from.
    Status flushed = sink.flush();
    if (fetched.ok()) fetched = flushed;
    if (auto first = sink.first_byte_at()) {
      std::lock_guard lock(budget_mutex_);
      budget_->saw_first_byte(*first - asked);
    }
  }
  plan_->release(piece.id);
  Status recorded = pieces.record();
  if (!fetched.ok()) return fetched;
  IMGPULL_TRY(std::move(recorded));
  if (!plan_->complete(blob.index) || plan_->pieces_in_flight(blob.index) > 0) return {};
  if (blob.finishing.exchange(true)) return {};  // another connection finishes it
  return finish(blob);
}

Status DownloadScheduler::finish(Blob& blob) {
  const Descriptor& d = blob.descriptor;
  Status committed;
  if (blob.pieces) {
    blob.pieces->stop_recording();  // a late piece's record must not outlive the commit
    committed = blob.pieces->finish_hash();
  }
  if (committed.ok()) {
    events_.layer(PullEvent::Kind::kLayerVerifying, d, blob.writer->bytes_written());
    committed = blob.writer->commit();  // a wrong blob is discarded by it
  }
  if (!committed.ok()) {
    if (committed.error().code() != ErrorCode::kCorrupt) return committed;
    return fetch_again(blob, std::move(committed).error());
  }
  events_.layer(PullEvent::Kind::kLayerDownloaded, d, static_cast<uint64_t>(d.size));
  if (blob.follower != nullptr) {
    blob.follower->finished(store_.blob_path(d.digest));
  } else {
    events_.layer(PullEvent::Kind::kLayerComplete, d, static_cast<uint64_t>(d.size));
  }
  blob.done = true;
  ++done_;
  wake_.notify_all();
  return {};
}

Status DownloadScheduler::fetch_again(Blob& blob, Error wrong) {
  const Descriptor& d = blob.descriptor;
  // A blob whose bytes are wrong is fetched once more from its first byte (a
  // flipped bit on the way, a partial file a crash mangled); wrong twice, the
  // registry itself serves it wrong and the pull fails.
  if (blob.attempt > 0) {
    return Error(ErrorCode::kCorrupt, wrong.message() + " (fetched twice from the first byte, wrong both times)");
  }
  if (blob.follower != nullptr && !blob.follower->rewind()) {
    return Error(ErrorCode::kCorrupt, wrong.message() +
                                          " (not fetched again: its bytes were already applied to the "
                                          "rootfs; pull again into a fresh rootfs directory)");
  }
  ++blob.attempt;
  events_.layer(PullEvent::Kind::kLayerRefetching, d);
  blob.old_writers.push_back(std::move(blob.writer));
  if (blob.pieces) blob.old_pieces.push_back(std::move(blob.pieces));
  IMGPULL_ASSIGN_OR_RETURN(blob.writer, store_.begin_ingest(d.digest, d.size));
  if (!blob.writer) return Error(ErrorCode::kInternal, "blob " + d.digest.str() + " appeared while refetching it");
  if (blob.writer->bytes_written() > 0) IMGPULL_TRY(blob.writer->restart());
  plan_->reset_blob(blob.index);
  if (blob.ranged) {
    blob.pieces = std::make_unique<RangedBlob>(d, *blob.writer, *plan_, blob.index, blob.follower, events_);
    IMGPULL_TRY(blob.pieces->record());
  }
  if (blob.follower != nullptr) {
    IMGPULL_ASSIGN_OR_RETURN(int fd, blob.writer->open_reader());
    blob.follower->opened(fd);
  }
  blob.finishing = false;
  wake_.notify_all();
  return {};
}

bool DownloadScheduler::all_done() const { return done_.load() == blobs_.size(); }

void DownloadScheduler::fail(Error error) {
  {
    std::lock_guard lock(error_mutex_);
    for (auto& [digest, follower] : followed_) follower->failed(error);
    if (!first_error_) first_error_ = std::move(error);
    stop_.fail();
  }
  wake_.notify_all();
}

}  // namespace imgpull
