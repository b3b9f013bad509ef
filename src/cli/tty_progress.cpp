#include "tty_progress.h"

#include <sys/ioctl.h>
#include <unistd.h>

#include <cerrno>
#include <iostream>

namespace imgpull::cli {
namespace {

void write_all(int fd, const std::string& bytes) {
  size_t done = 0;
  while (done < bytes.size()) {
    ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;  // the terminal went away; the pull goes on
    done += static_cast<size_t>(n);
  }
}

}  // namespace

TtyProgress::TtyProgress(int fd, std::string header) : fd_(fd), progress_(std::move(header)) {
  thread_ = std::thread([this] { run(); });
}

TtyProgress::~TtyProgress() { finish(); }

void TtyProgress::on_event(const PullEvent& event) {
  std::lock_guard lock(mutex_);
  progress_.on_event(event, ProgressClock::now());
}

void TtyProgress::print_above(std::string line) {
  {
    std::lock_guard lock(mutex_);
    if (!finished_) {
      above_.push_back(std::move(line));
      return;
    }
  }
  std::cerr << line << "\n";
}

void TtyProgress::finish() {
  {
    std::lock_guard lock(mutex_);
    if (stopping_) return;
    stopping_ = true;
  }
  wake_.notify_all();
  thread_.join();
  draw();
  std::lock_guard lock(mutex_);
  finished_ = true;
}

void TtyProgress::run() {
  std::unique_lock lock(mutex_);
  while (!stopping_) {
    wake_.wait_for(lock, kFrameInterval, [this] { return stopping_; });
    if (stopping_) break;
    lock.unlock();
    draw();
    lock.lock();
  }
}

void TtyProgress::draw() {
  struct winsize ws {};
  size_t width = 0, height = 0;
  if (::ioctl(fd_, TIOCGWINSZ, &ws) == 0) {
    width = ws.ws_col;
    height = ws.ws_row;
  }
  std::string frame;
  {
    std::lock_guard lock(mutex_);
    frame = screen_.update(progress_.lines(ProgressClock::now(), width), width, height, above_);
    above_.clear();
  }
  // Only this thread (or finish(), after it) writes, so frames never interleave.
  write_all(fd_, frame);
}

}  // namespace imgpull::cli
