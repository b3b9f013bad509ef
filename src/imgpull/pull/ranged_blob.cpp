#include "pull/ranged_blob.h"

namespace imgpull {

RangedBlob::RangedBlob(const Descriptor& blob, BlobWriter& writer, RangePlan& plan, size_t plan_index,
                       FollowedBlob* follower, PullEvents& events)
    : blob_(blob), writer_(writer), plan_(plan), index_(plan_index), follower_(follower), events_(events) {}

Status RangedBlob::write(uint64_t piece, uint64_t offset, std::span<const char> bytes) {
  IMGPULL_TRY(writer_.write_at(offset, bytes.data(), bytes.size()));
  plan_.written(piece, offset + bytes.size());
  uint64_t prefix = plan_.contiguous(index_);
  if (follower_ != nullptr) follower_->grew(prefix);
  IMGPULL_TRY(hash_prefix(offset, bytes, prefix));
  uint64_t received = plan_.received(index_);
  uint64_t due = next_report_.load();
  if (received >= due && next_report_.compare_exchange_strong(due, received + kProgressEveryBytes)) {
    events_.layer(PullEvent::Kind::kLayerDownloading, blob_, received);
  }
  if (unrecorded_.fetch_add(bytes.size()) + bytes.size() >= kRecordEveryBytes) {
    auto now = std::chrono::steady_clock::now().time_since_epoch().count();
    auto since = std::chrono::steady_clock::duration(now - last_record_.load());
    if (since >= kRecordEvery) IMGPULL_TRY(record());
  }
  return {};
}

Status RangedBlob::hash_prefix(uint64_t offset, std::span<const char> bytes, uint64_t prefix) {
  std::unique_lock lock(hash_mutex_, std::try_to_lock);
  if (!lock.owns_lock()) return {};
  writer_.hash_if_next(offset, bytes.data(), bytes.size());
  return writer_.hash_file_until(prefix);
}

Status RangedBlob::record() {
  std::lock_guard lock(record_mutex_);
  if (!recording_) return {};
  unrecorded_ = 0;
  last_record_ = std::chrono::steady_clock::now().time_since_epoch().count();
  BlobWriter::Ranges ranges;
  for (const auto& i : plan_.held(index_).intervals()) ranges.emplace_back(i.start, i.end);
  return writer_.record_ranges(ranges);
}

void RangedBlob::stop_recording() {
  std::lock_guard lock(record_mutex_);
  recording_ = false;
}

Status RangedBlob::finish_hash() {
  std::lock_guard lock(hash_mutex_);
  return writer_.hash_file_until(plan_.contiguous(index_));
}

}  // namespace imgpull
