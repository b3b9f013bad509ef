// Opens directories inside a rootfs so that nothing already in it — an
// absolute symlink, a "../../.." symlink, a chain of them planted by earlier
// entries or layers — can lead outside it. Symlinks are followed (a layer may
// rightly write "lib/x" where lib -> usr/lib), but always as if the rootfs were
// "/": an absolute target starts at the rootfs, ".." stops at it.
//
//   PathResolver resolver(rootfs_fd);
//   IMGPULL_ASSIGN_OR_RETURN(UniqueFd etc, resolver.create_dirs(std::vector<std::string>{"etc"}));
//   openat(etc.get(), "hosts", O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
//
// Two implementations with the same meaning:
//  - kOpenat2: one openat2(RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS) per lookup; the kernel
//    does the confinement (Linux >= 5.6).
//  - kWalk: one component at a time with openat(O_PATH | O_NOFOLLOW); a symlink is read
//    with readlinkat and its target spliced into the path still to walk, from the root
//    for an absolute target; ".." pops the directories walked so far and never the
//    root. The kernel is never handed more than one name, so no symlink (and no
//    /proc magic link) is ever followed by it.
// kOpenat2 falls back to kWalk by itself when openat2 is missing (ENOSYS) or filtered
// (EPERM, as old seccomp profiles do); kWalk can be asked for directly, for tests.
//
// Returned descriptors are O_PATH directories: use them as the dirfd of *at() calls.
#pragma once

#include <span>
#include <string>

#include "imgpull/error.h"
#include "base/unique_fd.h"

namespace imgpull::unpack {

enum class ResolveMode { kOpenat2, kWalk };

// Symlinks followed in one lookup before giving up, as the kernel's MAXSYMLINKS.
inline constexpr int kMaxSymlinkHops = 40;

class PathResolver {
 public:
  // `root_fd` is a directory that must stay open while the resolver is used.
  explicit PathResolver(int root_fd, ResolveMode mode = ResolveMode::kOpenat2)
      : root_fd_(root_fd), mode_(mode) {}

  // The directory at `dir` (no components: the root). kNotFound when a component is
  // missing or is not a directory, kCorrupt for a symlink loop.
  Result<UniqueFd> open_dir(std::span<const std::string> dir);
  // As open_dir, creating missing directories (mode 0755) on the way, including where a
  // dangling symlink in the rootfs points.
  Result<UniqueFd> create_dirs(std::span<const std::string> dir);

  ResolveMode mode() const { return mode_; }

 private:
  Result<UniqueFd> open_in_root(const std::string& path);
  Result<UniqueFd> walk(std::span<const std::string> dir, bool create);

  int root_fd_;
  ResolveMode mode_;
};

}  // namespace imgpull::unpack
