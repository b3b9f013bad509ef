// Errors from failed system calls, named by what was being done.
//
//   if (mkdirat(dir, name, 0700) != 0) return sys_error("creating directory " + path);
#pragma once

#include <cerrno>
#include <cstring>
#include <string>

#include "imgpull/error.h"

namespace imgpull {

inline Error sys_error(const std::string& doing, int err = errno,
                       ErrorCode code = ErrorCode::kIo) {
  return Error(code, doing + ": " + std::strerror(err));
}

}  // namespace imgpull
