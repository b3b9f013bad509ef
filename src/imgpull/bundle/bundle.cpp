#include "bundle/bundle.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "base/atomic_file.h"
#include "base/sync_fs.h"
#include "base/sys_error.h"
#include "base/unique_fd.h"
#include "bundle/exec_user.h"
#include "bundle/id_map.h"
#include "bundle/rootfs_file.h"
#include "bundle/runtime_config.h"
#include "unpack/rootfs.h"

namespace imgpull::bundle {
namespace fs = std::filesystem;

namespace {

// A hostname label (RFC 1123) is at most 63 letters, digits and inner hyphens.
constexpr size_t kMaxHostnameLength = 63;
constexpr const char* kFallbackHostname = "imgpull";

// The image's Hostname if it has one (Docker's legacy field), else the bundle
// directory's name made into a hostname: a container is named after its
// directory, as docker names its hostname after the container.
std::string hostname_for(const fs::path& dir, const RunConfig& run) {
  if (!run.hostname.empty()) return run.hostname;
  fs::path absolute = fs::absolute(dir).lexically_normal();
  std::string name = absolute.has_filename() ? absolute.filename().string() : absolute.parent_path().filename().string();
  for (char& c : name) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-';
    if (!ok) c = '-';
  }
  name = name.substr(0, kMaxHostnameLength);
  while (!name.empty() && name.front() == '-') name.erase(0, 1);
  while (!name.empty() && name.back() == '-') name.pop_back();
  return name.empty() ? kFallbackHostname : name;
}

// A bind mount in a user namespace must keep the flags the kernel locked on the
// mount it comes from (MNT_LOCK_*), or mount(2) fails with EPERM.
std::optional<std::vector<std::string>> locked_mount_options(const char* path) {
  struct statvfs st;
  if (statvfs(path, &st) != 0) return std::nullopt;
  std::vector<std::string> options;
  struct Flag {
    unsigned long bit;
    const char* name;
  };
  for (Flag flag : {Flag{ST_RDONLY, "ro"}, Flag{ST_NOSUID, "nosuid"}, Flag{ST_NODEV, "nodev"},
                    Flag{ST_NOEXEC, "noexec"}, Flag{ST_NOATIME, "noatime"}, Flag{ST_NODIRATIME, "nodiratime"},
                    Flag{ST_RELATIME, "relatime"}}) {
    if ((st.f_flag & flag.bit) != 0) options.emplace_back(flag.name);
  }
  return options;
}

void warn_unmapped(const UserNamespace& ns, const ExecUser& user,
                   const std::function<void(std::string_view)>& warn) {
  if (!warn) return;
  std::vector<std::string> unmapped;
  if (!ns.maps_uid(user.uid)) unmapped.push_back(fmt::format("uid {}", user.uid));
  if (!ns.maps_gid(user.gid)) unmapped.push_back(fmt::format("gid {}", user.gid));
  if (unmapped.empty()) return;
  warn(fmt::format("the image runs as {}, which the rootless user namespace does not map: runc will not "
                   "start it (subordinate ids in /etc/subuid and /etc/subgid and newuidmap/newgidmap, "
                   "Debian's uidmap, let it map them)",
                   fmt::join(unmapped, " and ")));
}

// config.json replaced whole (AtomicFile), mode exactly 0644 whatever the umask.
Status write_config_file(const fs::path& path, const std::string& content) {
  IMGPULL_ASSIGN_OR_RETURN(AtomicFile file, AtomicFile::create(path));
  if (::fchmod(file.fd(), 0644) != 0) return sys_error("setting the mode of", file.temporary_path());
  IMGPULL_TRY(file.write(content));
  return file.commit();
}

}  // namespace

Result<fs::path> prepare_bundle_dir(const fs::path& dir, bool force) {
  // DIR/rootfs is built beside itself and renamed into place like any rootfs
  // (unpack/staged_dir.h); DIR itself only has to exist, and be empty unless
  // --force (which then replaces rootfs/ and config.json).
  if (::mkdir(dir.c_str(), 0755) != 0 && errno != EEXIST) return sys_error("cannot create", dir);
  std::error_code ec;
  bool empty = fs::is_empty(dir, ec);
  if (ec) return Error(ErrorCode::kIo, "cannot list " + dir.string() + ": " + ec.message());
  if (!empty && !force) {
    return Error(ErrorCode::kInvalidArgument,
                 dir.string() + " is not empty; use --force to replace the bundle in it");
  }
  return dir / kRootfsName;
}

Status write_bundle_config(const fs::path& dir, const ImageConfig& image, const BundleOptions& options,
                           const std::function<void(std::string_view)>& warn) {
  std::string context = "writing the bundle's " + (dir / kConfigName).string();
  fs::path rootfs_path = dir / kRootfsName;
  UniqueFd rootfs(::open(rootfs_path.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (!rootfs) return sys_error("opening " + rootfs_path.string()).wrap(context);
  auto passwd = read_rootfs_file(rootfs.get(), "/etc/passwd", kMaxAccountFileBytes);
  if (!passwd) return std::move(passwd).error().wrap(context);
  auto group = read_rootfs_file(rootfs.get(), "/etc/group", kMaxAccountFileBytes);
  if (!group) return std::move(group).error().wrap(context);

  RuntimeSettings settings;
  auto user = resolve_exec_user(image.run.user, *passwd, *group);
  if (!user) return std::move(user).error().wrap(context);
  settings.user = std::move(user).value();
  auto args = process_args(image.run, options.cmd);
  if (!args) return std::move(args).error().wrap(context);
  settings.args = std::move(args).value();
  settings.hostname = hostname_for(dir, image.run);
  if (geteuid() != 0) {
    settings.rootless = caller_user_namespace();
    warn_unmapped(*settings.rootless, settings.user, warn);
    settings.resolv_conf_options = locked_mount_options("/etc/resolv.conf");
  }
  std::string document = runtime_config(image, settings).dump(2) + "\n";
  Status written = write_config_file(dir / kConfigName, document);
  if (!written) return std::move(written).error().wrap(context);
  return ok_status();
}

namespace {

Result<ImageConfig> stored_config(Store& store, const std::string& name) {
  IMGPULL_ASSIGN_OR_RETURN(std::optional<ImageRecord> record, store.find_image(name));
  if (!record) return Error(ErrorCode::kNotFound, "no image " + name + " in the store");
  IMGPULL_ASSIGN_OR_RETURN(StoredImage image, store.load_image(*record));
  return std::move(image.config);
}

Status finish_bundle(Store& store, const std::string& name, const fs::path& dir, const BundleOptions& options,
                     bool sync, const std::function<void(std::string_view)>& warn) {
  IMGPULL_ASSIGN_OR_RETURN(ImageConfig config, stored_config(store, name));
  IMGPULL_TRY(write_bundle_config(dir, config, options, warn));
  if (sync) IMGPULL_TRY(sync_filesystems({dir}));
  return ok_status();
}

}  // namespace

Result<PullResult> pull_bundle(Client& client, const Reference& ref, const PullRequest& request) {
  std::string context = "pulling " + ref.str();
  if (!request.rootfs.empty()) {
    return Error(ErrorCode::kInvalidArgument, context + ": a bundle has its own rootfs; give a bundle or a rootfs");
  }
  auto rootfs = prepare_bundle_dir(request.bundle, request.force);
  if (!rootfs) return std::move(rootfs).error().wrap(context);
  PullRequest into_rootfs = request;
  into_rootfs.bundle.clear();
  into_rootfs.rootfs = *rootfs;
  IMGPULL_ASSIGN_OR_RETURN(PullResult pulled, client.pull(ref, into_rootfs));
  Status finished = finish_bundle(client.store(), pulled.name, request.bundle, request.bundle_options,
                                  request.sync, request.on_warning);
  if (!finished) return std::move(finished).error().wrap(context);
  return pulled;
}

Status unpack_bundle(Client& client, const Reference& ref, const fs::path& dir, const UnpackRequest& request) {
  auto rootfs = prepare_bundle_dir(dir, request.force);
  if (!rootfs) return std::move(rootfs).error().wrap("unpacking " + ref.str());
  UnpackRequest into_rootfs = request;
  into_rootfs.bundle.reset();
  IMGPULL_TRY(client.unpack(ref, *rootfs, into_rootfs));
  Status finished =
      finish_bundle(client.store(), store_name_for(ref), dir, *request.bundle, request.sync, request.on_warning);
  if (!finished) return std::move(finished).error().wrap("unpacking " + ref.str());
  return ok_status();
}

}  // namespace imgpull::bundle
