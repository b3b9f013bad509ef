// BlobWriter for a blob written by several connections at once: writes at
// offsets, the hash following the contiguous prefix, and the record of
// which ranges the ingest file holds (<hex>.ranges), so that an interrupted
// pull resumes every range on disk rather than only the prefix.
//
// The record is written after the data it lists, so a killed process never
// leaves a record naming bytes the file lacks (both go through the page
// cache). After a power cut they may disagree: the digest check at commit
// has the last word, and wrong bytes are fetched again from the first byte.
#include <fcntl.h>
#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <fstream>
#include <sstream>
#include <vector>

#include "base/atomic_file.h"
#include "base/sys_error.h"
#include "imgpull/store.h"

namespace imgpull {
namespace fs = std::filesystem;
namespace {

// The first line of a ranges record; a file without it is not one of ours.
constexpr const char* kRangesMagic = "imgpull-ranges 1";
// Reading back what is already in the file, to hash it.
constexpr size_t kHashChunkBytes = 1024 * 1024;

}  // namespace

fs::path BlobWriter::ranges_path() const {
  fs::path p = ingest_path_;
  p.replace_extension(".ranges");
  return p;
}

Status BlobWriter::write_at(uint64_t offset, const void* data, size_t size) {
  if (done_ || broken_) return Error(ErrorCode::kInternal, "write to a finished or failed blob writer");
  if (expected_size_ >= 0 && offset + size > static_cast<uint64_t>(expected_size_)) {
    return Error(ErrorCode::kCorrupt, fmt::format("blob {}: bytes {}-{} are past its {} bytes", expected_.str(),
                                                  offset, offset + size - 1, expected_size_));
  }
  const char* p = static_cast<const char*>(data);
  while (size > 0) {
    ssize_t n = ::pwrite(fd_, p, size, static_cast<off_t>(offset));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      int err = errno;
      if (err == ENOSPC || err == EDQUOT) {
        return Error(ErrorCode::kIo,
                     fmt::format("no space left on device writing blob {} to {} (the ranges written so far are "
                                 "kept and the next pull continues them)",
                                 expected_.str(), ingest_path_.string()));
      }
      return sys_error(fmt::format("cannot write blob {} to {}", expected_.str(), ingest_path_.string()), err);
    }
    p += n;
    offset += static_cast<uint64_t>(n);
    size -= static_cast<size_t>(n);
  }
  return {};
}

bool BlobWriter::hash_if_next(uint64_t offset, const void* data, size_t size) {
  if (offset != hasher_.bytes_hashed()) return false;
  hasher_.update(data, size);
  return true;
}

Status BlobWriter::hash_file_until(uint64_t end) {
  std::vector<char> buf;
  while (hasher_.bytes_hashed() < end) {
    if (buf.empty()) buf.resize(kHashChunkBytes);
    uint64_t at = hasher_.bytes_hashed();
    ssize_t n = ::pread(fd_, buf.data(), std::min<uint64_t>(buf.size(), end - at), static_cast<off_t>(at));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return sys_error("cannot read back " + ingest_path_.string() + " to hash it");
    if (n == 0) {
      return Error(ErrorCode::kIo, fmt::format("{} ends at byte {}, before the {} written to it",
                                               ingest_path_.string(), at, end));
    }
    hasher_.update(buf.data(), static_cast<size_t>(n));
  }
  return {};
}

Status BlobWriter::record_ranges(const Ranges& held) {
  std::string text = std::string(kRangesMagic) + "\n";
  for (const auto& [start, end] : held) text += fmt::format("{} {}\n", start, end);
  return replace_file(ranges_path(), text);
}

Result<bool> BlobWriter::adopt_recorded_ranges(uint64_t file_size) {
  recorded_.clear();
  std::ifstream in(ranges_path(), std::ios::binary);
  if (!in) return false;
  std::string magic;
  if (!std::getline(in, magic) || magic != kRangesMagic) return false;
  uint64_t start = 0, end = 0;
  uint64_t limit = expected_size_ >= 0 ? std::min<uint64_t>(file_size, expected_size_) : file_size;
  while (in >> start >> end) {
    end = std::min(end, limit);  // never more than the file holds
    if (start < end) recorded_.emplace_back(start, end);
  }
  std::sort(recorded_.begin(), recorded_.end());
  return true;
}

Status BlobWriter::forget_ranges() {
  if (::unlink(ranges_path().c_str()) != 0 && errno != ENOENT) {
    return sys_error("cannot remove " + ranges_path().string());
  }
  if (!recorded_.empty()) {
    // The tail past the prefix was written by pieces; a single stream now
    // continues from the prefix and must not leave it behind.
    if (::ftruncate(fd_, static_cast<off_t>(hasher_.bytes_hashed())) != 0) {
      return sys_error("cannot truncate " + ingest_path_.string());
    }
    recorded_.clear();
  }
  return {};
}

}  // namespace imgpull
