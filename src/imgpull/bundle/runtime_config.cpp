#include "bundle/runtime_config.h"

#include <algorithm>

namespace imgpull::bundle {
namespace {

using nlohmann::ordered_json;

// runc spec's defaults, as Debian's runc 1.1 prints them.
const std::vector<std::string> kCapabilities = {"CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"};
constexpr uint64_t kNofileLimit = 1024;
const std::vector<std::string> kMaskedPaths = {
    "/proc/acpi",        "/proc/asound",     "/proc/kcore",        "/proc/keys",   "/proc/latency_stats",
    "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/sys/firmware", "/proc/scsi"};
const std::vector<std::string> kReadonlyPaths = {"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys",
                                                 "/proc/sysrq-trigger"};

// Annotations the image-spec's conversion.md names for config fields that have no
// place of their own in a runtime config.
constexpr const char* kOsAnnotation = "org.opencontainers.image.os";
constexpr const char* kArchitectureAnnotation = "org.opencontainers.image.architecture";
constexpr const char* kVariantAnnotation = "org.opencontainers.image.variant";
constexpr const char* kOsVersionAnnotation = "org.opencontainers.image.os.version";
constexpr const char* kAuthorAnnotation = "org.opencontainers.image.author";
constexpr const char* kCreatedAnnotation = "org.opencontainers.image.created";
constexpr const char* kStopSignalAnnotation = "org.opencontainers.image.stopSignal";
constexpr const char* kExposedPortsAnnotation = "org.opencontainers.image.exposedPorts";

bool has_variable(const std::vector<std::string>& env, std::string_view name) {
  return std::any_of(env.begin(), env.end(), [&](const std::string& entry) {
    return entry.size() > name.size() && entry.starts_with(name) && entry[name.size()] == '=';
  });
}

std::vector<std::string> process_env(const RunConfig& run, const ExecUser& user) {
  std::vector<std::string> env;
  if (!has_variable(run.env, "PATH")) env.emplace_back(kDefaultPath);
  env.insert(env.end(), run.env.begin(), run.env.end());
  if (!user.home.empty() && !has_variable(run.env, "HOME")) env.push_back("HOME=" + user.home);
  return env;
}

ordered_json mount(const char* destination, const char* type, const char* source,
                   std::vector<std::string> options) {
  ordered_json m = {{"destination", destination}, {"type", type}, {"source", source}};
  if (!options.empty()) m["options"] = std::move(options);
  return m;
}

ordered_json mounts(const RuntimeSettings& settings) {
  bool rootless = settings.rootless.has_value();
  ordered_json list = ordered_json::array();
  list.push_back(mount("/proc", "proc", "proc", {}));
  list.push_back(mount("/dev", "tmpfs", "tmpfs", {"nosuid", "strictatime", "mode=755", "size=65536k"}));
  std::vector<std::string> devpts = {"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"};
  if (!rootless) devpts.push_back("gid=5");  // the tty group, which a rootless container may not map
  list.push_back(mount("/dev/pts", "devpts", "devpts", devpts));
  list.push_back(mount("/dev/shm", "tmpfs", "shm", {"nosuid", "noexec", "nodev", "mode=1777", "size=65536k"}));
  list.push_back(mount("/dev/mqueue", "mqueue", "mqueue", {"nosuid", "noexec", "nodev"}));
  if (rootless) {
    list.push_back(mount("/sys", "none", "/sys", {"rbind", "nosuid", "noexec", "nodev", "ro"}));
  } else {
    list.push_back(mount("/sys", "sysfs", "sysfs", {"nosuid", "noexec", "nodev", "ro"}));
  }
  list.push_back(mount("/sys/fs/cgroup", "cgroup", "cgroup", {"nosuid", "noexec", "nodev", "relatime", "ro"}));
  if (rootless && settings.resolv_conf_options) {
    std::vector<std::string> options = {"rbind", "ro"};
    for (const std::string& option : *settings.resolv_conf_options) {
      if (std::find(options.begin(), options.end(), option) == options.end()) options.push_back(option);
    }
    list.push_back(mount("/etc/resolv.conf", "bind", "/etc/resolv.conf", options));
  }
  return list;
}

ordered_json id_mappings(const std::vector<IdMapping>& mappings) {
  ordered_json list = ordered_json::array();
  for (const IdMapping& m : mappings) {
    list.push_back({{"containerID", m.container_id}, {"hostID", m.host_id}, {"size", m.size}});
  }
  return list;
}

ordered_json linux_section(const RuntimeSettings& settings) {
  ordered_json linux = ordered_json::object();
  ordered_json namespaces = ordered_json::array();
  namespaces.push_back({{"type", "pid"}});
  if (settings.rootless) {
    linux["uidMappings"] = id_mappings(settings.rootless->uids);
    linux["gidMappings"] = id_mappings(settings.rootless->gids);
  } else {
    linux["resources"] = {{"devices", ordered_json::array({{{"allow", false}, {"access", "rwm"}}})}};
    namespaces.push_back({{"type", "network"}});
  }
  for (const char* type : {"ipc", "uts", "mount"}) namespaces.push_back({{"type", type}});
  if (settings.rootless) namespaces.push_back({{"type", "user"}});
  linux["namespaces"] = std::move(namespaces);
  linux["maskedPaths"] = kMaskedPaths;
  linux["readonlyPaths"] = kReadonlyPaths;
  return linux;
}

ordered_json annotations(const ImageConfig& image) {
  ordered_json out = ordered_json::object();
  auto set = [&](const char* key, const std::string& value) {
    if (!value.empty()) out[key] = value;
  };
  set(kOsAnnotation, image.platform.os);
  set(kArchitectureAnnotation, image.platform.architecture);
  set(kVariantAnnotation, image.platform.variant);
  set(kOsVersionAnnotation, image.platform.os_version);
  set(kAuthorAnnotation, image.author);
  set(kCreatedAnnotation, image.created);
  set(kStopSignalAnnotation, image.run.stop_signal);
  std::string ports;
  for (const std::string& port : image.run.exposed_ports) ports += (ports.empty() ? "" : ",") + port;
  set(kExposedPortsAnnotation, ports);
  // Labels last: conversion.md lets them override what came from the fields.
  for (const auto& [key, value] : image.run.labels) out[key] = value;
  return out;
}

}  // namespace

Result<std::vector<std::string>> process_args(const RunConfig& run,
                                              const std::optional<std::vector<std::string>>& cmd) {
  std::vector<std::string> args = run.entrypoint;
  const std::vector<std::string>& tail = cmd ? *cmd : run.cmd;
  args.insert(args.end(), tail.begin(), tail.end());
  if (args.empty()) {
    return Error(ErrorCode::kInvalidArgument,
                 "the image has neither Entrypoint nor Cmd: say what to run (--bundle-cmd)");
  }
  return args;
}

ordered_json runtime_config(const ImageConfig& image, const RuntimeSettings& settings) {
  const RunConfig& run = image.run;
  ordered_json user = {{"uid", settings.user.uid}, {"gid", settings.user.gid}};
  if (!settings.rootless && !settings.user.additional_gids.empty()) {
    user["additionalGids"] = settings.user.additional_gids;
  }
  // runc wants it absolute; docker reads a relative one from "/".
  std::string cwd = run.working_dir.starts_with('/') ? run.working_dir : "/" + run.working_dir;
  ordered_json capabilities = {{"bounding", kCapabilities},
                               {"effective", kCapabilities},
                               {"permitted", kCapabilities},
                               {"ambient", kCapabilities}};
  ordered_json process = {
      {"terminal", false},
      {"user", std::move(user)},
      {"args", settings.args},
      {"env", process_env(run, settings.user)},
      {"cwd", cwd},
      {"capabilities", std::move(capabilities)},
      {"rlimits", ordered_json::array({{{"type", "RLIMIT_NOFILE"}, {"hard", kNofileLimit}, {"soft", kNofileLimit}}})},
      {"noNewPrivileges", true},
  };
  return ordered_json{
      {"ociVersion", kOciRuntimeSpecVersion},
      {"process", std::move(process)},
      {"root", {{"path", "rootfs"}, {"readonly", false}}},
      {"hostname", settings.hostname},
      {"mounts", mounts(settings)},
      {"annotations", annotations(image)},
      {"linux", linux_section(settings)},
  };
}

}  // namespace imgpull::bundle
