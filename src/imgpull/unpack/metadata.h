// Owner, mode, extended attributes and times of one thing an entry created,
// set without following symlinks: through its open descriptor when there is
// one, otherwise through its directory descriptor and name with
// AT_SYMLINK_NOFOLLOW (and never a chmod on a symlink, which Linux would
// apply to its target).
//
//   Node node{dir.get(), "passwd", fd.get()};
//   IMGPULL_TRY(set_owner(node, 0, 0));
//   IMGPULL_TRY(set_mode(node, 04755));        // after the owner: chown clears setuid
//   set_xattrs(node, entry.xattrs, warnings);  // after chown too: it drops security.capability
//   IMGPULL_TRY(set_times(node, entry.atime, entry.mtime));
#pragma once

#include <sys/types.h>
#include <time.h>

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "imgpull/error.h"
#include "unpack/warnings.h"

namespace imgpull::unpack {

// Something in the rootfs: `name` in the directory `dir_fd`, and `fd` open on it
// (not O_PATH) when the caller has one, else -1.
struct Node {
  int dir_fd;
  const std::string& name;
  int fd = -1;
};

Status set_owner(const Node& node, uid_t uid, gid_t gid);
// Not for symlinks.
Status set_mode(const Node& node, mode_t mode);
// Attributes the filesystem or our privileges refuse (security.* as non-root, user.* on a
// symlink, anything on a filesystem without xattrs) are skipped with a warning.
void set_xattrs(const Node& node, const std::vector<std::pair<std::string, std::string>>& xattrs,
                Warnings& warnings);
// An unset atime takes the mtime; unset both: left as they are.
Status set_times(const Node& node, const std::optional<timespec>& atime,
                 const std::optional<timespec>& mtime);

}  // namespace imgpull::unpack
