#include "base/sync_fs.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <set>

#include "base/sys_error.h"
#include "base/unique_fd.h"

namespace imgpull {

Status sync_filesystems(const std::vector<std::filesystem::path>& paths) {
  std::set<dev_t> synced;
  for (const auto& path : paths) {
    UniqueFd fd(::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    struct stat st;
    if (!fd || ::fstat(fd.get(), &st) != 0) {
      return sys_error("cannot open " + path.string() + " to sync it");
    }
    if (!synced.insert(st.st_dev).second) continue;  // that filesystem is done
    if (::syncfs(fd.get()) != 0) return sys_error("syncing the filesystem of " + path.string() + " to disk");
  }
  return ok_status();
}

}  // namespace imgpull
