#include "store/file_lock.h"

#include <fcntl.h>
#include <sys/file.h>

#include <cerrno>

#include "base/sys_error.h"

namespace imgpull {
namespace {

int flock_operation(FileLock::Mode mode) { return mode == FileLock::Mode::kShared ? LOCK_SH : LOCK_EX; }

// Opens (creating) `path` and flocks it; without `wait`, an empty UniqueFd
// when another process holds a conflicting lock.
Result<UniqueFd> open_and_lock(const std::filesystem::path& path, FileLock::Mode mode, bool wait) {
  UniqueFd fd(::open(path.c_str(), O_CREAT | O_RDWR | O_CLOEXEC, 0644));
  if (!fd) return sys_error("cannot open", path);
  while (::flock(fd.get(), flock_operation(mode) | (wait ? 0 : LOCK_NB)) != 0) {
    if (!wait && errno == EWOULDBLOCK) return UniqueFd();
    if (errno != EINTR) return sys_error("cannot lock", path);
  }
  return fd;
}

}  // namespace

Result<UniqueFd> open_locked(const std::filesystem::path& path, FileLock::Mode mode) {
  return open_and_lock(path, mode, /*wait=*/true);
}

Result<std::optional<UniqueFd>> try_open_locked(const std::filesystem::path& path, FileLock::Mode mode) {
  IMGPULL_ASSIGN_OR_RETURN(UniqueFd fd, open_and_lock(path, mode, /*wait=*/false));
  if (!fd) return std::optional<UniqueFd>();
  return std::optional<UniqueFd>(std::move(fd));
}

Result<FileLock> FileLock::acquire(const std::filesystem::path& path, Mode mode) {
  IMGPULL_ASSIGN_OR_RETURN(UniqueFd fd, open_locked(path, mode));
  return FileLock(std::move(fd), path);
}

Status FileLock::change_mode(Mode mode, const std::function<void()>& on_wait) {
  if (::flock(fd_.get(), flock_operation(mode) | LOCK_NB) == 0) return ok_status();
  if (errno != EWOULDBLOCK) return sys_error("cannot lock", path_);
  if (on_wait) on_wait();
  while (::flock(fd_.get(), flock_operation(mode)) != 0) {
    if (errno != EINTR) return sys_error("cannot lock", path_);
  }
  return ok_status();
}

}  // namespace imgpull
