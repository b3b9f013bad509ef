#include "pull/followed_blob.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>

#include "base/sys_error.h"

namespace imgpull {

void FollowedBlob::opened(int fd) {
  std::lock_guard lock(mutex_);
  fd_ = std::make_shared<UniqueFd>(fd);
  changed_.notify_all();
}

void FollowedBlob::grew(uint64_t written) {
  std::lock_guard lock(mutex_);
  written_ = std::max(written_, written);  // a restarted download rewrites the same bytes
  changed_.notify_all();
}

void FollowedBlob::finished(std::filesystem::path committed) {
  std::lock_guard lock(mutex_);
  done_ = true;
  committed_ = std::move(committed);
  fd_.reset();  // a reader that took it keeps it open
  changed_.notify_all();
}

void FollowedBlob::failed(const Error& error) {
  std::lock_guard lock(mutex_);
  if (!error_) error_ = error;
  changed_.notify_all();
}

bool FollowedBlob::rewind() {
  std::lock_guard lock(mutex_);
  if (handed_out_) return false;
  written_ = 0;
  done_ = false;
  return true;
}

Result<size_t> FollowedBlob::Reader::read(void* buf, size_t n) {
  size_t chunk;
  std::filesystem::path committed;
  {
    std::unique_lock lock(blob_.mutex_);
    blob_.changed_.wait(lock, [&] {
      return cancelled_ || blob_.error_ || blob_.done_ || (blob_.fd_ && blob_.written_ > offset_);
    });
    if (blob_.error_) return *blob_.error_;
    if (cancelled_) return Error(ErrorCode::kUnavailable, "cancelled: the layer's applier stopped");
    if (blob_.written_ <= offset_) return size_t{0};  // done and all read
    chunk = static_cast<size_t>(std::min<uint64_t>(n, blob_.written_ - offset_));
    blob_.handed_out_ = true;
    if (!fd_) {
      fd_ = blob_.fd_;
      if (!fd_) committed = blob_.committed_;
    }
  }
  if (!fd_) {  // downloaded before we got here: read it from the store
    UniqueFd fd(::open(committed.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd) return sys_error("cannot open " + committed.string());
    fd_ = std::make_shared<UniqueFd>(std::move(fd));
  }
  ssize_t got = ::pread(fd_->get(), buf, chunk, static_cast<off_t>(offset_));
  if (got < 0) return sys_error("reading a downloading layer");
  offset_ += static_cast<uint64_t>(got);
  return static_cast<size_t>(got);
}

void FollowedBlob::Reader::cancel() {
  std::lock_guard lock(blob_.mutex_);
  cancelled_ = true;
  blob_.changed_.notify_all();
}

}  // namespace imgpull
