#include "unpack/rootless_owner.h"

#include <sys/stat.h>
#include <sys/xattr.h>

#include "base/sys_error.h"

namespace imgpull::unpack {
namespace {

// rootless-containers/proto's NoopID: the owner is left as the file has it.
constexpr uint32_t kNoChange = 0xFFFFFFFF;
// Protobuf tags: field number << 3 | wire type 0 (varint).
constexpr uint8_t kUidTag = 1 << 3;
constexpr uint8_t kGidTag = 2 << 3;

void append_varint(std::string& out, uint32_t value) {
  while (value >= 0x80) {
    out.push_back(static_cast<char>((value & 0x7F) | 0x80));
    value >>= 7;
  }
  out.push_back(static_cast<char>(value));
}

int set_record(const Node& node, const std::string& value) {
  return fsetxattr(node.fd, kRootlessOwnerXattr.data(), value.data(), value.size(), 0);
}

int remove_record(const Node& node, const std::string&) {
  int rc = fremovexattr(node.fd, kRootlessOwnerXattr.data());
  return rc != 0 && errno == ENODATA ? 0 : rc;
}

// Runs `change`; if the mode refuses it (EACCES: no owner write bit, which even
// the owner needs for a user.* xattr), once more with the owner write bit set for
// the call.
template <typename Change>
Status with_owner_write(const Node& node, const std::string& value, Change change) {
  if (change(node, value) == 0) return ok_status();
  if (errno == ENOTSUP) {
    return sys_error("setting " + std::string(kRootlessOwnerXattr), errno, ErrorCode::kUnsupported);
  }
  if (errno != EACCES) return sys_error("setting " + std::string(kRootlessOwnerXattr));
  struct stat st;
  if (fstat(node.fd, &st) != 0) return sys_error("stat");
  mode_t mode = st.st_mode & 07777;
  if (fchmod(node.fd, mode | S_IWUSR) != 0) return sys_error("making owner-writable");
  int rc = change(node, value);
  int saved = errno;
  if (fchmod(node.fd, mode) != 0) return sys_error("restoring the mode");
  if (rc != 0) return sys_error("setting " + std::string(kRootlessOwnerXattr), saved);
  return ok_status();
}

}  // namespace

std::string encode_rootless_owner(uint32_t uid, uint32_t gid) {
  if (uid == 0 && gid == 0) return {};
  std::string out;
  out.push_back(static_cast<char>(kUidTag));
  append_varint(out, uid == 0 ? kNoChange : uid);
  out.push_back(static_cast<char>(kGidTag));
  append_varint(out, gid == 0 ? kNoChange : gid);
  return out;
}

Status record_owner(const Node& node, uint32_t uid, uint32_t gid, bool replace) {
  std::string value = encode_rootless_owner(uid, gid);
  if (!value.empty()) return with_owner_write(node, value, set_record);
  if (replace) return with_owner_write(node, value, remove_record);
  return ok_status();
}

}  // namespace imgpull::unpack
