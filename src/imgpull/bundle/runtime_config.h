// The OCI runtime configuration (config.json of a runtime bundle) for an
// image: how runc or crun start a container of it. Built from the image
// config as the OCI image-spec's conversion.md says (Entrypoint + Cmd -> args,
// Env, WorkingDir -> cwd, User -> user, Labels and some fields ->
// annotations) on the template `runc spec` prints (Debian's runc 1.1):
// its mounts (proc, /dev tmpfs, devpts, shm, mqueue, sysfs, cgroup), default
// capabilities (CAP_AUDIT_WRITE, CAP_KILL, CAP_NET_BIND_SERVICE), rlimit,
// masked and read-only paths, namespaces and device cgroup rule.
//
// Where the template and `docker run` differ, we follow docker: the root
// filesystem is writable and there is no terminal (docker run without -t; set
// process.terminal for an interactive shell). Volumes get no mounts: what a
// container writes there stays in the rootfs, as in the bundle's other paths.
//
// Rootless (not run as root), as `runc spec --rootless`: a user namespace
// (caller -> 0, subordinate ids after it, see id_map.h), no network namespace
// (the host's network, as rootless runc has no other), /sys bound from the host
// (sysfs cannot be mounted without a network namespace of our own), devpts
// without gid=5, no cgroup settings (resources) and no supplementary groups,
// which rootless runc refuses; plus, as umoci does, the host's
// /etc/resolv.conf bound read-only, so names resolve on the host's network.
//
//   RuntimeSettings settings{.args = args, .user = user, .hostname = "web"};
//   IMGPULL_ASSIGN_OR_RETURN(nlohmann::ordered_json config, runtime_config(image, settings));
#pragma once

#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "bundle/exec_user.h"
#include "bundle/id_map.h"
#include "imgpull/error.h"
#include "imgpull/manifest.h"

namespace imgpull::bundle {

// The version of the runtime spec we write; runc 1.1 and crun 1.8 read it.
inline constexpr const char* kOciRuntimeSpecVersion = "1.0.2";
// When the image sets no PATH, as docker and runc's template set it.
inline constexpr const char* kDefaultPath = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

// What a container runs: the Entrypoint followed by `cmd` when given (as
// `docker run IMAGE CMD...` replaces Cmd and keeps the Entrypoint), else by the
// image's Cmd. kInvalidArgument when that is nothing.
Result<std::vector<std::string>> process_args(const RunConfig& run,
                                              const std::optional<std::vector<std::string>>& cmd);

struct RuntimeSettings {
  std::vector<std::string> args;
  ExecUser user;
  std::string hostname;
  // Set: a rootless configuration, in this user namespace.
  std::optional<UserNamespace> rootless;
  // Rootless: the options (beyond rbind, ro) of the host's /etc/resolv.conf bind
  // mount, which must repeat the flags the kernel locks on its mount; nullopt:
  // no such mount (the host has no /etc/resolv.conf).
  std::optional<std::vector<std::string>> resolv_conf_options;
};

// The config.json document, keys in the order `runc spec` writes them.
nlohmann::ordered_json runtime_config(const ImageConfig& image, const RuntimeSettings& settings);

}  // namespace imgpull::bundle
