#include "imgpull/store.h"  // BlobWriter

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <vector>

#include "base/sys_error.h"

namespace imgpull {
namespace fs = std::filesystem;

namespace {

// Re-hashing what an interrupted pull left reads the file in pieces this big:
// large enough that the hash, not the syscalls, sets the pace.
constexpr size_t kRehashChunkBytes = 1024 * 1024;

}  // namespace

BlobWriter::BlobWriter(int fd, fs::path ingest_path, fs::path blob_path, Digest expected,
                       int64_t expected_size)
    : fd_(fd),
      ingest_path_(std::move(ingest_path)),
      blob_path_(std::move(blob_path)),
      expected_(std::move(expected)),
      expected_size_(expected_size),
      hasher_(expected_.algorithm()) {}

BlobWriter::~BlobWriter() {
  if (done_) return;
  // A non-empty partial is the start of the blob: the next pull continues
  // it. An empty one is worth nothing and would only litter ingest/.
  struct stat st {};
  if (::fstat(fd_, &st) == 0 && st.st_size == 0) {
    discard();
    return;
  }
  ::close(fd_);  // releases the ingest lock; the file stays for resume
  fd_ = -1;
}

void BlobWriter::discard() {
  if (fd_ >= 0) ::unlink(ranges_path().c_str());
  if (fd_ >= 0) ::unlink(ingest_path_.c_str());  // before the lock goes, so no waiter takes a dead file
  done_ = true;
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
}

Status BlobWriter::adopt_existing() {
  struct stat st {};
  if (::fstat(fd_, &st) != 0) return sys_error("cannot stat ingest file", ingest_path_);
  auto start_over = [&]() -> Status {
    IMGPULL_TRY(forget_ranges());
    hasher_ = Hasher(expected_.algorithm());
    if (::ftruncate(fd_, 0) != 0) return sys_error("cannot truncate ingest file", ingest_path_);
    if (::lseek(fd_, 0, SEEK_SET) != 0) return sys_error("cannot rewind", ingest_path_);
    resumed_ = 0;
    return {};
  };
  uint64_t size = static_cast<uint64_t>(st.st_size);
  IMGPULL_ASSIGN_OR_RETURN(bool ranged, adopt_recorded_ranges(size));
  if (ranged) size = recorded_.empty() || recorded_[0].first != 0 ? 0 : recorded_[0].second;
  if (size == 0) return {};
  if (expected_size_ >= 0 && size > static_cast<uint64_t>(expected_size_)) return start_over();
  // Re-hash rather than trust a saved hash state: the file's bytes are the
  // truth (after a power cut its tail may not be what was written), and
  // SHA-256 at a GB/s or more makes this cheap next to fetching them again.
  // Whatever the bytes are, the digest check at commit has the last word.
  std::vector<char> buf(kRehashChunkBytes);
  uint64_t offset = 0;
  while (offset < size) {
    ssize_t n = ::pread(fd_, buf.data(), std::min<uint64_t>(buf.size(), size - offset), static_cast<off_t>(offset));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return start_over();  // unreadable or shrunk under us: fetch it all
    hasher_.update(buf.data(), static_cast<size_t>(n));
    offset += static_cast<uint64_t>(n);
  }
  if (::lseek(fd_, static_cast<off_t>(size), SEEK_SET) < 0) return sys_error("cannot seek in", ingest_path_);
  resumed_ = size;
  for (const auto& [start, end] : recorded_) resumed_ += start >= size ? end - start : 0;
  return {};
}

Status BlobWriter::write(const void* data, size_t size) {
  if (done_ || broken_) return Error(ErrorCode::kInternal, "write to a finished or failed blob writer");
  if (expected_size_ >= 0 && hasher_.bytes_hashed() + size > static_cast<uint64_t>(expected_size_)) {
    uint64_t received = hasher_.bytes_hashed() + size;
    discard();
    return Error(ErrorCode::kCorrupt,
                 fmt::format("blob {}: size mismatch: received at least {} bytes, more than the {} its "
                             "descriptor declares",
                             expected_.str(), received, expected_size_));
  }
  if (!recorded_.empty()) IMGPULL_TRY(forget_ranges());
  // The file first, the hash after: the hash then never covers bytes the
  // file lacks. A failed write leaves the file a clean prefix of the blob
  // (resumable), and this writer unusable.
  const char* p = static_cast<const char*>(data);
  size_t left = size;
  while (left > 0) {
    ssize_t n = ::write(fd_, p, left);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      int err = errno;
      broken_ = true;
      if (err == ENOSPC || err == EDQUOT) {
        struct stat st {};
        uint64_t on_disk = ::fstat(fd_, &st) == 0 ? static_cast<uint64_t>(st.st_size) : 0;
        return Error(ErrorCode::kIo,
                     fmt::format("no space left on device writing blob {} to {} ({} of {} bytes written; "
                                 "the partial file is kept and the next pull continues it)",
                                 expected_.str(), ingest_path_.string(), on_disk,
                                 expected_size_ >= 0 ? std::to_string(expected_size_) : std::string("?")));
      }
      return sys_error(fmt::format("cannot write blob {} to", expected_.str()), ingest_path_, err);
    }
    p += n;
    left -= static_cast<size_t>(n);
  }
  hasher_.update(data, size);
  return {};
}

Status BlobWriter::restart() {
  if (done_ || broken_) return Error(ErrorCode::kInternal, "restart of a finished or failed blob writer");
  if (::lseek(fd_, 0, SEEK_SET) != 0) return sys_error("cannot rewind", ingest_path_);
  IMGPULL_TRY(forget_ranges());
  hasher_ = Hasher(expected_.algorithm());
  resumed_ = 0;
  return {};
}

Result<int> BlobWriter::open_reader() const {
  int fd = ::open(ingest_path_.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return sys_error("cannot open for reading", ingest_path_);
  return fd;
}

Status BlobWriter::commit() {
  if (done_ || broken_) return Error(ErrorCode::kInternal, "commit of a finished or failed blob writer");
  uint64_t got = hasher_.bytes_hashed();
  if (expected_size_ >= 0 && got != static_cast<uint64_t>(expected_size_)) {
    discard();
    return Error(ErrorCode::kCorrupt, fmt::format("blob {}: size mismatch: expected {} bytes, got {}",
                                                  expected_.str(), expected_size_, got));
  }
  Digest actual = hasher_.finish();
  if (actual != expected_) {
    discard();
    return Error(ErrorCode::kCorrupt, fmt::format("blob digest mismatch: expected {}, got {}",
                                                  expected_.str(), actual.str()));
  }
  // A restarted download rewrites the file in place; never let a longer
  // tail from before survive into the blob.
  struct stat st {};
  if (::fstat(fd_, &st) == 0 && static_cast<uint64_t>(st.st_size) > got &&
      ::ftruncate(fd_, static_cast<off_t>(got)) != 0) {
    int err = errno;
    discard();
    return sys_error("cannot trim ingest file", ingest_path_, err);
  }
  if (::rename(ingest_path_.c_str(), blob_path_.c_str()) != 0) {
    int err = errno;
    discard();
    return sys_error("cannot commit blob to", blob_path_, err);
  }
  ::unlink(ranges_path().c_str());
  done_ = true;
  ::close(fd_);  // releases the ingest lock: waiters now find the blob
  fd_ = -1;
  return {};
}

}  // namespace imgpull
