#include "pull/write_behind.h"

#include <algorithm>
#include <utility>

#include "base/thread_name.h"

namespace imgpull {

WriteBehind::WriteBehind(Consume consume, size_t buffers, size_t buffer_bytes)
    : consume_(std::move(consume)), buffer_bytes_(std::max<size_t>(buffer_bytes, 1)),
      buffers_(std::max<size_t>(buffers, 1)) {}

WriteBehind::~WriteBehind() {
  (void)drain();
  {
    std::lock_guard lock(mutex_);
    stop_ = true;
    changed_.notify_all();
  }
  if (thread_.joinable()) thread_.join();
}

void WriteBehind::start_thread() {
  if (!thread_.joinable()) thread_ = std::thread([this] { run(); });
}

void WriteBehind::run() {
  name_this_thread("imgpull-ingest");
  for (;;) {
    std::vector<char> buffer;
    {
      std::unique_lock lock(mutex_);
      changed_.wait(lock, [&] { return stop_ || !queued_.empty(); });
      if (queued_.empty()) return;  // stopped with nothing left
      buffer = std::move(queued_.front());
      queued_.pop_front();
      consuming_ = true;
      if (error_) buffer.clear();  // after an error nothing more is consumed
    }
    Status status = buffer.empty() ? Status() : consume_(std::span<const char>(buffer));
    std::lock_guard lock(mutex_);
    if (!status.ok() && !error_) error_ = std::move(status).error();
    consuming_ = false;
    buffer.clear();
    spare_.push_back(std::move(buffer));
    changed_.notify_all();
  }
}

void WriteBehind::hand_over(std::unique_lock<std::mutex>& lock) {
  changed_.wait(lock, [&] { return in_use() < buffers_ || error_; });
  queued_.push_back(std::move(filling_));
  if (!spare_.empty()) {
    filling_ = std::move(spare_.back());
    spare_.pop_back();
  } else {
    filling_ = {};
  }
  changed_.notify_all();
}

Status WriteBehind::append(std::span<const char> bytes) {
  appended_ += bytes.size();
  while (!bytes.empty()) {
    if (filling_.capacity() < buffer_bytes_) filling_.reserve(buffer_bytes_);
    size_t take = std::min(bytes.size(), buffer_bytes_ - filling_.size());
    filling_.insert(filling_.end(), bytes.begin(), bytes.begin() + static_cast<std::ptrdiff_t>(take));
    bytes = bytes.subspan(take);
    if (filling_.size() == buffer_bytes_) {
      start_thread();
      std::unique_lock lock(mutex_);
      hand_over(lock);
    }
  }
  std::lock_guard lock(mutex_);
  if (error_) return *error_;
  return {};
}

Status WriteBehind::drain() {
  std::unique_lock lock(mutex_);
  // Wait for the thread to finish what it has, then consume the rest here, in order.
  changed_.wait(lock, [&] { return queued_.empty() && !consuming_; });
  if (error_) return *error_;
  if (filling_.empty()) return {};
  Status status = consume_(std::span<const char>(filling_));
  filling_.clear();
  if (!status.ok()) error_ = std::move(status).error();
  if (error_) return *error_;
  return {};
}

void WriteBehind::discard() {
  std::unique_lock lock(mutex_);
  changed_.wait(lock, [&] { return !consuming_; });
  for (auto& buffer : queued_) {
    buffer.clear();
    spare_.push_back(std::move(buffer));
  }
  queued_.clear();
  filling_.clear();
  error_.reset();
  appended_ = 0;
  changed_.notify_all();
}

}  // namespace imgpull
