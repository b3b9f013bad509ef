#include "base/sys_error.h"

#include <cstring>

namespace imgpull {

Error sys_error(std::string_view doing, int err, ErrorCode code) {
  return Error(code, std::string(doing) + ": " + std::strerror(err));
}

Error sys_error(std::string_view what, const std::filesystem::path& path, int err, ErrorCode code) {
  return Error(code, std::string(what) + " " + path.string() + ": " + std::strerror(err));
}

}  // namespace imgpull
