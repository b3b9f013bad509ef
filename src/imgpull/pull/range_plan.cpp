#include "pull/range_plan.h"

#include <algorithm>

namespace imgpull {
namespace {

// Split points fall on these boundaries, so that ranges stay page-aligned
// in the ingest file.
constexpr uint64_t kSplitAlignment = 64 * 1024;

}  // namespace

size_t RangePlan::add_blob(uint64_t size, int priority, bool splittable, const IntervalSet& held) {
  std::lock_guard lock(mutex_);
  Blob blob;
  blob.size = size;
  blob.priority = priority;
  blob.splittable = splittable;
  for (const auto& i : held.intervals()) blob.held.add(std::min(i.start, size), std::min(i.end, size));
  blob.assigned = blob.held;
  blobs_.push_back(std::move(blob));
  return blobs_.size() - 1;
}

size_t RangePlan::add_unopened_blob(uint64_t size, int priority, bool splittable) {
  std::lock_guard lock(mutex_);
  Blob blob;
  blob.size = size;
  blob.priority = priority;
  blob.splittable = splittable;
  blob.open = false;
  blobs_.push_back(std::move(blob));
  return blobs_.size() - 1;
}

void RangePlan::opened(size_t index, const IntervalSet& held) {
  std::lock_guard lock(mutex_);
  Blob& blob = blobs_[index];
  blob.held.clear();
  for (const auto& i : held.intervals()) blob.held.add(std::min(i.start, blob.size), std::min(i.end, blob.size));
  blob.open = true;
  recompute_assigned(index);
}

bool RangePlan::is_open(size_t blob) const {
  std::lock_guard lock(mutex_);
  return blobs_[blob].open;
}

void RangePlan::busy(uint64_t piece) {
  std::lock_guard lock(mutex_);
  auto it = flights_.find(piece);
  if (it == flights_.end()) return;
  Blob& blob = blobs_[it->second.piece.blob];
  blob.busy = true;
  blob.started = false;
  size_t index = it->second.piece.blob;
  flights_.erase(it);
  recompute_assigned(index);
}

void RangePlan::retry_busy() {
  std::lock_guard lock(mutex_);
  for (Blob& blob : blobs_) blob.busy = false;
}

std::optional<Piece> RangePlan::start_piece(size_t index, Interval bytes) {
  Blob& blob = blobs_[index];
  blob.started = true;
  Piece piece{next_id_++, index, bytes.start, bytes.end, blob.splittable && blob.open};
  blob.assigned.add(bytes.start, bytes.end);
  flights_.emplace(piece.id, Flight{piece, 0, 0, clock(), std::nullopt, 0});
  return piece;
}

// Still learning the piece's rate: no bytes yet, or bytes for less than
// rate_window_seconds (never, with a window of 0).
bool RangePlan::measuring(const Flight& f, std::chrono::steady_clock::time_point now) const {
  if (options_.rate_window_seconds <= 0) return false;
  return !f.first_byte || std::chrono::duration<double>(now - *f.first_byte).count() < options_.rate_window_seconds;
}

// The piece's bytes/s since its first bytes (the request's round trip left
// out); nullopt when that cannot be known (no bytes since, no time passed).
std::optional<double> RangePlan::rate_of(const Flight& f, std::chrono::steady_clock::time_point now) const {
  if (!f.first_byte || f.received <= f.first_bytes) return std::nullopt;
  double seconds = std::chrono::duration<double>(now - *f.first_byte).count();
  if (seconds <= 0) return std::nullopt;
  return static_cast<double>(f.received - f.first_bytes) / seconds;
}

// Whether another connection on the blob would pay off: not while the ones
// on it will have all of it within min_split_seconds at the rate they have
// had since their first bytes (on a fast link, or loopback, one connection
// finishes a blob before another's request does any good). Pieces not
// measured yet (no bytes, or for less than rate_window_seconds) are taken to
// go as fast as the measured ones; with none measured, nobody joins yet. A
// rate that cannot be known (a clock that stands still, rate_window_seconds
// 0) is a slow one.
bool RangePlan::worth_spreading(size_t index) const {
  const Blob& blob = blobs_[index];
  auto now = clock();
  double rate = 0;
  int pieces = 0, measured = 0;
  for (const auto& [id, f] : flights_) {
    if (f.piece.blob != index) continue;
    ++pieces;
    if (measuring(f, now)) continue;
    if (auto r = rate_of(f, now)) {
      rate += *r;
      ++measured;
    }
  }
  if (measured == 0) return options_.rate_window_seconds <= 0;
  rate *= static_cast<double>(pieces) / measured;
  return static_cast<double>(blob.size - blob.held.total()) / rate >= options_.min_split_seconds;
}

RangePlan::Choice RangePlan::choose() const {
  Choice choice;
  auto in_flight = [&](size_t i) {
    return std::any_of(flights_.begin(), flights_.end(), [&](const auto& f) { return f.second.piece.blob == i; });
  };
  size_t blobs_in_flight = 0;
  uint64_t unassigned = 0;
  for (size_t i = 0; i < blobs_.size(); ++i) {
    const Blob& blob = blobs_[i];
    blobs_in_flight += blob.started && blob.held.contiguous_from(0) < blob.size ? 1 : 0;
    unassigned += blobs_[i].size - blobs_[i].assigned.total();
  }
  // What is left, shared by the connections not busy yet.
  uint64_t idle = static_cast<uint64_t>(std::max<int64_t>(1, connections_ - static_cast<int64_t>(flights_.size())));
  uint64_t share = std::max<uint64_t>(2 * options_.min_split_bytes, (unassigned + idle - 1) / idle);
  bool may_start_blob = options_.max_blobs_in_flight == 0 || blobs_in_flight < options_.max_blobs_in_flight;
  // Bytes nobody fetches yet, from the most urgent blob, then the one with
  // the most work left.
  auto better = [&](size_t i) {
    if (!choice.blob) return true;
    const Blob& a = blobs_[i];
    const Blob& b = blobs_[*choice.blob];
    if (a.priority != b.priority) return a.priority > b.priority;
    if (!options_.biggest_first) return false;  // the first added wins
    return a.size - a.held.total() > b.size - b.held.total();
  };
  for (size_t i = 0; i < blobs_.size(); ++i) {
    const Blob& blob = blobs_[i];
    bool flying = in_flight(i);
    if (blob.busy) continue;
    if (!blob.started && !may_start_blob) continue;
    if (!blob.open) {
      // Taken by one connection, to open its file (even for 0 bytes).
      if (flying) continue;
      if (better(i)) {
        choice.blob = i;
        choice.bytes = {0, blob.size};
      }
      continue;
    }
    auto gaps = blob.assigned.gaps(0, blob.size);
    if (gaps.empty()) continue;  // (a blob of 0 bytes needs no request at all)
    Interval gap{0, 0};
    if (!blob.splittable) {
      // Whole, by one connection, from what a resumed file holds.
      if (flying) continue;
      gap = {blob.held.contiguous_from(0), blob.size};
    } else {
      if (flying && !blob.answered) continue;  // its first answer first
      if (flying && !worth_spreading(i)) continue;
      gap = options_.in_order ? gaps.front()
                              : *std::max_element(gaps.begin(), gaps.end(),
                                                  [](const Interval& a, const Interval& b) { return a.size() < b.size(); });
      // A blob whose last piece showed one connection finishes the rest
      // soon is taken whole by the next (no share left for others to join).
      bool alone = !flying && blob.last_rate > 0 &&
                   static_cast<double>(blob.size - blob.held.total()) / blob.last_rate < options_.min_split_seconds;
      if (!alone && gap.size() > share + options_.min_split_bytes) gap.end = gap.start + share;
    }
    if (better(i)) {
      choice.blob = i;
      choice.bytes = gap;
    }
  }
  if (choice.blob) return choice;

  // Else half of the largest range in flight.
  uint64_t most = 0;
  auto now = clock();
  for (const auto& [id, f] : flights_) {
    const Blob& blob = blobs_[f.piece.blob];
    if (!f.piece.ranged || !blob.splittable || !blob.open || !blob.answered) continue;
    uint64_t left = f.piece.end - (f.piece.start + f.received);
    if (measuring(f, now)) continue;
    if (auto rate = rate_of(f, now); rate && static_cast<double>(left) / *rate < options_.min_split_seconds) continue;
    if (left > most) {
      most = left;
      choice.split = id;
    }
  }
  if (most < 2 * options_.min_split_bytes) choice.split = 0;
  return choice;
}

std::optional<Piece> RangePlan::next() {
  std::lock_guard lock(mutex_);
  Choice choice = choose();
  if (choice.blob) return start_piece(*choice.blob, choice.bytes);
  if (choice.split == 0) return std::nullopt;
  Flight& victim = flights_.at(choice.split);
  uint64_t at = victim.piece.start + victim.received;
  uint64_t left = victim.piece.end - at;
  uint64_t mid = (at + left / 2) / kSplitAlignment * kSplitAlignment;
  if (mid <= at) mid = at + left / 2;
  Interval stolen{mid, victim.piece.end};
  victim.piece.end = mid;
  return start_piece(victim.piece.blob, stolen);
}

bool RangePlan::has_work() const {
  std::lock_guard lock(mutex_);
  Choice choice = choose();
  return choice.blob || choice.split != 0;
}

size_t RangePlan::pieces_in_flight(size_t blob) const {
  std::lock_guard lock(mutex_);
  return static_cast<size_t>(
      std::count_if(flights_.begin(), flights_.end(), [&](const auto& f) { return f.second.piece.blob == blob; }));
}

size_t RangePlan::accept(uint64_t piece, size_t n) {
  std::lock_guard lock(mutex_);
  auto it = flights_.find(piece);
  if (it == flights_.end()) return 0;
  Flight& f = it->second;
  uint64_t at = f.piece.start + f.received;
  size_t allowed = at >= f.piece.end ? 0 : static_cast<size_t>(std::min<uint64_t>(n, f.piece.end - at));
  if (f.received == 0 && allowed > 0) {
    f.first_byte = clock();
    f.first_bytes = allowed;
  }
  f.received += allowed;
  return allowed;
}

bool RangePlan::written(uint64_t piece, uint64_t pos) {
  std::lock_guard lock(mutex_);
  auto it = flights_.find(piece);
  if (it == flights_.end()) return false;
  Flight& f = it->second;
  Blob& blob = blobs_[f.piece.blob];
  uint64_t from = f.piece.start + f.written;
  if (pos > from) {
    blob.held.add(from, pos);
    f.written = pos - f.piece.start;
  }
  return blob.held.contiguous_from(0) >= blob.size;
}

void RangePlan::release(uint64_t piece) {
  std::lock_guard lock(mutex_);
  auto it = flights_.find(piece);
  if (it == flights_.end()) return;
  size_t blob = it->second.piece.blob;
  if (auto rate = rate_of(it->second, clock())) blobs_[blob].last_rate = *rate;
  flights_.erase(it);
  recompute_assigned(blob);
}

std::chrono::steady_clock::time_point RangePlan::clock() const {
  return options_.now ? options_.now() : std::chrono::steady_clock::now();
}

void RangePlan::set_connections(int n) {
  std::lock_guard lock(mutex_);
  connections_ = std::max(1, n);
}

void RangePlan::answered(uint64_t piece) {
  std::lock_guard lock(mutex_);
  auto it = flights_.find(piece);
  if (it != flights_.end()) blobs_[it->second.piece.blob].answered = true;
}

uint64_t RangePlan::position(uint64_t piece) const {
  std::lock_guard lock(mutex_);
  auto it = flights_.find(piece);
  return it == flights_.end() ? 0 : it->second.piece.start + it->second.received;
}

uint64_t RangePlan::end_of(uint64_t piece) const {
  std::lock_guard lock(mutex_);
  auto it = flights_.find(piece);
  return it == flights_.end() ? 0 : it->second.piece.end;
}

bool RangePlan::carry_whole(uint64_t piece) {
  std::lock_guard lock(mutex_);
  auto it = flights_.find(piece);
  if (it == flights_.end()) return false;
  Flight& carrier = it->second;
  Blob& blob = blobs_[carrier.piece.blob];
  if (blob.carrier != 0 && blob.carrier != piece && flights_.contains(blob.carrier)) {
    carrier.piece.end = carrier.piece.start + carrier.received;  // stops: the other one has it all
    return false;
  }
  blob.carrier = piece;
  blob.splittable = false;
  carrier.piece.start = 0;
  carrier.piece.end = blob.size;
  carrier.piece.ranged = false;
  carrier.received = 0;
  carrier.written = 0;
  for (auto& [id, f] : flights_) {
    if (id != piece && f.piece.blob == carrier.piece.blob) f.piece.end = f.piece.start + f.received;
  }
  recompute_assigned(carrier.piece.blob);
  return true;
}

void RangePlan::reset_blob(size_t blob) {
  std::lock_guard lock(mutex_);
  blobs_[blob].held.clear();
  recompute_assigned(blob);
}

void RangePlan::recompute_assigned(size_t index) {
  Blob& blob = blobs_[index];
  blob.assigned = blob.held;
  for (const auto& [id, f] : flights_) {
    if (f.piece.blob == index) blob.assigned.add(f.piece.start + f.written, f.piece.end);
  }
}

uint64_t RangePlan::contiguous(size_t blob) const {
  std::lock_guard lock(mutex_);
  return blobs_[blob].held.contiguous_from(0);
}

IntervalSet RangePlan::held(size_t blob) const {
  std::lock_guard lock(mutex_);
  return blobs_[blob].held;
}

bool RangePlan::complete(size_t blob) const {
  std::lock_guard lock(mutex_);
  return blobs_[blob].held.contiguous_from(0) >= blobs_[blob].size;
}

size_t RangePlan::in_flight() const {
  std::lock_guard lock(mutex_);
  return flights_.size();
}

uint64_t RangePlan::unassigned_bytes() const {
  std::lock_guard lock(mutex_);
  uint64_t n = 0;
  for (const auto& blob : blobs_) n += blob.size - blob.assigned.total();
  return n;
}

uint64_t RangePlan::received(size_t index) const {
  std::lock_guard lock(mutex_);
  IntervalSet got = blobs_[index].held;
  for (const auto& [id, f] : flights_) {
    if (f.piece.blob == index) got.add(f.piece.start, f.piece.start + f.received);
  }
  return got.total();
}

}  // namespace imgpull
