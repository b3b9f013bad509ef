#include "base/atomic_file.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>

#include "base/file_io.h"
#include "base/sys_error.h"

namespace imgpull {
namespace {

// Names already taken are skipped (a temporary file a killed process with
// the same pid left behind); this many tries and something else is wrong.
constexpr int kMaxNameAttempts = 100;

// Numbers the temporary files of this process, so threads never share one.
std::atomic<uint64_t> next_temporary{0};

}  // namespace

Result<AtomicFile> AtomicFile::create(const std::filesystem::path& path, AtomicFileOptions options) {
  for (int attempt = 0;; ++attempt) {
    std::filesystem::path tmp = path;
    tmp += fmt::format(".tmp-{}-{}", ::getpid(), next_temporary++);
    UniqueFd fd(::open(tmp.c_str(), O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, options.mode));
    if (fd) return AtomicFile(path, std::move(tmp), std::move(fd), options.sync);
    if (errno != EEXIST || attempt + 1 == kMaxNameAttempts) return sys_error("cannot create", tmp);
  }
}

AtomicFile::AtomicFile(AtomicFile&& other) noexcept
    : path_(std::move(other.path_)),
      tmp_(std::exchange(other.tmp_, {})),
      fd_(std::move(other.fd_)),
      sync_(other.sync_) {}

AtomicFile::~AtomicFile() {
  fd_.reset();
  if (!tmp_.empty()) ::unlink(tmp_.c_str());
}

Status AtomicFile::write(std::string_view bytes) { return write_all(fd_.get(), bytes.data(), bytes.size(), tmp_); }

Status AtomicFile::commit() {
  if (sync_ && ::fsync(fd_.get()) != 0) return sys_error("cannot flush", tmp_);
  fd_.reset();
  if (::rename(tmp_.c_str(), path_.c_str()) != 0) return sys_error("cannot rename into", path_);
  tmp_.clear();
  return ok_status();
}

Status replace_file(const std::filesystem::path& path, std::string_view content, AtomicFileOptions options) {
  IMGPULL_ASSIGN_OR_RETURN(AtomicFile file, AtomicFile::create(path, options));
  IMGPULL_TRY(file.write(content));
  return file.commit();
}

}  // namespace imgpull
