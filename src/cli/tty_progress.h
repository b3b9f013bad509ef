// Draws a pull's progress on a terminal, like `docker pull`: one line per
// layer, redrawn in place by a thread of its own at most every
// kFrameInterval, each frame one write(2) of only the lines that changed.
// The terminal's size is read (TIOCGWINSZ) for every frame, so a resize is
// followed within one frame, without a SIGWINCH handler.
//
//   TtyProgress tty(STDOUT_FILENO, pulling_from_line(ref));
//   options.on_event = [&](const PullEvent& e) { tty.on_event(e); };
//   auto result = pull_image(...);
//   tty.finish();  // the final frame; print what follows after this
#pragma once

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "progress.h"

namespace imgpull::cli {

class TtyProgress {
 public:
  // At most this many frames a second: smooth, and cheap over a slow link.
  static constexpr auto kFrameInterval = std::chrono::milliseconds(100);

  TtyProgress(int fd, std::string header);
  ~TtyProgress();
  TtyProgress(const TtyProgress&) = delete;
  TtyProgress& operator=(const TtyProgress&) = delete;

  // Any thread, one at a time or not; returns at once (no terminal I/O).
  void on_event(const PullEvent& event);
  // A line (a warning, a debug log line) printed above the progress at the
  // next frame, so it does not land in the middle of it. After finish(), it
  // goes to stderr.
  void print_above(std::string line);
  // Stops the drawing thread and draws the final frame. Idempotent.
  void finish();

 private:
  void run();
  void draw();

  int fd_;
  std::mutex mutex_;
  std::condition_variable wake_;
  PullProgress progress_;
  TerminalScreen screen_;
  std::vector<std::string> above_;
  bool stopping_ = false;
  bool finished_ = false;
  std::thread thread_;
};

}  // namespace imgpull::cli
