// Removing things inside the rootfs by directory descriptor and single name,
// so a removal never follows a symlink: a symlink is removed itself, never
// what it points at, and a directory is emptied through descriptors opened
// with O_NOFOLLOW.
//
//   IMGPULL_TRY(remove_all_at(etc.get(), "ssl"));   // etc/ssl and all under it
#pragma once

#include <string>
#include <vector>

#include "imgpull/error.h"

namespace imgpull {

// Removes `name` in the directory `dir_fd`, recursively if it is a directory. A missing
// name is not an error.
Status remove_all_at(int dir_fd, const std::string& name);

// The names in the directory `dir_fd` (which may be an O_PATH descriptor), without "."
// and "..".
Result<std::vector<std::string>> list_dir(int dir_fd);

}  // namespace imgpull
