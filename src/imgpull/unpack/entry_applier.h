// Applies tar entries, one at a time, to a rootfs: the filesystem half of
// apply_layer (layer_applier.h has the semantics and the security policy).
// One EntryApplier per layer: it remembers what the layer added (for
// whiteouts) and which directories get their mode and times at the end.
//
//   EntryApplier applier(rootfs_fd, options);
//   while (auto entry = next_entry()) IMGPULL_TRY(applier.apply(*entry, reader));
//   IMGPULL_TRY(applier.finish());
#pragma once

#include <map>
#include <string>

#include "imgpull/error.h"
#include "unpack/entry_path.h"
#include "unpack/metadata.h"
#include "unpack/layer_applier.h"
#include "unpack/path_resolver.h"
#include "unpack/tar_reader.h"
#include "unpack/warnings.h"
#include "unpack/whiteout.h"

namespace imgpull::unpack {

class EntryApplier {
 public:
  EntryApplier(int rootfs_fd, const ApplyOptions& options);

  // Applies `entry`, reading its data from `reader`.
  Status apply(const TarEntry& entry, TarReader& reader);
  // Sets the directories' modes and times, now that their contents are in place.
  Status finish();

 private:
  // Where an entry goes: `name` in the directory `dir_fd`; `path` is its cleaned path.
  struct Place {
    int dir_fd;
    const std::string& name;
    const std::string& path;
  };
  struct DirectoryMetadata {
    mode_t mode;
    std::optional<timespec> atime;
    std::optional<timespec> mtime;
  };

  Status apply_at(const PathComponents& path, const TarEntry& entry, TarReader& reader);
  // The directory an entry goes in, created if missing. Consecutive entries of a tar
  // mostly share it, so the last one is kept open; anything that removes or replaces
  // a node (which could change where a path leads) forgets it.
  Result<int> parent_dir(const PathComponents& path);
  // Stale from now on; still open, as the entry being applied may be using it.
  void forget_parent() { parent_stale_ = true; }
  // Creates `place` with `create(dir_fd, name)` (a *at call that fails with EEXIST on
  // anything already there, never following it); on EEXIST clears the place and tries
  // once more. Returns the call's result; errno is set when it is negative.
  template <typename Create>
  Result<int> create_node(const Place& place, Create create);
  Status apply_whiteout(const PathComponents& path, const Whiteout& whiteout);
  Status create(const Place& place, const TarEntry& entry, TarReader& reader);
  Status write_regular(const Place& place, const TarEntry& entry, TarReader& reader);
  Status make_directory(const Place& place, const TarEntry& entry);
  Status make_symlink(const Place& place, const TarEntry& entry);
  Status make_hardlink(const Place& place, const TarEntry& entry);
  Status make_special(const Place& place, const TarEntry& entry);
  Status make_device_stand_in(const Place& place, const TarEntry& entry);
  // Without the privilege to chown, the image's owners are kept in owner records
  // (rootless_owner.h), as `umoci unpack --rootless` keeps them.
  bool keeps_owner_records() const { return !options_.preserve_ownership; }
  static bool carries_owner_record(const TarEntry& entry);
  TarEntry without_owner_record(const TarEntry& entry);
  // Records the entry's owner on `node` (a file or directory open as node.fd).
  Status keep_owner(const Node& node, const TarEntry& entry, bool replace);
  // The owner of a `what` ("symlink", "fifo"), which cannot carry a record, is lost.
  void owner_lost(const char* what, const TarEntry& entry);
  // Clears the way for a new node: removes what is at the place, except a directory
  // when `keep_directory`. True if a directory was kept.
  Result<bool> clear(const Place& place, bool keep_directory);
  Status finish_directory(const std::string& path, const DirectoryMetadata& dir);

  const ApplyOptions& options_;
  PathResolver resolver_;
  LayerPaths added_;
  Warnings warnings_;
  std::map<std::string, DirectoryMetadata> directories_;  // by cleaned path
  UniqueFd parent_fd_;       // the directory of the last entry ...
  std::string parent_path_;  // ... at this cleaned path
  bool parent_stale_ = true;
  uid_t euid_;               // who creates the nodes: what they are owned by before chown
  gid_t egid_;
};

}  // namespace imgpull::unpack
