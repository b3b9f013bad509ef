#include "base/byte_source.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "base/sys_error.h"

namespace imgpull {

Result<size_t> read_full(ByteSource& source, void* buf, size_t n) {
  size_t total = 0;
  while (total < n) {
    IMGPULL_ASSIGN_OR_RETURN(size_t got, source.read(static_cast<char*>(buf) + total, n - total));
    if (got == 0) break;
    total += got;
  }
  return total;
}

Result<std::unique_ptr<FileSource>> FileSource::open(const std::filesystem::path& path) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) {
    int err = errno;
    return sys_error("opening " + path.string(), err, err == ENOENT ? ErrorCode::kNotFound : ErrorCode::kIo);
  }
  return std::unique_ptr<FileSource>(new FileSource(std::move(fd)));
}

Result<size_t> FileSource::read(void* buf, size_t n) {
  for (;;) {
    ssize_t got = ::read(fd_, buf, n);
    if (got >= 0) return static_cast<size_t>(got);
    if (errno != EINTR) return sys_error("reading");
  }
}

Result<size_t> MemorySource::read(void* buf, size_t n) {
  size_t take = std::min(n, bytes_.size());
  std::memcpy(buf, bytes_.data(), take);
  bytes_.remove_prefix(take);
  return take;
}

}  // namespace imgpull
