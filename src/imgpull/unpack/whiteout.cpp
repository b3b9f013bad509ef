#include "unpack/whiteout.h"

#include <fcntl.h>

#include "base/remove_tree.h"
#include "base/sys_error.h"
#include "base/unique_fd.h"

namespace imgpull::unpack {

bool LayerPaths::has_descendant(const std::string& path) const {
  std::string prefix = path + "/";
  auto it = paths_.lower_bound(prefix);  // paths sharing a prefix sort together
  return it != paths_.end() && it->starts_with(prefix);
}

Status remove_lower(int dir_fd, const std::string& name, const std::string& path,
                    const LayerPaths& added) {
  if (!added.contains(path) && !added.has_descendant(path)) return remove_all_at(dir_fd, name);
  UniqueFd sub(openat(dir_fd, name.c_str(), O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (!sub) {
    // A file or symlink this layer made (or nothing): it stays.
    if (errno == ENOTDIR || errno == ELOOP || errno == ENOENT) return ok_status();
    return sys_error("opening \"" + path + "\"");
  }
  return remove_lower_children(sub.get(), path, added);
}

Status remove_lower_children(int dir_fd, const std::string& dir_path, const LayerPaths& added) {
  IMGPULL_ASSIGN_OR_RETURN(auto names, list_dir(dir_fd));
  for (const auto& name : names) {
    std::string path = dir_path.empty() ? name : dir_path + "/" + name;
    IMGPULL_TRY(remove_lower(dir_fd, name, path, added));
  }
  return ok_status();
}

}  // namespace imgpull::unpack
