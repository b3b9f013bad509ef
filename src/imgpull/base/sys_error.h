// Errors from failed system calls: the one way to turn an errno into an
// Error. The message says what was being done (and to which path), then the
// system's words for the errno.
//
//   if (mkdirat(dir, name, 0700) != 0) return sys_error("creating directory " + std::string(name));
//   if (fd < 0) return sys_error("cannot open", path);  // "cannot open /x/y: Permission denied"
#pragma once

#include <cerrno>
#include <filesystem>
#include <string>
#include <string_view>

#include "imgpull/error.h"

namespace imgpull {

// "<doing>: <strerror(err)>".
Error sys_error(std::string_view doing, int err = errno, ErrorCode code = ErrorCode::kIo);

// "<what> <path>: <strerror(err)>", as in "cannot create /a/b: No space left on device".
Error sys_error(std::string_view what, const std::filesystem::path& path, int err = errno,
                ErrorCode code = ErrorCode::kIo);

}  // namespace imgpull
