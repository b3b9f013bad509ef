#include "bundle/rootfs_file.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

#include <climits>
#include <vector>

#include "base/sys_error.h"
#include "base/unique_fd.h"
#include "unpack/path_resolver.h"

namespace imgpull::bundle {
namespace {

// Components of a path inside the rootfs, ".." kept: what it means depends on
// the symlinks before it, which only the resolver knows.
void append_components(std::string_view path, std::vector<std::string>& out) {
  size_t start = 0;
  while (start <= path.size()) {
    size_t slash = path.find('/', start);
    if (slash == std::string_view::npos) slash = path.size();
    std::string_view part = path.substr(start, slash - start);
    if (!part.empty() && part != ".") out.emplace_back(part);
    start = slash + 1;
  }
}

Result<std::string> read_all(int fd, size_t max_bytes, std::string_view path) {
  std::string data;
  char buf[64 * 1024];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return sys_error(fmt::format("reading {} in the rootfs", path));
    if (n == 0) return data;
    if (data.size() + static_cast<size_t>(n) > max_bytes) {
      return Error(ErrorCode::kTooLarge, fmt::format("{} in the rootfs is over {} bytes", path, max_bytes));
    }
    data.append(buf, static_cast<size_t>(n));
  }
}

}  // namespace

Result<std::optional<std::string>> read_rootfs_file(int rootfs_fd, std::string_view path, size_t max_bytes) {
  unpack::PathResolver resolver(rootfs_fd);
  std::vector<std::string> components;
  append_components(path, components);
  for (int hops = 0;; ++hops) {
    if (hops > unpack::kMaxSymlinkHops) {
      return Error(ErrorCode::kCorrupt, fmt::format("{} in the rootfs: too many levels of symlinks", path));
    }
    if (components.empty() || components.back() == "..") {
      return Error(ErrorCode::kCorrupt, fmt::format("{} in the rootfs is a directory", path));
    }
    std::string name = components.back();
    components.pop_back();
    auto dir = resolver.open_dir(components);
    if (!dir) {
      if (dir.error().code() == ErrorCode::kNotFound) return std::optional<std::string>();
      return std::move(dir).error().wrap(std::string(path));
    }
    // O_PATH first: nothing is opened for reading (a fifo would block, a device
    // could act) before we know it is a regular file.
    UniqueFd node(openat(dir->get(), name.c_str(), O_PATH | O_NOFOLLOW | O_CLOEXEC));
    if (!node) {
      if (errno == ENOENT) return std::optional<std::string>();
      return sys_error(fmt::format("opening {} in the rootfs", path));
    }
    struct stat st;
    if (fstat(node.get(), &st) != 0) return sys_error(fmt::format("stat of {} in the rootfs", path));
    if (S_ISLNK(st.st_mode)) {
      char target[PATH_MAX];
      ssize_t n = readlinkat(node.get(), "", target, sizeof target);
      if (n < 0 || static_cast<size_t>(n) == sizeof target) {
        return sys_error(fmt::format("reading a symlink on the way to {} in the rootfs", path));
      }
      std::string_view link(target, static_cast<size_t>(n));
      if (link.starts_with('/')) components.clear();  // from the rootfs's root
      append_components(link, components);
      continue;
    }
    if (!S_ISREG(st.st_mode)) {
      return Error(ErrorCode::kCorrupt, fmt::format("{} in the rootfs is not a regular file", path));
    }
    UniqueFd file(openat(dir->get(), name.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC));
    if (!file) return sys_error(fmt::format("opening {} in the rootfs", path));
    struct stat opened;
    if (fstat(file.get(), &opened) != 0 || opened.st_ino != st.st_ino || opened.st_dev != st.st_dev) {
      return Error(ErrorCode::kIo, fmt::format("{} in the rootfs changed while it was opened", path));
    }
    IMGPULL_ASSIGN_OR_RETURN(std::string data, read_all(file.get(), max_bytes, path));
    return std::optional<std::string>(std::move(data));
  }
}

}  // namespace imgpull::bundle
