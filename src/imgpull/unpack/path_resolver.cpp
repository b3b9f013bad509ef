#include "unpack/path_resolver.h"

#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <climits>
#include <deque>

#include "unpack/entry_path.h"
#include "base/sys_error.h"

namespace imgpull::unpack {
namespace {

// openat2 answers EAGAIN when a rename raced with a RESOLVE_IN_ROOT lookup.
constexpr int kOpenat2Attempts = 8;

ErrorCode code_for_lookup_errno(int err) {
  switch (err) {
    case ENOENT:
    case ENOTDIR: return ErrorCode::kNotFound;
    case ELOOP: return ErrorCode::kCorrupt;
    default: return ErrorCode::kIo;
  }
}

Error lookup_error(const std::string& path, int err) {
  return sys_error("resolving \"" + path + "\" in the rootfs", err, code_for_lookup_errno(err));
}

// One step of the walk: either the next directory or the target of a symlink.
struct Step {
  UniqueFd dir;
  std::string link_target;
};

// mkdirat applies the umask; implied directories get exactly 0755.
Status make_implied_dir(int dir_fd, const std::string& name) {
  if (mkdirat(dir_fd, name.c_str(), 0755) != 0) {
    if (errno == EEXIST) return ok_status();  // a dangling symlink or a race: look again
    return sys_error("creating directory \"" + name + "\"");
  }
  UniqueFd fd(openat(dir_fd, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (!fd || fchmod(fd.get(), 0755) != 0) return sys_error("setting the mode of \"" + name + "\"");
  return ok_status();
}

Result<std::string> read_link(int link_fd, const std::string& name) {
  char target[PATH_MAX];
  ssize_t n = readlinkat(link_fd, "", target, sizeof target);
  if (n < 0) return sys_error("reading symlink \"" + name + "\"");
  if (static_cast<size_t>(n) == sizeof target) {
    return lookup_error(name, ENAMETOOLONG);
  }
  return std::string(target, static_cast<size_t>(n));
}

Result<Step> step_into(int dir_fd, const std::string& name, bool create) {
  UniqueFd fd(openat(dir_fd, name.c_str(), O_PATH | O_NOFOLLOW | O_CLOEXEC));
  if (!fd && errno == ENOENT && create) {
    IMGPULL_TRY(make_implied_dir(dir_fd, name));
    fd.reset(openat(dir_fd, name.c_str(), O_PATH | O_NOFOLLOW | O_CLOEXEC));
  }
  if (!fd) return lookup_error(name, errno);
  struct stat st;
  if (fstat(fd.get(), &st) != 0) return sys_error("stat \"" + name + "\"");
  if (S_ISDIR(st.st_mode)) return Step{std::move(fd), {}};
  if (!S_ISLNK(st.st_mode)) return lookup_error(name, ENOTDIR);
  IMGPULL_ASSIGN_OR_RETURN(std::string target, read_link(fd.get(), name));
  return Step{UniqueFd(), std::move(target)};
}

// Puts the components of a symlink target in front of what is left to walk. They are
// not cleaned: a ".." in a target is relative to where the link was found.
void splice_target(const std::string& target, std::deque<std::string>& todo) {
  std::deque<std::string> parts;
  size_t start = 0;
  while (start <= target.size()) {
    size_t slash = target.find('/', start);
    if (slash == std::string::npos) slash = target.size();
    if (slash > start) parts.emplace_back(target.substr(start, slash - start));
    start = slash + 1;
  }
  todo.insert(todo.begin(), parts.begin(), parts.end());
}

}  // namespace

Result<UniqueFd> PathResolver::open_dir(std::span<const std::string> dir) {
  if (mode_ == ResolveMode::kWalk) return walk(dir, /*create=*/false);
  return open_in_root(join_components(dir));
}

Result<UniqueFd> PathResolver::create_dirs(std::span<const std::string> dir) {
  auto existing = open_dir(dir);
  if (existing || existing.error().code() != ErrorCode::kNotFound) return existing;
  // Only the walk can create as it goes; it resolves exactly as openat2 does.
  return walk(dir, /*create=*/true);
}

Result<UniqueFd> PathResolver::open_in_root(const std::string& path) {
  open_how how{};
  how.flags = O_PATH | O_DIRECTORY | O_CLOEXEC;
  how.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS;
  const char* name = path.empty() ? "." : path.c_str();
  for (int attempt = 0; attempt < kOpenat2Attempts; ++attempt) {
    long fd = syscall(SYS_openat2, root_fd_, name, &how, sizeof how);
    if (fd >= 0) return UniqueFd(static_cast<int>(fd));
    if (errno == EAGAIN || errno == EINTR) continue;
    if (errno == ENOSYS || errno == EPERM) {
      mode_ = ResolveMode::kWalk;  // no openat2 here (old kernel, seccomp): walk from now on
      return open_dir(clean_entry_path(path));
    }
    return lookup_error(path, errno);
  }
  return lookup_error(path, EAGAIN);
}

Result<UniqueFd> PathResolver::walk(std::span<const std::string> dir, bool create) {
  std::vector<UniqueFd> walked;  // walked[0] is the root; ".." pops, never past it
  walked.emplace_back(openat(root_fd_, ".", O_PATH | O_DIRECTORY | O_CLOEXEC));
  if (!walked[0]) return sys_error("opening the rootfs");
  std::deque<std::string> todo(dir.begin(), dir.end());
  int hops = 0;
  while (!todo.empty()) {
    std::string part = std::move(todo.front());
    todo.pop_front();
    if (part.empty() || part == ".") continue;
    if (part == "..") {
      if (walked.size() > 1) walked.pop_back();
      continue;
    }
    IMGPULL_ASSIGN_OR_RETURN(Step step, step_into(walked.back().get(), part, create));
    if (step.dir) {
      walked.push_back(std::move(step.dir));
      continue;
    }
    if (++hops > kMaxSymlinkHops) return lookup_error(join_components(dir), ELOOP);
    if (step.link_target.starts_with('/')) walked.resize(1);  // absolute: from the rootfs
    splice_target(step.link_target, todo);
  }
  return std::move(walked.back());
}

}  // namespace imgpull::unpack
