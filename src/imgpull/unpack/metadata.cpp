#include "unpack/metadata.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <cstring>

#include "base/sys_error.h"

namespace imgpull::unpack {
namespace {

// There is no lsetxattrat(2) before Linux 6.13: name the node through its directory's
// descriptor. The directory was opened inside the root, the name is one component, and
// lsetxattr does not follow it, so this reaches the node itself and nothing else.
std::string proc_path(const Node& node) {
  return "/proc/self/fd/" + std::to_string(node.dir_fd) + "/" + node.name;
}

int set_one_xattr(const Node& node, const std::string& key, const std::string& value) {
  if (node.fd >= 0) return fsetxattr(node.fd, key.c_str(), value.data(), value.size(), 0);
  return lsetxattr(proc_path(node).c_str(), key.c_str(), value.data(), value.size(), 0);
}

}  // namespace

Status set_owner(const Node& node, uid_t uid, gid_t gid) {
  int rc = node.fd >= 0 ? fchown(node.fd, uid, gid)
                        : fchownat(node.dir_fd, node.name.c_str(), uid, gid, AT_SYMLINK_NOFOLLOW);
  if (rc != 0) return sys_error("chown " + std::to_string(uid) + ":" + std::to_string(gid));
  return ok_status();
}

Status set_mode(const Node& node, mode_t mode) {
  int rc = node.fd >= 0 ? fchmod(node.fd, mode)
                        : fchmodat(node.dir_fd, node.name.c_str(), mode, AT_SYMLINK_NOFOLLOW);
  if (rc != 0) return sys_error("chmod");
  return ok_status();
}

void set_xattrs(const Node& node, const std::vector<std::pair<std::string, std::string>>& xattrs,
                Warnings& warnings) {
  for (const auto& [key, value] : xattrs) {
    if (set_one_xattr(node, key, value) == 0) continue;
    std::string why = std::strerror(errno);
    if (errno == EPERM) {  // security.* and trusted.* without root, user.* on a symlink
      warnings.unapplied(key + " xattr", {}, "skipping extended attribute " + key + " (first on \"" +
                                                 node.name + "\"): " + why);
      continue;
    }
    warnings.once("xattr " + key + ": " + why, "skipping extended attribute " + key +
                                                   " (first on \"" + node.name + "\"): " + why);
  }
}

Status set_times(const Node& node, const std::optional<timespec>& atime,
                 const std::optional<timespec>& mtime) {
  if (!atime && !mtime) return ok_status();
  timespec times[2];
  times[1] = mtime ? *mtime : timespec{0, UTIME_OMIT};
  times[0] = atime ? *atime : times[1];
  int rc = node.fd >= 0 ? futimens(node.fd, times)
                        : utimensat(node.dir_fd, node.name.c_str(), times, AT_SYMLINK_NOFOLLOW);
  if (rc != 0) return sys_error("setting times");
  return ok_status();
}

}  // namespace imgpull::unpack
