// The owner an image gives an entry, kept where an unprivileged unpack cannot
// chown: in the `user.rootlesscontainers` xattr, as `umoci unpack --rootless`
// keeps it, so umoci (repack), and any tool that honours the rootless-containers
// convention, sees the image's owners and not the unpacking user.
//
// The value is the protobuf message of rootless-containers/proto,
//  message Resource { uint32 uid = 1; uint32 gid = 2; }
// holding the owner *inside* the container, where the unpacking user is root:
// an id of 0 is written as 0xFFFFFFFF ("no change": the file's real owner,
// the user, is root there), and an entry owned by 0:0 gets no xattr at all.
// Byte for byte what umoci writes: 33:33 is 08 21 10 21, 0:456 is
// 08 ff ff ff ff 0f 10 c8 03. Two varint fields do not need a protobuf library.
//
// Only regular files and directories can carry a user.* xattr (Linux refuses
// them on symlinks, fifos and device nodes), so the owners of symlinks and
// fifos are lost, as they are with umoci; device nodes, which an unprivileged
// user cannot make, become empty regular files with the device's mode and
// owner record, as umoci makes them.
//
//   IMGPULL_TRY(record_owner(node, entry.uid, entry.gid, /*replace=*/false));
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <string_view>

#include "imgpull/error.h"
#include "unpack/metadata.h"

namespace imgpull::unpack {

inline constexpr std::string_view kRootlessOwnerXattr = "user.rootlesscontainers";

// The xattr's value for an entry the image gives to uid:gid; empty for 0:0
// (no xattr).
std::string encode_rootless_owner(uint32_t uid, uint32_t gid);

// Sets the record of `node` (a regular file or directory; `node.fd` open on it)
// for uid:gid. `replace`: the node existed before this entry (a directory kept
// from a lower layer), so a record it has is removed when the owner is 0:0.
// A user.* xattr needs write permission even for the owner: a node whose mode
// lacks it is made owner-writable for the call and given its mode back.
// kUnsupported when the filesystem has no user xattrs.
Status record_owner(const Node& node, uint32_t uid, uint32_t gid, bool replace);

}  // namespace imgpull::unpack
