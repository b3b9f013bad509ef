// An output directory built beside its target and renamed into place only
// when it is complete, so a failed or killed pull never leaves a half-made
// root filesystem at DIR that looks like a finished one.
//
//  DIR's parent/
//    DIR                                  appears by one rename(2), complete
//    .DIR.imgpull-staging-<16 hex>        while it is being made (same filesystem)
//
// The staging directory is flock(2)ed for its whole life through the
// descriptor the caller writes through: a process that dies holds no lock, so
// a later begin() into the same DIR tells a dead leftover (removed) from a
// live one (another pull, left alone). Each staging directory is also
// recorded (`StagedDirOptions::records`, the store's ROOT/staging/) from
// before it is made until it is gone, so `prune` finds leftovers without
// knowing where DIRs were (remove_dead_staged_dirs).
//
//   StagedDirOptions options;
//   options.records = store.staging_records_dir();
//   IMGPULL_ASSIGN_OR_RETURN(StagedDir out, StagedDir::begin("/srv/debian", options));
//   IMGPULL_TRY(fill(out.fd()));   // apply_layers (unpack/rootfs.h)
//   IMGPULL_TRY(out.commit());     // a return before this: the destructor removes it
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "base/unique_fd.h"
#include "imgpull/error.h"

namespace imgpull {

struct StagedDirOptions {
  // A target holding something is replaced when set: the new tree is swapped
  // in with one renameat2(RENAME_EXCHANGE), then the old one is removed.
  // Refused when not set (checked at begin, before any work, and again by
  // the rename at commit). An empty target is replaced either way.
  bool replace = false;
  // Where each staging directory is recorded while it exists (a file named
  // by its id holding its path); empty: nowhere.
  std::filesystem::path records;
  // Directories a replace must never delete: a target that is one of them,
  // or holds one, is refused (the store, $HOME). "/" is always refused.
  std::vector<std::filesystem::path> protect;
};

class StagedDir {
 public:
  // Checks the target (absolute, symlinks resolved; it must be missing or a
  // directory that is not a mount point, empty unless `replace`), removes the
  // dead staging directories of earlier runs beside it, then makes and locks
  // a new one, mode 0755 less the umask.
  static Result<StagedDir> begin(const std::filesystem::path& target, const StagedDirOptions& options);

  StagedDir(StagedDir&& other) noexcept;
  StagedDir& operator=(StagedDir&&) = delete;
  // Removes the staging directory (and its record) unless committed; a
  // failure to do so leaves it to the next begin() or prune.
  ~StagedDir();

  // The staging directory, open O_RDONLY | O_DIRECTORY, for *at() calls;
  // closed (-1) once committed.
  int fd() const { return fd_.get(); }
  const std::filesystem::path& path() const { return path_; }
  const std::filesystem::path& target() const { return target_; }

  // Renames the staging directory to the target, with the permissions and
  // owner of the directory it replaces, if any. `durable`: the parent is
  // fsynced after the rename, so that it survives a power cut; sync the
  // contents before (sync_filesystems({path()})), so that it never names
  // files whose data did not reach the disk.
  Status commit(bool durable = false);

 private:
  StagedDir() = default;
  Status replace_target(bool durable);
  void committed();

  std::filesystem::path target_;
  std::filesystem::path path_;    // the staging directory
  std::string name_;              // the target's name in its parent
  std::string staging_name_;
  std::filesystem::path record_;  // empty: not recorded
  UniqueFd parent_fd_;
  UniqueFd fd_;                   // holds the lock
  std::vector<std::filesystem::path> protect_;
  bool replace_ = false;
  bool done_ = false;             // committed, or moved from: nothing to remove
};

struct RemovedStagedDir {
  std::filesystem::path path;
  uint64_t bytes = 0;  // regular files' sizes
};

// Removes the staging directories recorded in `records` (see
// StagedDirOptions) that no live process holds, with their records, and
// drops the records of those gone already or that name none (cut short by a
// crash, or still being written: call it while no other process uses the
// store, as prune does). Live ones and their records stay.
Result<std::vector<RemovedStagedDir>> remove_dead_staged_dirs(const std::filesystem::path& records);

}  // namespace imgpull
