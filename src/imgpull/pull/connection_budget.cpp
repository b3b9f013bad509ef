#include "pull/connection_budget.h"

#include <algorithm>

namespace imgpull {

ConnectionBudget::ConnectionBudget(int initial, int max)
    : target_(std::clamp(initial, 1, std::max(1, max))), max_(std::max(1, max)), settled_(target_ >= max_) {}

void ConnectionBudget::saw_first_byte(Clock::duration latency) {
  // The slowest recent answer: a window must outlast it.
  latency_ = std::max(latency, latency_ * 7 / 8);
}

ConnectionBudget::Clock::duration ConnectionBudget::settle_time() const { return 2 * latency_; }

ConnectionBudget::Clock::duration ConnectionBudget::window() const {
  return std::max<Clock::duration>(kMinWindow, 4 * latency_);
}

int ConnectionBudget::update(Clock::time_point now, uint64_t total_bytes) {
  if (settled_) return target_;
  if (!have_step_) {
    have_step_ = true;
    step_at_ = now;
  }
  if (!measuring_) {
    if (now - step_at_ < settle_time()) return target_;
    measuring_ = true;
    window_at_ = now;
    window_bytes_ = total_bytes;
    return target_;
  }
  auto elapsed = now - window_at_;
  if (elapsed < window()) return target_;
  double rate = static_cast<double>(total_bytes - window_bytes_) /
                std::chrono::duration<double>(elapsed).count();
  bool first = last_rate_ == 0;
  if (!first && rate < last_rate_ * kWorthwhileGain) {
    settled_ = true;  // the last step did not pay
    return target_;
  }
  last_rate_ = rate;
  target_ = std::min(max_, target_ + std::max(1, target_ / 2));
  settled_ = target_ >= max_;
  step_at_ = now;
  measuring_ = false;
  return target_;
}

}  // namespace imgpull
