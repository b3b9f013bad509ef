#include "unpack/read_ahead.h"

#include <algorithm>
#include <cstring>

#include "base/thread_name.h"

namespace imgpull::unpack {

ReadAheadSource::ReadAheadSource(ByteSource& inner, Hasher* hasher, size_t buffers,
                                 size_t buffer_bytes, const char* thread_name)
    : inner_(inner), hasher_(hasher), buffer_bytes_(buffer_bytes), slots_(std::max<size_t>(buffers, 2)) {
  for (auto& slot : slots_) slot.data = std::make_unique<char[]>(buffer_bytes_);
  thread_ = std::thread([this, thread_name] { run(thread_name); });
  if (hasher_ != nullptr) hasher_thread_ = std::thread([this] { run_hasher(); });
}

ReadAheadSource::~ReadAheadSource() {
  cancel();
  join();
}

void ReadAheadSource::cancel() {
  {
    std::lock_guard lock(mutex_);
    if (done_) return;
    stop_ = true;
    changed_.notify_all();
  }
  inner_.cancel();  // wakes a read blocked on a download
}

void ReadAheadSource::join() {
  if (thread_.joinable()) thread_.join();
  if (hasher_thread_.joinable()) hasher_thread_.join();
}

void ReadAheadSource::run_hasher() {
  name_this_thread("imgpull-hash");
  for (uint64_t n = 0;; ++n) {
    {
      std::unique_lock lock(mutex_);
      changed_.wait(lock, [&] { return stop_ || filled_ > n || done_; });
      if (stop_ || filled_ <= n) return;  // cancelled, or every published slot is hashed
    }
    // A published slot is only read until both the hasher and the reader are done with it.
    const Slot& slot = slots_[n % slots_.size()];
    hasher_->update(slot.data.get(), slot.size);
    std::lock_guard lock(mutex_);
    hashed_ = n + 1;
    changed_.notify_all();
  }
}

void ReadAheadSource::run(const char* thread_name) {
  name_this_thread(thread_name);
  for (uint64_t n = 0;; ++n) {
    {
      // Wait for a free slot: at most all of them filled, one of them held by the reader.
      std::unique_lock lock(mutex_);
      changed_.wait(lock, [&] { return stop_ || n - reusable() < slots_.size(); });
      if (stop_) break;
    }
    // Slot n is ours alone until it is published.
    Slot& slot = slots_[n % slots_.size()];
    slot.size = 0;
    std::optional<Error> failed;
    bool end = false;
    while (slot.size < buffer_bytes_) {
      auto got = inner_.read(slot.data.get() + slot.size, buffer_bytes_ - slot.size);
      if (!got) {
        failed = std::move(got).error();
        break;
      }
      if (*got == 0) {
        end = true;
        break;
      }
      slot.size += *got;
    }
    std::lock_guard lock(mutex_);
    if (slot.size > 0) ++filled_;
    if (failed) error_ = std::move(failed);
    if (failed || end || stop_) {
      done_ = true;
      changed_.notify_all();
      return;
    }
    changed_.notify_all();
  }
  std::lock_guard lock(mutex_);
  done_ = true;
  changed_.notify_all();
}

Result<std::span<const char>> ReadAheadSource::next_block() {
  std::unique_lock lock(mutex_);
  if (holding_) {
    ++released_;
    holding_ = false;
    changed_.notify_all();
  }
  changed_.wait(lock, [&] { return filled_ > released_ || done_; });
  if (filled_ > released_) {
    holding_ = true;
    const Slot& slot = slots_[released_ % slots_.size()];
    current_ = std::span<const char>(slot.data.get(), slot.size);
    return current_;
  }
  // All published slots were read: the end, an error, or a cancel.
  current_ = {};
  if (error_) return *error_;
  if (stop_) return Error(ErrorCode::kUnavailable, "read-ahead cancelled");
  return std::span<const char>();
}

Result<size_t> ReadAheadSource::read(void* buf, size_t n) {
  if (n == 0) return size_t{0};
  if (current_.empty()) {
    IMGPULL_ASSIGN_OR_RETURN(current_, next_block());
    if (current_.empty()) return size_t{0};
  }
  size_t take = std::min(n, current_.size());
  std::memcpy(buf, current_.data(), take);
  current_ = current_.subspan(take);
  return take;
}

}  // namespace imgpull::unpack
