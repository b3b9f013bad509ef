#include "base/file_io.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <unistd.h>

#include <cerrno>

#include "base/sys_error.h"
#include "base/unique_fd.h"

namespace imgpull {
namespace {

// What read_file reads per call: small files (configs, index.json) take one
// or two reads, and the buffer sits on the stack.
constexpr size_t kReadChunkBytes = 64 * 1024;

}  // namespace

Status write_all(int fd, const void* data, size_t size, const std::filesystem::path& path) {
  const char* p = static_cast<const char*>(data);
  while (size > 0) {
    ssize_t n = ::write(fd, p, size);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return sys_error("cannot write", path);
    p += n;
    size -= static_cast<size_t>(n);
  }
  return ok_status();
}

Result<std::string> read_file(const std::filesystem::path& path, size_t max_bytes) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) {
    if (errno == ENOENT) return Error(ErrorCode::kNotFound, fmt::format("{} does not exist", path.string()));
    return sys_error("cannot open", path);
  }
  std::string out;
  char buf[kReadChunkBytes];
  for (;;) {
    ssize_t n = ::read(fd.get(), buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return sys_error("cannot read", path);
    if (n == 0) return out;
    if (out.size() + static_cast<size_t>(n) > max_bytes) {
      return Error(ErrorCode::kTooLarge,
                   fmt::format("{} is larger than the limit of {} bytes", path.string(), max_bytes));
    }
    out.append(buf, static_cast<size_t>(n));
  }
}

}  // namespace imgpull
