#include "unpack/staged_dir.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <string_view>

#include "base/file_io.h"
#include "base/remove_tree.h"
#include "base/sys_error.h"

#ifndef STATX_ATTR_MOUNT_ROOT
#define STATX_ATTR_MOUNT_ROOT 0x00002000  // linux/stat.h, Linux 5.8
#endif

namespace imgpull {
namespace fs = std::filesystem;
namespace {

constexpr std::string_view kStagingInfix = ".imgpull-staging-";
// 64 random bits: two runs beside one DIR never pick the same name.
constexpr size_t kIdBytes = 8;
constexpr size_t kIdChars = 2 * kIdBytes;
// "." + name + infix + id must fit NAME_MAX (255); longer target names are cut.
constexpr size_t kMaxNamePart = 255 - 1 - kStagingInfix.size() - kIdChars;
// A new name is tried when a scanner removed ours before we locked it (see
// make_locked): one retry does; more means something else is wrong.
constexpr int kMakeAttempts = 4;
// A record holds one path.
constexpr size_t kMaxRecordBytes = 4096;

// Built piecewise: "." + ... + ... trips GCC 12's -Wrestrict false positive at -O3.
std::string staging_prefix(const std::string& target_name) {
  std::string prefix = ".";
  prefix.append(target_name, 0, kMaxNamePart);
  prefix.append(kStagingInfix);
  return prefix;
}

bool is_id(std::string_view s) {
  return s.size() == kIdChars && std::all_of(s.begin(), s.end(), [](char c) {
           return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
         });
}

Result<std::string> random_id() {
  unsigned char bytes[kIdBytes];
  if (getrandom(bytes, sizeof bytes, 0) != static_cast<ssize_t>(sizeof bytes)) {
    return sys_error("getting random bytes for a staging directory name");
  }
  std::string id;
  for (unsigned char b : bytes) id += fmt::format("{:02x}", b);
  return id;
}

bool same_inode(const struct stat& a, const struct stat& b) { return a.st_dev == b.st_dev && a.st_ino == b.st_ino; }

bool is_mount_point(int parent_fd, const std::string& name, const struct stat& st) {
  struct statx stx {};
  if (statx(parent_fd, name.c_str(), AT_SYMLINK_NOFOLLOW, 0, &stx) == 0 &&
      (stx.stx_attributes_mask & STATX_ATTR_MOUNT_ROOT) != 0) {
    return (stx.stx_attributes & STATX_ATTR_MOUNT_ROOT) != 0;
  }
  struct stat parent {};
  return fstat(parent_fd, &parent) == 0 && parent.st_dev != st.st_dev;
}

// `inner` is `outer` or below it (both absolute and normal).
bool holds(const fs::path& outer, const fs::path& inner) {
  auto [o, i] = std::mismatch(outer.begin(), outer.end(), inner.begin(), inner.end());
  return o == outer.end();
}

fs::path resolved(const fs::path& path) {
  std::error_code ec;
  fs::path p = fs::weakly_canonical(fs::absolute(path, ec), ec);
  if (ec) p = fs::absolute(path, ec).lexically_normal();
  if (!p.has_filename() && p.has_relative_path()) p = p.parent_path();  // "/a/b/" -> "/a/b"
  return p;
}

enum class Leftover { kRemoved, kLive, kGone };

// Removes `name` in `parent_fd` if it is a staging directory no process holds.
Result<Leftover> remove_if_dead(int parent_fd, const std::string& name, uint64_t* bytes) {
  constexpr int kFlags = O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC;
  UniqueFd dir(openat(parent_fd, name.c_str(), kFlags));
  if (!dir && errno == EACCES && fchmodat(parent_fd, name.c_str(), S_IRWXU, AT_SYMLINK_NOFOLLOW) == 0) {
    dir.reset(openat(parent_fd, name.c_str(), kFlags));  // an old tree replace() swapped out
  }
  if (!dir) {
    if (errno == ENOENT || errno == ENOTDIR || errno == ELOOP) return Leftover::kGone;  // not one of ours
    return sys_error("opening \"" + name + "\"");
  }
  if (flock(dir.get(), LOCK_EX | LOCK_NB) != 0) {
    if (errno == EWOULDBLOCK) return Leftover::kLive;
    return sys_error("locking \"" + name + "\"");
  }
  // Its maker may have renamed it into place between our open and our lock.
  struct stat locked {}, named {};
  if (fstat(dir.get(), &locked) != 0 || fstatat(parent_fd, name.c_str(), &named, AT_SYMLINK_NOFOLLOW) != 0 ||
      !same_inode(locked, named)) {
    return Leftover::kGone;
  }
  IMGPULL_TRY(remove_all_at(parent_fd, name, bytes));
  return Leftover::kRemoved;
}

void remove_record(const fs::path& records, const std::string& id) {
  if (!records.empty()) ::unlink((records / id).c_str());
}

// Removes what killed runs into `target_name` left in `parent_fd`. Best
// effort: a leftover this user may not remove (another user's, in a shared
// directory) must not stop this run; prune reports it.
void remove_dead_siblings(int parent_fd, const std::string& target_name, const fs::path& records) {
  auto names = list_dir(parent_fd);
  if (!names) return;
  std::string prefix = staging_prefix(target_name);
  for (const auto& name : *names) {
    if (!name.starts_with(prefix) || !is_id(std::string_view(name).substr(prefix.size()))) continue;
    auto left = remove_if_dead(parent_fd, name, nullptr);
    if (left && *left == Leftover::kRemoved) remove_record(records, name.substr(prefix.size()));
  }
}

Status write_record(const fs::path& record, const fs::path& staging) {
  if (::mkdir(record.parent_path().c_str(), 0755) != 0 && errno != EEXIST) {
    return sys_error("creating " + record.parent_path().string());
  }
  UniqueFd fd(::open(record.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644));
  if (!fd) return sys_error("cannot create", record);
  std::string text = staging.string();
  return write_all(fd.get(), text.data(), text.size(), record);
}

Status check_target(int parent_fd, const std::string& name, const fs::path& target, const StagedDirOptions& options) {
  struct stat st {};
  if (fstatat(parent_fd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
    if (errno == ENOENT) return ok_status();
    return sys_error("looking at " + target.string());
  }
  if (!S_ISDIR(st.st_mode)) {
    return Error(ErrorCode::kInvalidArgument, target.string() + " exists and is not a directory");
  }
  if (is_mount_point(parent_fd, name, st)) {
    return Error(ErrorCode::kInvalidArgument,
                 fmt::format("{} is a mount point: imgpull makes the directory beside it and renames it into "
                             "place, which a mount point cannot take; use a directory inside it ({}/rootfs)",
                             target.string(), target.string()));
  }
  UniqueFd dir(openat(parent_fd, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (!dir) return sys_error("opening " + target.string());
  IMGPULL_ASSIGN_OR_RETURN(auto entries, list_dir(dir.get()));
  if (entries.empty()) return ok_status();
  if (!options.replace) {
    return Error(ErrorCode::kInvalidArgument,
                 target.string() + " is not empty; use --force to replace it with the image's root filesystem");
  }
  for (const auto& kept : options.protect) {
    if (holds(target, resolved(kept))) {
      return Error(ErrorCode::kInvalidArgument,
                   fmt::format("refusing to replace {}: that would delete {}", target.string(), resolved(kept).string()));
    }
  }
  return ok_status();
}

// The new directory takes the mode and owner of the one it replaces (a user's
// `mkdir -m 700 DIR` stays 0700). An owner this process may not give (not
// root) stays the caller's, as with cp.
void take_permissions(int parent_fd, const std::string& name, int staging_fd) {
  struct stat old {}, made {};
  if (fstatat(parent_fd, name.c_str(), &old, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISDIR(old.st_mode) ||
      fstat(staging_fd, &made) != 0) {
    return;
  }
  if (old.st_uid != made.st_uid || old.st_gid != made.st_gid) (void)fchown(staging_fd, old.st_uid, old.st_gid);
  if ((old.st_mode & 07777) != (made.st_mode & 07777)) (void)fchmod(staging_fd, old.st_mode & 07777);
}

}  // namespace

Result<StagedDir> StagedDir::begin(const fs::path& target, const StagedDirOptions& options) {
  StagedDir out;
  out.target_ = resolved(target);
  if (!out.target_.has_relative_path()) {
    return Error(ErrorCode::kInvalidArgument, "refusing to make " + out.target_.string() + ": it has no parent");
  }
  out.name_ = out.target_.filename().string();
  out.replace_ = options.replace;
  out.protect_ = options.protect;
  fs::path parent = out.target_.parent_path();
  out.parent_fd_.reset(::open(parent.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!out.parent_fd_) return sys_error("opening " + parent.string() + ", where " + out.name_ + " is to be made");
  IMGPULL_TRY(check_target(out.parent_fd_.get(), out.name_, out.target_, options));
  remove_dead_siblings(out.parent_fd_.get(), out.name_, options.records);

  for (int attempt = 0; attempt < kMakeAttempts; ++attempt) {
    IMGPULL_ASSIGN_OR_RETURN(std::string id, random_id());
    out.staging_name_ = staging_prefix(out.name_) + id;
    out.path_ = parent / out.staging_name_;
    // Recorded before it exists: a run killed in between leaves a record of
    // nothing, which prune drops, never a directory nobody knows of.
    if (!options.records.empty()) {
      out.record_ = options.records / id;
      IMGPULL_TRY(write_record(out.record_, out.path_));
    }
    if (mkdirat(out.parent_fd_.get(), out.staging_name_.c_str(), 0755) != 0) {
      int err = errno;
      remove_record(options.records, id);
      if (err == EEXIST) continue;
      return sys_error(fmt::format("creating {} (the directory is made beside {} and renamed into place, "
                                   "so {} must be writable)",
                                   out.path_.string(), out.name_, parent.string()),
                       err);
    }
    out.fd_.reset(openat(out.parent_fd_.get(), out.staging_name_.c_str(),
                         O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (!out.fd_) {
      Error error = sys_error("opening " + out.path_.string());
      (void)unlinkat(out.parent_fd_.get(), out.staging_name_.c_str(), AT_REMOVEDIR);
      remove_record(options.records, id);
      return error;
    }
    // Until locked it looks dead: a scanner (another run's begin, prune) may
    // have removed it. It is ours only if it is still linked once locked.
    struct stat st {};
    if (flock(out.fd_.get(), LOCK_EX | LOCK_NB) == 0 && fstat(out.fd_.get(), &st) == 0 && st.st_nlink > 0) {
      return out;
    }
    remove_record(options.records, id);
    out.fd_.reset();
  }
  return Error(ErrorCode::kIo, "could not make a staging directory beside " + out.target_.string());
}

StagedDir::StagedDir(StagedDir&& other) noexcept
    : target_(std::move(other.target_)),
      path_(std::move(other.path_)),
      name_(std::move(other.name_)),
      staging_name_(std::move(other.staging_name_)),
      record_(std::move(other.record_)),
      parent_fd_(std::move(other.parent_fd_)),
      fd_(std::move(other.fd_)),
      protect_(std::move(other.protect_)),
      replace_(other.replace_),
      done_(std::exchange(other.done_, true)) {}

StagedDir::~StagedDir() {
  if (done_ || !fd_) return;
  // Removed while still locked, so no scanner starts on it meanwhile.
  if (remove_all_at(parent_fd_.get(), staging_name_).ok() && !record_.empty()) ::unlink(record_.c_str());
}

Status StagedDir::commit(bool durable) {
  if (done_ || !fd_) return Error(ErrorCode::kInternal, "commit of a staged directory that is not in progress");
  take_permissions(parent_fd_.get(), name_, fd_.get());
  if (renameat(parent_fd_.get(), staging_name_.c_str(), parent_fd_.get(), name_.c_str()) == 0) {
    committed();
    if (!record_.empty()) ::unlink(record_.c_str());
    if (durable && ::fsync(parent_fd_.get()) != 0) {
      return sys_error("syncing " + target_.parent_path().string());
    }
    return ok_status();
  }
  if ((errno == ENOTEMPTY || errno == EEXIST) && replace_) return replace_target(durable);
  if (errno == ENOTEMPTY || errno == EEXIST) {
    return Error(ErrorCode::kInvalidArgument,
                 target_.string() + " was filled by something else while imgpull was making it; it is left as it is");
  }
  return sys_error(fmt::format("renaming {} to {}", path_.string(), target_.string()));
}

// The lock goes with the name: a replace later (by this process too) must
// find the tree it swaps out unheld.
void StagedDir::committed() {
  done_ = true;
  fd_.reset();
}

// The target is not empty and is to be replaced: the new tree goes in with
// one atomic swap, and the old one, now at the staging name, is removed.
Status StagedDir::replace_target(bool durable) {
  {
    // Re-checked: what the target holds may have changed since begin().
    StagedDirOptions options{.replace = true, .records = {}, .protect = protect_};
    IMGPULL_TRY(check_target(parent_fd_.get(), name_, target_, options));
  }
  int parent = parent_fd_.get();
  std::string old_name = staging_name_;
  if (renameat2(parent, staging_name_.c_str(), parent, name_.c_str(), RENAME_EXCHANGE) != 0) {
    if (errno != EINVAL) return sys_error(fmt::format("swapping {} and {}", path_.string(), target_.string()));
    // A filesystem without RENAME_EXCHANGE: the old tree goes to a fresh
    // staging name first (nobody holds it: if this run dies, the next removes
    // it), so for a moment there is nothing at the target.
    IMGPULL_ASSIGN_OR_RETURN(std::string id, random_id());
    old_name = staging_prefix(name_) + id;
    if (!record_.empty()) {
      fs::path old_record = record_.parent_path() / id;
      IMGPULL_TRY(write_record(old_record, target_.parent_path() / old_name));
      ::unlink(record_.c_str());
      record_ = old_record;
    }
    if (renameat(parent, name_.c_str(), parent, old_name.c_str()) != 0) {
      return sys_error("moving " + target_.string() + " aside");
    }
    if (renameat(parent, staging_name_.c_str(), parent, name_.c_str()) != 0) {
      Error error = sys_error(fmt::format("renaming {} to {}", path_.string(), target_.string()));
      (void)renameat(parent, old_name.c_str(), parent, name_.c_str());
      return error;
    }
  }
  committed();
  if (durable && ::fsync(parent) != 0) return sys_error("syncing " + target_.parent_path().string());
  // Locked like any staging directory while it goes (a scanner that got it
  // first removes it itself); the record goes last, so a failure or a kill
  // leaves it to the next run or prune.
  auto old = remove_if_dead(parent, old_name, nullptr);
  if (old && *old != Leftover::kLive && !record_.empty()) ::unlink(record_.c_str());
  return ok_status();
}

Result<std::vector<RemovedStagedDir>> remove_dead_staged_dirs(const fs::path& records) {
  std::vector<RemovedStagedDir> removed;
  UniqueFd dir(::open(records.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!dir) {
    if (errno == ENOENT) return removed;
    return sys_error("opening " + records.string());
  }
  IMGPULL_ASSIGN_OR_RETURN(auto ids, list_dir(dir.get()));
  for (const auto& id : ids) {
    if (!is_id(id)) continue;
    fs::path record = records / id;
    std::string text(kMaxRecordBytes, '\0');
    UniqueFd file(::open(record.c_str(), O_RDONLY | O_CLOEXEC));
    ssize_t n = file ? ::read(file.get(), text.data(), text.size()) : -1;
    if (n < 0) return sys_error("reading " + record.string());
    text.resize(static_cast<size_t>(n));
    fs::path staging(text);
    std::string name = staging.filename().string();
    // Only a name this module makes, with this record's id, is ever removed
    // (a record cut short by a crash matches nothing).
    bool ours = staging.is_absolute() && name.starts_with(".") && name.ends_with(std::string(kStagingInfix) + id);
    UniqueFd parent(ours ? ::open(staging.parent_path().c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC) : -1);
    Leftover left = Leftover::kGone;
    uint64_t bytes = 0;
    if (parent) {
      auto checked = remove_if_dead(parent.get(), name, &bytes);
      if (!checked) return std::move(checked).error().wrap("removing " + staging.string());
      left = *checked;
    }
    if (left == Leftover::kLive) continue;
    ::unlink(record.c_str());
    if (left == Leftover::kRemoved) removed.push_back({staging, bytes});
  }
  return removed;
}

}  // namespace imgpull
