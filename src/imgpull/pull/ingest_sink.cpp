#include "pull/ingest_sink.h"

namespace imgpull {

IngestSink::IngestSink(const Descriptor& blob, BlobWriter& writer, FollowedBlob* follower, PullEvents& events,
                       const StopSignal& stop, std::atomic<uint64_t>& bytes_received)
    : blob_(blob),
      writer_(writer),
      follower_(follower),
      events_(events),
      stop_(stop),
      bytes_received_(bytes_received),
      held_before_(writer.bytes_written()),
      behind_([this](std::span<const char> bytes) { return write_through(bytes); }, kIngestBuffers,
              kIngestWriteBytes) {}

Status IngestSink::restart() {
  behind_.discard();
  next_report_ = 0;
  held_before_ = 0;
  return writer_.restart();
}

Status IngestSink::write(const char* data, size_t size) {
  if (stop_.interrupted()) return Error(ErrorCode::kCancelled, "interrupted");
  if (stop_.failed()) return Error(ErrorCode::kUnavailable, "cancelled: another step of the pull failed");
  bytes_received_ += size;
  return behind_.append(std::span<const char>(data, size));
}

Status IngestSink::write_through(std::span<const char> bytes) {
  IMGPULL_TRY(writer_.write(bytes.data(), bytes.size()));
  if (follower_ != nullptr) follower_->grew(writer_.bytes_written());
  if (writer_.bytes_written() >= next_report_) {
    events_.layer(PullEvent::Kind::kLayerDownloading, blob_, writer_.bytes_written());
    next_report_ = writer_.bytes_written() + kProgressEveryBytes;
  }
  return {};
}

}  // namespace imgpull
