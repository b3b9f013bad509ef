#include "base/remove_tree.h"

#include <dirent.h>
#include <fcntl.h>
#include <unistd.h>

#include <memory>

#include "base/sys_error.h"
#include "base/unique_fd.h"

namespace imgpull {
namespace {

struct DirCloser {
  void operator()(DIR* dir) const { closedir(dir); }
};

}  // namespace

Result<std::vector<std::string>> list_dir(int dir_fd) {
  int fd = openat(dir_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return sys_error("opening a directory to list it");
  std::unique_ptr<DIR, DirCloser> dir(fdopendir(fd));
  if (!dir) {
    close(fd);
    return sys_error("listing a directory");
  }
  std::vector<std::string> names;
  errno = 0;
  while (dirent* entry = readdir(dir.get())) {
    std::string_view name = entry->d_name;
    if (name != "." && name != "..") names.emplace_back(name);
  }
  if (errno != 0) return sys_error("listing a directory");
  return names;
}

Status remove_all_at(int dir_fd, const std::string& name) {
  if (unlinkat(dir_fd, name.c_str(), 0) == 0 || errno == ENOENT) return ok_status();
  if (errno != EISDIR) return sys_error("removing \"" + name + "\"");
  UniqueFd sub(openat(dir_fd, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (!sub) return sys_error("opening directory \"" + name + "\" to remove it");
  IMGPULL_ASSIGN_OR_RETURN(auto children, list_dir(sub.get()));
  for (const auto& child : children) IMGPULL_TRY(remove_all_at(sub.get(), child));
  if (unlinkat(dir_fd, name.c_str(), AT_REMOVEDIR) != 0 && errno != ENOENT) {
    return sys_error("removing directory \"" + name + "\"");
  }
  return ok_status();
}

}  // namespace imgpull
