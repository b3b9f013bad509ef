// Removing a tree by directory descriptor and single name, so a removal never
// follows a symlink: a symlink is removed itself, never what it points at, and
// a directory is emptied through descriptors opened with O_NOFOLLOW. Used for
// whiteouts inside a rootfs and for whole trees (a staging directory a failed
// or killed pull left, see unpack/staged_dir.h).
//
// A directory the caller may not read or write (an image's 0555 directories,
// removed as non-root) is made u+rwx before its entries are removed: it is
// about to go, and otherwise a non-root user could not remove a rootfs it made.
//
//   IMGPULL_TRY(remove_all_at(etc.get(), "ssl"));   // etc/ssl and all under it
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "imgpull/error.h"

namespace imgpull {

// Removes `name` in the directory `dir_fd`, recursively if it is a directory. A missing
// name is not an error. With `bytes_removed`, adds the size of each regular file
// whose last link goes (for reports: what a prune freed).
Status remove_all_at(int dir_fd, const std::string& name, uint64_t* bytes_removed = nullptr);

// The names in the directory `dir_fd` (which may be an O_PATH descriptor), without "."
// and "..".
Result<std::vector<std::string>> list_dir(int dir_fd);

}  // namespace imgpull
