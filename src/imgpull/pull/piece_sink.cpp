#include "pull/piece_sink.h"

#include "pull/ingest_sink.h"

namespace imgpull {

PieceSink::PieceSink(const Piece& piece, RangePlan& plan, RangedBlob& blob, const StopSignal& stop,
                     std::atomic<uint64_t>& bytes_received)
    : piece_(piece),
      plan_(plan),
      blob_(blob),
      stop_(stop),
      bytes_received_(bytes_received),
      write_pos_(plan.position(piece.id)),
      behind_(
          [this](std::span<const char> bytes) {
            Status st = blob_.write(piece_.id, write_pos_, bytes);
            write_pos_ += bytes.size();
            return st;
          },
          kIngestBuffers, kIngestWriteBytes) {}

std::optional<uint64_t> PieceSink::range_end() const {
  if (carrying_) return std::nullopt;
  asked_end_ = plan_.end_of(piece_.id);
  return asked_end_;
}

Status PieceSink::restart() {
  behind_.discard();
  if (!plan_.carry_whole(piece_.id)) {
    satisfied_ = true;
    return Error(ErrorCode::kCancelled, "another connection carries the whole blob");
  }
  carrying_ = true;
  write_pos_ = 0;
  return {};
}

Status PieceSink::write(const char* data, size_t size) {
  if (stop_.interrupted()) return Error(ErrorCode::kCancelled, "interrupted");
  if (stop_.failed()) return Error(ErrorCode::kUnavailable, "cancelled: another step of the pull failed");
  if (!first_byte_at_) first_byte_at_ = std::chrono::steady_clock::now();
  size_t kept = plan_.accept(piece_.id, size);
  bytes_received_ += kept;
  if (kept > 0) IMGPULL_TRY(behind_.append(std::span<const char>(data, kept)));
  // Stop early only where another connection took the rest: a piece that
  // ends where it was asked to ends with its response, keeping the connection.
  uint64_t end = plan_.end_of(piece_.id);
  if (kept < size || (!carrying_ && plan_.position(piece_.id) >= end && end < asked_end_)) satisfied_ = true;
  return {};
}

}  // namespace imgpull
