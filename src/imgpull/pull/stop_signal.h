// Why the downloads of one pull must stop: the user asked (Ctrl-C, polled
// through the caller's function) or another step of the pull failed. Every
// transfer asks it between pieces, so a pull stops within one piece.
#pragma once

#include <atomic>
#include <functional>

namespace imgpull {

class StopSignal {
 public:
  explicit StopSignal(std::function<bool()> interrupted) : interrupted_(std::move(interrupted)) {}

  bool interrupted() const { return interrupted_ && interrupted_(); }
  bool failed() const { return failed_.load(); }
  void fail() { failed_ = true; }
  bool stopping() const { return failed() || interrupted(); }

 private:
  std::function<bool()> interrupted_;
  std::atomic<bool> failed_{false};
};

}  // namespace imgpull
