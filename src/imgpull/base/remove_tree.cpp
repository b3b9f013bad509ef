#include "base/remove_tree.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <memory>

#include "base/sys_error.h"
#include "base/unique_fd.h"

namespace imgpull {
namespace {

struct DirCloser {
  void operator()(DIR* dir) const { closedir(dir); }
};

// Opens the directory `name` to empty it, first making it u+rwx when the
// caller could not list it or remove its entries. fchmodat with
// AT_SYMLINK_NOFOLLOW refuses a symlink, so no chmod ever lands outside.
Result<UniqueFd> open_to_empty(int dir_fd, const std::string& name) {
  constexpr int kFlags = O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC;
  UniqueFd sub(openat(dir_fd, name.c_str(), kFlags));
  if (!sub && errno == EACCES && fchmodat(dir_fd, name.c_str(), S_IRWXU, AT_SYMLINK_NOFOLLOW) == 0) {
    sub.reset(openat(dir_fd, name.c_str(), kFlags));
  }
  if (!sub) return sys_error("opening directory \"" + name + "\" to remove it");
  struct stat st {};
  if (fstat(sub.get(), &st) == 0 && (st.st_mode & S_IRWXU) != S_IRWXU) {
    // Failing (not the owner) is left to the removals below to report.
    (void)fchmod(sub.get(), (st.st_mode & 07777) | S_IRWXU);
  }
  return sub;
}

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

Status remove_all_at(int dir_fd, const std::string& name, uint64_t* bytes_removed) {
  if (bytes_removed != nullptr) {
    struct stat st {};
    if (fstatat(dir_fd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(st.st_mode) && st.st_nlink == 1) {
      *bytes_removed += static_cast<uint64_t>(st.st_size);
    }
  }
  if (unlinkat(dir_fd, name.c_str(), 0) == 0 || errno == ENOENT) return ok_status();
  if (errno != EISDIR) return sys_error("removing \"" + name + "\"");
  IMGPULL_ASSIGN_OR_RETURN(UniqueFd sub, open_to_empty(dir_fd, name));
  IMGPULL_ASSIGN_OR_RETURN(auto children, list_dir(sub.get()));
  for (const auto& child : children) IMGPULL_TRY(remove_all_at(sub.get(), child, bytes_removed));
  if (unlinkat(dir_fd, name.c_str(), AT_REMOVEDIR) != 0 && errno != ENOENT) {
    return sys_error("removing directory \"" + name + "\"");
  }
  return ok_status();
}

}  // namespace imgpull
