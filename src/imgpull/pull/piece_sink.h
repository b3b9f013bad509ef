// Where one connection puts the bytes of its piece of a blob (see
// range_plan.h): checked against the piece's current end (a free connection
// may have taken the rest of it), handed to a thread of its own to write at
// their offsets (WriteBehind), counted.
//
//   PieceSink sink(piece, plan, ranged_blob, stop, bytes_received);
//   Status st = registry.fetch_blob(layer, sink);   // closed Range requests
//   if (st.ok()) st = sink.flush();
//   plan.release(piece.id);
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <optional>

#include "pull/range_plan.h"
#include "pull/ranged_blob.h"
#include "pull/stop_signal.h"
#include "pull/write_behind.h"
#include "remote/registry.h"

namespace imgpull {

class PieceSink : public BlobSink {
 public:
  PieceSink(const Piece& piece, RangePlan& plan, RangedBlob& blob, const StopSignal& stop,
            std::atomic<uint64_t>& bytes_received);

  uint64_t bytes_held() const override { return plan_.position(piece_.id); }
  std::optional<uint64_t> range_end() const override;
  bool cancelled() const override { return stop_.stopping(); }
  bool satisfied() const override { return satisfied_; }
  Status restart() override;
  Status write(const char* data, size_t size) override;

  // Writes everything received.
  Status flush() { return behind_.drain(); }
  // When the first byte of the piece arrived (for the connection budget).
  std::optional<std::chrono::steady_clock::time_point> first_byte_at() const { return first_byte_at_; }

 private:
  Piece piece_;
  RangePlan& plan_;
  RangedBlob& blob_;
  const StopSignal& stop_;
  std::atomic<uint64_t>& bytes_received_;
  bool carrying_ = false;            // the server sends the whole blob on this connection
  mutable uint64_t asked_end_ = 0;   // the end the current request asked for
  bool satisfied_ = false;
  std::optional<std::chrono::steady_clock::time_point> first_byte_at_;
  uint64_t write_pos_;               // where behind_'s next bytes go
  WriteBehind behind_;               // last: its thread stops before the rest goes
};

}  // namespace imgpull
