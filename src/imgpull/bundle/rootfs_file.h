// Reads a file of an image's root filesystem as the container will see it:
// symlinks (on the way and at the end) are followed as if the rootfs were "/"
// (unpack/path_resolver.h), so an image whose /etc/passwd is a symlink to
// "../../../etc/shadow" reads its own /etc/shadow, never the host's.
//
//   IMGPULL_ASSIGN_OR_RETURN(std::optional<std::string> passwd,
//                            read_rootfs_file(rootfs_fd, "/etc/passwd", kMaxAccountFileBytes));
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

#include "imgpull/error.h"

namespace imgpull::bundle {

// nullopt when there is no such file (or a directory on the way is missing);
// kCorrupt for something that is not a regular file or a symlink loop,
// kTooLarge for a file over `max_bytes`.
Result<std::optional<std::string>> read_rootfs_file(int rootfs_fd, std::string_view path, size_t max_bytes);

}  // namespace imgpull::bundle
