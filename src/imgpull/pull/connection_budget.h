// How many connections a pull keeps busy: as many as the link rewards.
//
// It starts with `initial`; after each step it lets the new connections
// reach their first byte, measures the total rate over a window, and adds
// half as many again while a step raised the rate by kWorthwhileGain or more,
// up to `max`. Once a step does not pay, it stops adding. A link that caps
// each connection (a CDN shaping every flow, a long path with loss) so gets
// many; a local registry, where the CPU is the limit, few.
//
//   ConnectionBudget budget(4, 16);
//   every few ms: int n = budget.update(Clock::now(), bytes_received_so_far);
//   per request:  budget.saw_first_byte(latency);
#pragma once

#include <chrono>
#include <cstdint>

namespace imgpull {

class ConnectionBudget {
 public:
  using Clock = std::chrono::steady_clock;
  // A step must raise the rate by this much to be worth another.
  static constexpr double kWorthwhileGain = 1.15;
  // The shortest window a rate is measured over: long enough to hold many
  // reads at any rate, short enough that a 60 MB image still ramps up.
  static constexpr std::chrono::milliseconds kMinWindow{200};

  ConnectionBudget(int initial, int max);

  // The connections to run now, given the bytes received so far.
  int update(Clock::time_point now, uint64_t total_bytes);
  // A request's first byte came `latency` after it was sent: new connections
  // are given that long (twice, for their handshake) before they are judged.
  void saw_first_byte(Clock::duration latency);

  int target() const { return target_; }
  bool settled() const { return settled_; }

 private:
  Clock::duration settle_time() const;
  Clock::duration window() const;

  int target_;
  int max_;
  bool settled_;
  Clock::duration latency_{std::chrono::milliseconds(50)};
  bool have_step_ = false;
  Clock::time_point step_at_;     // when the target last changed
  bool measuring_ = false;
  Clock::time_point window_at_;   // when the current window began
  uint64_t window_bytes_ = 0;     // total bytes then
  double last_rate_ = 0;          // bytes/s of the previous step's window
};

}  // namespace imgpull
