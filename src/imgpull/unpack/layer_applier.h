// Applies a layer blob onto a rootfs directory: decompresses it, hashes the
// uncompressed tar stream (the layer's diffID, which the caller checks against
// the image config) and applies the tar as an OCI layer changeset.
//
//   UniqueFd rootfs(open("/var/lib/x/rootfs", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
//   for (size_t i = 0; i < manifest.layers.size(); ++i) {
//     const Descriptor& layer = manifest.layers[i];
//     IMGPULL_ASSIGN_OR_RETURN(auto blob, FileSource::open(store.blob_path(layer.digest)));
//     IMGPULL_ASSIGN_OR_RETURN(Compression c, compression_for_media_type(layer.media_type));
//     IMGPULL_ASSIGN_OR_RETURN(ApplyResult r, apply_layer(rootfs.get(), *blob, c, {}));
//     if (r.diff_id != config.diff_ids[i]) return Error(ErrorCode::kCorrupt, "diffID mismatch");
//   }
//
// What a layer does (OCI image-spec "Applying Changesets", as containerd and
// umoci apply them):
//  - Regular files, directories, symlinks, hardlinks, char/block devices and
//    fifos are created; an existing non-directory at the path is replaced; a
//    directory replaces a file, a non-directory replaces a directory (removed
//    recursively); an existing directory meets a directory entry by keeping its
//    contents and taking the entry's metadata. Implied parents are made 0755.
//  - Metadata order: data, then owner (as root: lchown semantics), then mode
//    (chown clears setuid/setgid), then xattrs (chown and writes drop
//    security.capability), then times. Directories get their mode and times
//    when the layer ends, after their contents were written.
//  - Hardlinks: the target must already exist in the rootfs (this layer or a
//    lower one); the link takes no metadata of its own (it shares the target's
//    inode; a chmod on a link to a symlink would otherwise follow the symlink).
//  - ".wh.NAME" removes the lower NAME, recursively; ".wh..wh..opq" empties its
//    directory of lower entries. Both spare what this same layer adds, in
//    either tar order. Other ".wh..wh." names (aufs) are ignored with a warning.
//  - Not root (preserve_ownership false): no chown; the image's owner of each
//    file and directory is kept in its user.rootlesscontainers xattr instead
//    (rootless_owner.h), and device nodes are made as empty files, as
//    `umoci unpack --rootless` does; fifos are still made. What could not be
//    applied is counted in `unapplied` for one line at the end.
//
// SECURITY POLICY: nothing in a layer may reach outside the rootfs.
//  1. Entry names are cleaned lexically: leading "/" and "./" dropped, "." and
//     empty components dropped, ".." pops one component and is clamped at the
//     root ("../../etc/x" is etc/x in the rootfs), as containerd does. A name
//     that cleans to the root itself is ignored.
//  2. Every parent directory is opened with openat2(RESOLVE_IN_ROOT |
//     RESOLVE_NO_MAGICLINKS) from the rootfs descriptor: symlinks on the way,
//     whether absolute, "../../..", chained, planted by an earlier entry or an
//     earlier layer, resolve as if the rootfs were "/". Where openat2 is
//     missing, a component-by-component O_NOFOLLOW walk resolves the same way
//     in user space (PathResolver; ApplyOptions::force_walk_resolver tests it).
//  3. The final component is only ever handled through that directory
//     descriptor and its single name with *at() calls that do not follow it:
//     openat(O_CREAT|O_EXCL|O_NOFOLLOW), mkdirat, symlinkat, mknodat,
//     linkat(flags 0), unlinkat, fchownat/utimensat(AT_SYMLINK_NOFOLLOW),
//     fchmod/fsetxattr on the descriptor just created (never chmod on a
//     symlink). An existing node is unlinked before a new one is created, so
//     a write never goes through a symlink or into a lower hardlinked file.
//  4. Hardlink targets are cleaned and resolved the same way; the link is made
//     to the target's own inode, a symlink included, never to where it points.
//  5. Whiteouts resolve their directory the same way and remove by single
//     name; ".wh.", ".wh.." and ".wh..." (naming the directory or its parent)
//     fail the layer with kCorrupt. Recursive removal opens each directory
//     O_NOFOLLOW and unlinks symlinks without following them.
//  6. Symlink targets are stored verbatim: they are data, only interpreted
//     (inside the root) when a later path goes through them.
//  7. Sizes: the decompressed stream is capped (max_uncompressed_bytes,
//     kTooLarge), so is the number of entries (max_entries), data is streamed
//     in fixed blocks, and libarchive refuses header records (PAX, GNU long
//     names) over 1 MiB, so no header value sizes an allocation. One exception
//     remains, in libarchive: the map of a GNU 1.0 sparse file is read into
//     memory whole (about 64 bytes per map entry), bounded only by the
//     uncompressed-size cap.
#pragma once

#include <unistd.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string_view>

#include "imgpull/digest.h"
#include "imgpull/error.h"
#include "base/byte_source.h"
#include "unpack/compression.h"
#include "unpack/warnings.h"

namespace imgpull::unpack {

// The largest uncompressed layer we apply. Real layers reach tens of GiB (CUDA, ML
// models); a stream growing past this is far more likely a decompression bomb.
inline constexpr uint64_t kDefaultMaxUncompressedLayerBytes = uint64_t{64} << 30;

// The most entries a layer may have. The applier remembers each path a layer adds (whiteouts
// in the same layer must spare them), about 100 bytes apiece: 10 million is ~1 GiB, while
// real layers stay under a few million even with node_modules.
inline constexpr uint64_t kDefaultMaxLayerEntries = 10'000'000;

struct ApplyOptions {
  // chown to the tar's uid/gid and create device nodes; needs root.
  bool preserve_ownership = (geteuid() == 0);
  uint64_t max_uncompressed_bytes = kDefaultMaxUncompressedLayerBytes;
  uint64_t max_entries = kDefaultMaxLayerEntries;
  // Told each kind of skipped thing once per layer; may be empty.
  std::function<void(std::string_view)> warn;
  // Where what needs privileges we lack (device nodes, security.* xattrs, owners
  // of symlinks and fifos) is counted over all the layers of an image, instead of
  // a warning per layer; empty: warned about like the rest.
  std::shared_ptr<UnappliedTally> unapplied;
  // Resolve paths with the O_NOFOLLOW walk even where openat2 exists (for tests).
  bool force_walk_resolver = false;
};

struct ApplyResult {
  Digest diff_id;               // sha256 of the uncompressed tar stream
  uint64_t uncompressed_bytes;  // its length
  uint64_t entries;             // tar entries read, whiteouts included
};

// Applies one layer onto the directory `rootfs_fd`. On error the rootfs holds part of the
// layer and should be discarded.
Result<ApplyResult> apply_layer(int rootfs_fd, ByteSource& compressed, Compression compression,
                                const ApplyOptions& options);

}  // namespace imgpull::unpack
