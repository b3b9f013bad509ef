// Which bytes each connection of a pull fetches next: the blobs of an image
// as ranges handed to connections, so that the image finishes soonest.
//
// A free connection gets, in order: the most urgent blob not started (the
// config, which the rootfs applier waits for); else the unassigned bytes of
// the blob with the most work left (a big blob starts first, LPT-style);
// (an equal share of what is left for each connection, unless the blob's
// connections will finish it within min_split_seconds); else half of the
// largest range still in flight, split at what its connection has received
// so far — the connection holding it stops at the new end. A blob's first
// piece is alone until its answer shows whether (and where) the server
// serves ranges. Small blobs are never split: one plain GET, no extra round
// trip.
//
//   RangePlan plan({.min_split_bytes = 4 << 20});
//   size_t layer = plan.add_blob(size, /*priority=*/0, /*splittable=*/true, already_held);
//   while (auto piece = plan.next()) {            // in each connection's thread
//     size_t n = plan.accept(piece->id, got);    // before using `got` received bytes
//     ... write n bytes at piece->start + received ...; plan.written(piece->id, pos);
//     plan.release(piece->id);                   // done, or failed: the rest goes back
//   }
//
// Thread-safe. Positions are byte offsets in the blob.
#pragma once

#include <cstddef>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <vector>

#include "base/interval_set.h"

namespace imgpull {

// One connection's assignment: bytes [start, end) of a blob.
struct Piece {
  uint64_t id = 0;
  size_t blob = 0;
  uint64_t start = 0;
  uint64_t end = 0;     // as asked: the Range's last byte + 1 (the plan may lower it later)
  bool ranged = false;  // false: the whole blob, asked without Range
};

class RangePlan {
 public:
  struct Options {
    // A range with fewer bytes left than twice this is not split: its new
    // connection's round trip would cost more than it saves.
    uint64_t min_split_bytes = 4 << 20;
    // At most this many blobs are fetched at once (0: no limit); free
    // connections beyond them split the ranges in flight. Docker's
    // --max-concurrent-downloads, which also orders the progress display.
    size_t max_blobs_in_flight = 0;
    // Blobs start with the one with most left; false: in the order they were
    // added (docker's order, with --max-concurrent-downloads).
    bool biggest_first = true;
    // Within a blob, fresh bytes from its first gap (lowest offset) rather
    // than its largest: for a reader that follows the blob from its start.
    bool in_order = false;
    // A range is split only while its connection would need longer than this
    // for the rest (at the rate it has had): a new piece costs a request, a
    // cut-short one what was in flight beyond its end, so on a fast link a
    // nearly done range is left to finish.
    double min_split_seconds = 0.25;
    // How long a piece must have been receiving before its rate decides
    // whether its blob is spread over more connections or it is split; until
    // then (and before its first bytes) neither is done. 0: at once, an
    // unmeasured rate counting as slow. The scheduler uses 20 ms.
    double rate_window_seconds = 0;
    // The clock for those rates; empty: steady_clock (tests give their own).
    std::function<std::chrono::steady_clock::time_point()> now;
  };
  explicit RangePlan(Options options) : options_(options) {}

  // A blob of `size` bytes, of which `held` are already in its ingest file (a
  // resumed download). Higher `priority` goes first; a blob not
  // `splittable` is fetched whole by one connection.
  size_t add_blob(uint64_t size, int priority, bool splittable, const IntervalSet& held = {});
  // A blob whose ingest file is not open yet: its first piece is the whole
  // blob, never split, for the connection that takes it to open the file
  // (which may find bytes an interrupted pull left) and then call opened().
  size_t add_unopened_blob(uint64_t size, int priority, bool splittable);
  // The blob's ingest file is open and holds `held`; the piece that opened it
  // must be released after this, unused.
  void opened(size_t blob, const IntervalSet& held);
  bool is_open(size_t blob) const;
  // Another process is writing the blob's ingest file: the piece that tried
  // to open it is dropped, and the blob is not handed out again (nor counted
  // against max_blobs_in_flight) until retry_busy(). A connection never
  // waits for another process's lock while this one holds others' pieces.
  void busy(uint64_t piece);
  // Busy blobs may be tried again (the scheduler's tick).
  void retry_busy();

  // The next piece for a free connection; nullopt when nothing is left to
  // start: every byte is held or in flight, and no range is worth splitting.
  std::optional<Piece> next();

  // Before a connection uses `n` more received bytes of a piece: how many of
  // them it may keep (fewer once the piece's end was lowered by a split; 0
  // means the piece is done and its transfer should stop).
  size_t accept(uint64_t piece, size_t n);
  // The piece's bytes up to `pos` (exclusive) are in the ingest file. Returns
  // true when that completed the blob.
  bool written(uint64_t piece, uint64_t pos);
  // The connection is done with the piece: what it wrote is held, what it did
  // not goes back to be fetched by the next free connection.
  void release(uint64_t piece);

  // How many connections share the work now: a range handed out fresh is at
  // most an equal share of what is left, so that they start on disjoint
  // ranges rather than by cutting each other's short (what was on its way to
  // a cut-short range is wasted).
  void set_connections(int n);

  // The piece's first answer arrived (bytes, or a 200 for the whole blob):
  // whether the server serves ranges, and where (a redirect), is known, so
  // the blob may now be split. Before, a split would only repeat the question.
  void answered(uint64_t piece);

  // Where the piece's connection is (its next byte), and where it must stop.
  uint64_t position(uint64_t piece) const;
  uint64_t end_of(uint64_t piece) const;

  // The server ignored Range and sends the whole blob on this piece's
  // connection: the piece becomes [0, size), the blob's other pieces stop
  // where they are, and the blob is never split again. False when another
  // piece already carries the blob (this one then stops).
  bool carry_whole(uint64_t piece);
  // The blob's bytes were wrong: forget what is held, fetch it again from
  // its first byte (its pieces must all be released).
  void reset_blob(size_t blob);

  // Whether next() would hand out a piece now.
  bool has_work() const;
  // Pieces of the blob in flight.
  size_t pieces_in_flight(size_t blob) const;

  // Where the blob's held bytes run without a gap from its first byte.
  uint64_t contiguous(size_t blob) const;
  IntervalSet held(size_t blob) const;
  bool complete(size_t blob) const;
  // Pieces in flight, and bytes neither held nor in flight, over all blobs.
  size_t in_flight() const;
  uint64_t unassigned_bytes() const;
  // The blob's bytes received so far (held + in flight), for progress.
  uint64_t received(size_t blob) const;

 private:
  struct Blob {
    uint64_t size = 0;
    int priority = 0;
    bool splittable = false;
    IntervalSet held;
    IntervalSet assigned;  // held, or in some piece's [start, end)
    uint64_t carrier = 0;  // the piece carrying the whole blob (a server ignoring Range)
    bool open = true;      // false until its ingest file is open (add_unopened_blob)
    bool answered = false;  // a piece of it got its first answer (see answered())
    bool started = false;   // a piece of it was handed out (it counts against max_blobs_in_flight until complete)
    bool busy = false;      // another process holds its ingest file (see busy())
    double last_rate = 0;   // bytes/s of its last piece released, from its first bytes
  };
  struct Flight {
    Piece piece;
    uint64_t received = 0;  // bytes accepted, from piece.start
    uint64_t written = 0;   // of those, in the file
    std::chrono::steady_clock::time_point started;
    // When its first bytes came, and how many: its rate is measured from
    // there, so the request's round trip does not make a fast link look slow.
    std::optional<std::chrono::steady_clock::time_point> first_byte;
    uint64_t first_bytes = 0;
  };

  // next() without its effects: the blob and bytes to start, or the piece to
  // split, or neither.
  struct Choice {
    std::optional<size_t> blob;
    Interval bytes;
    uint64_t split = 0;  // the piece to split, when no blob
  };
  Choice choose() const;
  bool worth_spreading(size_t blob) const;
  bool measuring(const Flight& f, std::chrono::steady_clock::time_point now) const;
  std::optional<double> rate_of(const Flight& f, std::chrono::steady_clock::time_point now) const;
  std::optional<Piece> start_piece(size_t blob, Interval bytes);
  std::chrono::steady_clock::time_point clock() const;
  void recompute_assigned(size_t blob);

  Options options_;
  mutable std::mutex mutex_;
  std::vector<Blob> blobs_;
  std::map<uint64_t, Flight> flights_;
  uint64_t next_id_ = 1;
  int connections_ = 1;
};

}  // namespace imgpull
