#include "unpack/entry_applier.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>

#include "unpack/metadata.h"
#include "unpack/rootless_owner.h"
#include "base/remove_tree.h"
#include "base/sys_error.h"

namespace imgpull::unpack {
namespace {

std::span<const std::string> parent_of(const PathComponents& path) {
  return std::span<const std::string>(path).first(path.size() - 1);
}

Status write_all_at(int fd, const char* data, size_t size, int64_t offset) {
  while (size > 0) {
    ssize_t n = pwrite(fd, data, size, offset);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return sys_error("writing file data");
    data += n;
    size -= static_cast<size_t>(n);
    offset += n;
  }
  return ok_status();
}

// Streams the entry's data into `fd`. Blocks come with their offsets, so the holes of a
// sparse file are skipped over, and a trailing hole is made by ftruncate.
Status copy_data(int fd, const TarEntry& entry, TarReader& reader) {
  int64_t end = 0;
  for (;;) {
    IMGPULL_ASSIGN_OR_RETURN(auto block, reader.read_block());
    if (!block) break;
    IMGPULL_TRY(write_all_at(fd, static_cast<const char*>(block->data), block->size,
                             block->offset));
    end = std::max(end, block->offset + static_cast<int64_t>(block->size));
  }
  if (entry.size > end && ftruncate(fd, entry.size) != 0) {
    return sys_error("extending a sparse file");
  }
  return ok_status();
}

mode_t node_type(TarEntry::Type type) {
  switch (type) {
    case TarEntry::Type::kCharDevice: return S_IFCHR;
    case TarEntry::Type::kBlockDevice: return S_IFBLK;
    default: return S_IFIFO;
  }
}

}  // namespace

EntryApplier::EntryApplier(int rootfs_fd, const ApplyOptions& options)
    : options_(options),
      resolver_(rootfs_fd,
                options.force_walk_resolver ? ResolveMode::kWalk : ResolveMode::kOpenat2),
      warnings_(options.warn, options.unapplied.get()),
      euid_(geteuid()),
      egid_(getegid()) {}

Result<int> EntryApplier::parent_dir(const PathComponents& path) {
  std::span<const std::string> parent = parent_of(path);
  std::string joined = join_components(parent);
  if (!parent_stale_ && joined == parent_path_) return parent_fd_.get();
  parent_fd_.reset();
  IMGPULL_ASSIGN_OR_RETURN(UniqueFd dir, resolver_.create_dirs(parent));
  parent_fd_ = std::move(dir);
  parent_path_ = std::move(joined);
  parent_stale_ = false;
  return parent_fd_.get();
}

template <typename Create>
Result<int> EntryApplier::create_node(const Place& place, Create create) {
  int rc = create(place.dir_fd, place.name.c_str());
  if (rc >= 0 || errno != EEXIST) return rc;
  IMGPULL_TRY(clear(place, /*keep_directory=*/false));
  return create(place.dir_fd, place.name.c_str());
}

Status EntryApplier::apply(const TarEntry& entry, TarReader& reader) {
  PathComponents path = clean_entry_path(entry.path);
  if (path.empty()) {
    // "./" heads many tars; whatever names the rootfs itself is not the layer's to change.
    if (entry.type != TarEntry::Type::kDirectory) {
      warnings_.once("root entry", "ignoring entry \"" + entry.path + "\": it names the rootfs");
    }
    return ok_status();
  }
  Status status = keeps_owner_records() && carries_owner_record(entry)
                      ? apply_at(path, without_owner_record(entry), reader)
                      : apply_at(path, entry, reader);
  if (!status) return std::move(status).error().wrap("entry \"" + entry.path + "\"");
  return ok_status();
}

bool EntryApplier::carries_owner_record(const TarEntry& entry) {
  return std::any_of(entry.xattrs.begin(), entry.xattrs.end(),
                     [](const auto& xattr) { return xattr.first == kRootlessOwnerXattr; });
}

TarEntry EntryApplier::without_owner_record(const TarEntry& entry) {
  // The record is ours to write from the entry's owner, as umoci does; a layer's own is
  // somebody's leftover, and would give the entry an owner its header does not.
  warnings_.once("layer owner record", "ignoring " + std::string(kRootlessOwnerXattr) +
                                           " xattrs stored in the layer (first on \"" + entry.path +
                                           "\"): the record is made from the tar header's owner");
  TarEntry stripped = entry;
  std::erase_if(stripped.xattrs, [](const auto& xattr) { return xattr.first == kRootlessOwnerXattr; });
  return stripped;
}

Status EntryApplier::keep_owner(const Node& node, const TarEntry& entry, bool replace) {
  Status recorded = record_owner(node, entry.uid, entry.gid, replace);
  if (!recorded) {
    if (recorded.error().code() != ErrorCode::kUnsupported) return recorded;
    warnings_.unapplied("owner", "the filesystem keeps no user.* xattrs",
                        "cannot keep the image's owners: the filesystem keeps no user.* xattrs");
    return ok_status();
  }
  if ((entry.uid != 0 || entry.gid != 0) && warnings_.tally() != nullptr) {
    warnings_.tally()->owner_recorded();
  }
  return ok_status();
}

void EntryApplier::owner_lost(const char* what, const TarEntry& entry) {
  if (entry.uid == 0 && entry.gid == 0) return;  // root's: nothing to record
  warnings_.unapplied(std::string(what) + " owner", "Linux keeps no user.* xattrs on those",
                      "the owners of " + std::string(what) + "s are lost: Linux keeps no " +
                          std::string(kRootlessOwnerXattr) + " xattr on them");
}

Status EntryApplier::apply_at(const PathComponents& path, const TarEntry& entry,
                              TarReader& reader) {
  Whiteout whiteout = classify_whiteout(path.back());
  if (whiteout.kind != WhiteoutKind::kNone) return apply_whiteout(path, whiteout);
  IMGPULL_ASSIGN_OR_RETURN(int dir_fd, parent_dir(path));
  std::string joined = join_components(path);
  Place place{dir_fd, path.back(), joined};
  if (entry.type == TarEntry::Type::kDirectory) {
    IMGPULL_TRY(make_directory(place, entry));
  } else {
    IMGPULL_TRY(create(place, entry, reader));
  }
  added_.add(joined);
  return ok_status();
}

Status EntryApplier::apply_whiteout(const PathComponents& path, const Whiteout& whiteout) {
  switch (whiteout.kind) {
    case WhiteoutKind::kInvalid:
      return Error(ErrorCode::kCorrupt, "whiteout names its own directory or its parent");
    case WhiteoutKind::kMeta:
      warnings_.once("aufs", "ignoring aufs metadata such as \"" + path.back() + "\"");
      return ok_status();
    default: break;
  }
  forget_parent();  // it removes things
  auto dir = resolver_.open_dir(parent_of(path));
  if (!dir) {
    // No such directory below: nothing to remove.
    if (dir.error().code() == ErrorCode::kNotFound) return ok_status();
    return std::move(dir).error();
  }
  std::string dir_path = join_components(parent_of(path));
  if (whiteout.kind == WhiteoutKind::kOpaque) {
    return remove_lower_children(dir->get(), dir_path, added_);
  }
  std::string target_path = dir_path.empty() ? whiteout.target : dir_path + "/" + whiteout.target;
  return remove_lower(dir->get(), whiteout.target, target_path, added_);
}

Status EntryApplier::create(const Place& place, const TarEntry& entry, TarReader& reader) {
  switch (entry.type) {
    case TarEntry::Type::kRegular: return write_regular(place, entry, reader);
    case TarEntry::Type::kSymlink: return make_symlink(place, entry);
    case TarEntry::Type::kHardlink: return make_hardlink(place, entry);
    case TarEntry::Type::kCharDevice:
    case TarEntry::Type::kBlockDevice:
    case TarEntry::Type::kFifo: return make_special(place, entry);
    default:
      warnings_.once("type", "skipping entries of unsupported type (sockets), first \"" +
                                 place.path + "\"");
      return ok_status();
  }
}

Result<bool> EntryApplier::clear(const Place& place, bool keep_directory) {
  struct stat st;
  if (fstatat(place.dir_fd, place.name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
    if (errno == ENOENT) return false;
    return sys_error("stat");
  }
  if (!S_ISDIR(st.st_mode) || !keep_directory) forget_parent();  // something is removed
  if (S_ISDIR(st.st_mode)) {
    if (keep_directory) return true;
    IMGPULL_TRY(remove_all_at(place.dir_fd, place.name));
    return false;
  }
  if (unlinkat(place.dir_fd, place.name.c_str(), 0) != 0 && errno != ENOENT) {
    return sys_error("removing what was there");
  }
  return false;
}

Status EntryApplier::write_regular(const Place& place, const TarEntry& entry, TarReader& reader) {
  // A file that will belong to whoever we are is made with its final permission bits, so
  // that (mostly) neither chown nor chmod is needed; any other file starts owner-only.
  bool ours = !options_.preserve_ownership || (entry.uid == euid_ && entry.gid == egid_);
  mode_t create_mode = ours && (entry.mode & 07000) == 0 ? entry.mode : 0600;
  IMGPULL_ASSIGN_OR_RETURN(int raw_fd, create_node(place, [&](int dir, const char* name) {
    return openat(dir, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, create_mode);
  }));
  UniqueFd fd(raw_fd);
  if (!fd) return sys_error("creating file");
  Node node{place.dir_fd, place.name, fd.get()};
  // What it was made with: the umask, a default ACL or a setgid directory may differ.
  struct stat st;
  if (fstat(fd.get(), &st) != 0) return sys_error("stat of the new file");
  bool chown_needed = options_.preserve_ownership && (st.st_uid != entry.uid || st.st_gid != entry.gid);
  if (chown_needed && create_mode != 0600) {
    // Owner-only before any data goes in, as for a file that is not ours.
    IMGPULL_TRY(set_mode(node, 0600));
    st.st_mode = (st.st_mode & ~07777) | 0600;
  }
  IMGPULL_TRY(copy_data(fd.get(), entry, reader));
  if (chown_needed) IMGPULL_TRY(set_owner(node, entry.uid, entry.gid));
  // chown clears setuid/setgid, so the mode always follows it.
  if (chown_needed || (st.st_mode & 07777) != entry.mode) IMGPULL_TRY(set_mode(node, entry.mode));
  set_xattrs(node, entry.xattrs, warnings_);
  if (keeps_owner_records()) IMGPULL_TRY(keep_owner(node, entry, /*replace=*/false));
  return set_times(node, entry.atime, entry.mtime);
}

Status EntryApplier::make_directory(const Place& place, const TarEntry& entry) {
  // Owner-only until finish() sets the entry's mode, after the contents are written.
  bool kept = false;
  if (mkdirat(place.dir_fd, place.name.c_str(), 0700) != 0) {
    if (errno != EEXIST) return sys_error("creating directory");
    IMGPULL_ASSIGN_OR_RETURN(kept, clear(place, /*keep_directory=*/true));
    if (!kept && mkdirat(place.dir_fd, place.name.c_str(), 0700) != 0) {
      return sys_error("creating directory");
    }
  }
  UniqueFd fd(openat(place.dir_fd, place.name.c_str(),
                     O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (!fd) return sys_error("opening directory");
  Node node{place.dir_fd, place.name, fd.get()};
  if (options_.preserve_ownership) IMGPULL_TRY(set_owner(node, entry.uid, entry.gid));
  set_xattrs(node, entry.xattrs, warnings_);
  if (keeps_owner_records()) IMGPULL_TRY(keep_owner(node, entry, /*replace=*/kept));
  directories_[place.path] = DirectoryMetadata{entry.mode, entry.atime, entry.mtime};
  return ok_status();
}

Status EntryApplier::make_symlink(const Place& place, const TarEntry& entry) {
  if (entry.link_target.empty()) return Error(ErrorCode::kCorrupt, "symlink with an empty target");
  // The target is data, stored as written; it is only ever resolved inside the root.
  IMGPULL_ASSIGN_OR_RETURN(int rc, create_node(place, [&](int dir, const char* name) {
    return symlinkat(entry.link_target.c_str(), dir, name);
  }));
  if (rc != 0) return sys_error("creating symlink");
  Node node{place.dir_fd, place.name};
  if (options_.preserve_ownership) IMGPULL_TRY(set_owner(node, entry.uid, entry.gid));
  if (keeps_owner_records()) owner_lost("symlink", entry);
  set_xattrs(node, entry.xattrs, warnings_);
  return set_times(node, entry.atime, entry.mtime);
}

Status EntryApplier::make_hardlink(const Place& place, const TarEntry& entry) {
  PathComponents target = clean_entry_path(entry.link_target);
  if (target.empty()) return Error(ErrorCode::kCorrupt, "hardlink to the rootfs itself");
  auto target_dir = resolver_.open_dir(parent_of(target));
  if (!target_dir) {
    const Error& error = target_dir.error();
    // The layer links to something no layer made: the layer is wrong, not the disk.
    ErrorCode code = error.code() == ErrorCode::kNotFound ? ErrorCode::kCorrupt : error.code();
    return Error(code, "hardlink target \"" + entry.link_target + "\": " + error.message());
  }
  const std::string& target_name = target.back();
  struct stat target_st;
  if (fstatat(target_dir->get(), target_name.c_str(), &target_st, AT_SYMLINK_NOFOLLOW) != 0) {
    return sys_error("hardlink target \"" + entry.link_target + "\"", errno,
                     errno == ENOENT ? ErrorCode::kCorrupt : ErrorCode::kIo);
  }
  if (S_ISDIR(target_st.st_mode)) return Error(ErrorCode::kCorrupt, "hardlink to a directory");
  struct stat st;
  if (fstatat(place.dir_fd, place.name.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0 &&
      st.st_dev == target_st.st_dev && st.st_ino == target_st.st_ino) {
    return ok_status();  // already that file (a link to itself, or repeated)
  }
  IMGPULL_TRY(clear(place, /*keep_directory=*/false));
  // Flags 0: a symlink target is linked itself, never followed. The link takes no metadata
  // of its own: it would change the shared inode (or, via chmod, a symlink's target).
  if (linkat(target_dir->get(), target_name.c_str(), place.dir_fd, place.name.c_str(), 0) != 0) {
    return sys_error("creating hardlink to \"" + entry.link_target + "\"");
  }
  return ok_status();
}

Status EntryApplier::make_special(const Place& place, const TarEntry& entry) {
  bool device = entry.type != TarEntry::Type::kFifo;
  if (device && !options_.preserve_ownership) return make_device_stand_in(place, entry);
  IMGPULL_TRY(clear(place, /*keep_directory=*/false));
  dev_t rdev = device ? entry.rdev : 0;
  if (mknodat(place.dir_fd, place.name.c_str(), node_type(entry.type) | 0600, rdev) != 0) {
    if (device && errno == EPERM) return make_device_stand_in(place, entry);  // root in a user namespace
    return sys_error("creating device or fifo");
  }
  Node node{place.dir_fd, place.name};
  if (options_.preserve_ownership) IMGPULL_TRY(set_owner(node, entry.uid, entry.gid));
  if (keeps_owner_records()) owner_lost("fifo", entry);
  IMGPULL_TRY(set_mode(node, entry.mode));
  set_xattrs(node, entry.xattrs, warnings_);
  return set_times(node, entry.atime, entry.mtime);
}

Status EntryApplier::make_device_stand_in(const Place& place, const TarEntry& entry) {
  // What umoci makes where mknod needs a privilege we lack: an empty regular file with
  // the device's mode, owner (or owner record) and times, so the path exists and a
  // runtime's /dev mount (which hides the image's /dev anyway) finds what it expects.
  warnings_.unapplied("device node", "empty files in their place, as umoci makes them",
                      "device nodes are made as empty files: creating them needs root");
  IMGPULL_ASSIGN_OR_RETURN(int raw_fd, create_node(place, [](int dir, const char* name) {
    return openat(dir, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
  }));
  UniqueFd fd(raw_fd);
  if (!fd) return sys_error("creating an empty file for a device node");
  Node node{place.dir_fd, place.name, fd.get()};
  if (options_.preserve_ownership) IMGPULL_TRY(set_owner(node, entry.uid, entry.gid));
  if (keeps_owner_records()) IMGPULL_TRY(keep_owner(node, entry, /*replace=*/false));
  IMGPULL_TRY(set_mode(node, entry.mode));
  set_xattrs(node, entry.xattrs, warnings_);
  return set_times(node, entry.atime, entry.mtime);
}

Status EntryApplier::finish() {
  for (const auto& [path, dir] : directories_) {
    Status status = finish_directory(path, dir);
    if (!status) return std::move(status).error().wrap("directory \"" + path + "\"");
  }
  return ok_status();
}

Status EntryApplier::finish_directory(const std::string& path, const DirectoryMetadata& dir) {
  PathComponents components = clean_entry_path(path);
  auto parent = resolver_.open_dir(parent_of(components));
  if (!parent) {
    if (parent.error().code() == ErrorCode::kNotFound) return ok_status();  // removed since
    return std::move(parent).error();
  }
  const std::string& name = components.back();
  UniqueFd fd(openat(parent->get(), name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (!fd) {
    // Removed or replaced by a later entry of this layer: that one's metadata stands.
    if (errno == ENOENT || errno == ENOTDIR || errno == ELOOP) return ok_status();
    return sys_error("opening");
  }
  Node node{parent->get(), name, fd.get()};
  IMGPULL_TRY(set_mode(node, dir.mode));
  return set_times(node, dir.atime, dir.mtime);
}

}  // namespace imgpull::unpack
