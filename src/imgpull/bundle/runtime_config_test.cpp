#include "bundle/runtime_config.h"

#include <gtest/gtest.h>

namespace imgpull::bundle {
namespace {

using nlohmann::ordered_json;

ImageConfig nginx_like() {
  ImageConfig image;
  image.created = "2024-05-01T00:00:00Z";
  image.author = "someone";
  image.platform = Platform{"linux", "arm64", "v8", ""};
  image.run.entrypoint = {"/docker-entrypoint.sh"};
  image.run.cmd = {"nginx", "-g", "daemon off;"};
  image.run.env = {"NGINX_VERSION=1.25", "PATH=/opt/bin:/usr/bin"};
  image.run.working_dir = "/srv";
  image.run.labels = {{"maintainer", "NGINX"}, {"org.opencontainers.image.author", "from a label"}};
  image.run.exposed_ports = {"443/tcp", "80/tcp"};
  image.run.stop_signal = "SIGQUIT";
  return image;
}

RuntimeSettings settings_for(const ImageConfig& image) {
  RuntimeSettings s;
  s.args = *process_args(image.run, std::nullopt);
  s.user = ExecUser{101, 101, {29}, "/nonexistent"};
  s.hostname = "web";
  return s;
}

std::vector<std::string> strings(const ordered_json& list) { return list.get<std::vector<std::string>>(); }

std::vector<std::string> mount_destinations(const ordered_json& config) {
  std::vector<std::string> out;
  for (const auto& m : config["mounts"]) out.push_back(m["destination"]);
  return out;
}

const ordered_json* find_mount(const ordered_json& config, std::string_view destination) {
  for (const auto& m : config["mounts"]) {
    if (m["destination"] == destination) return &m;
  }
  return nullptr;
}

TEST(ProcessArgs, EntrypointThenCmdOrTheOverride) {
  RunConfig run;
  run.entrypoint = {"/init"};
  run.cmd = {"serve", "--port", "80"};
  EXPECT_EQ(*process_args(run, std::nullopt), (std::vector<std::string>{"/init", "serve", "--port", "80"}));
  EXPECT_EQ(*process_args(run, std::vector<std::string>{"debug"}), (std::vector<std::string>{"/init", "debug"}));
  EXPECT_EQ(*process_args(run, std::vector<std::string>{}), std::vector<std::string>{"/init"})
      << "an empty override runs the Entrypoint alone";
  run.entrypoint.clear();
  EXPECT_EQ(*process_args(run, std::nullopt), (std::vector<std::string>{"serve", "--port", "80"}));
  run.cmd.clear();
  auto nothing = process_args(run, std::nullopt);
  ASSERT_FALSE(nothing.ok());
  EXPECT_EQ(nothing.error().code(), ErrorCode::kInvalidArgument);
}

TEST(RuntimeConfig, ProcessFromTheImage) {
  ImageConfig image = nginx_like();
  ordered_json c = runtime_config(image, settings_for(image));
  EXPECT_EQ(c["ociVersion"], kOciRuntimeSpecVersion);
  const ordered_json& p = c["process"];
  EXPECT_EQ(strings(p["args"]),
            (std::vector<std::string>{"/docker-entrypoint.sh", "nginx", "-g", "daemon off;"}));
  EXPECT_EQ(strings(p["env"]), (std::vector<std::string>{"NGINX_VERSION=1.25", "PATH=/opt/bin:/usr/bin",
                                                         "HOME=/nonexistent"}))
      << "the image's PATH stands; HOME from passwd";
  EXPECT_EQ(p["cwd"], "/srv");
  EXPECT_EQ(p["user"], (ordered_json{{"uid", 101}, {"gid", 101}, {"additionalGids", {29}}}));
  EXPECT_EQ(p["terminal"], false);
  EXPECT_EQ(p["noNewPrivileges"], true);
  std::vector<std::string> caps{"CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"};
  for (const char* set : {"bounding", "effective", "permitted", "ambient"}) {
    EXPECT_EQ(strings(p["capabilities"][set]), caps) << set;
  }
  EXPECT_EQ(p["rlimits"][0]["type"], "RLIMIT_NOFILE");
  EXPECT_EQ(c["root"], (ordered_json{{"path", "rootfs"}, {"readonly", false}}));
  EXPECT_EQ(c["hostname"], "web");
}

TEST(RuntimeConfig, DefaultPathAndRelativeWorkingDir) {
  ImageConfig image;
  image.run.cmd = {"sh"};
  image.run.env = {"PATHS=not PATH", "HOME=/mine"};
  image.run.working_dir = "app";
  RuntimeSettings s;
  s.args = {"sh"};
  s.user.home = "/root";
  ordered_json c = runtime_config(image, s);
  EXPECT_EQ(strings(c["process"]["env"]), (std::vector<std::string>{kDefaultPath, "PATHS=not PATH", "HOME=/mine"}));
  EXPECT_EQ(c["process"]["cwd"], "/app");
  EXPECT_FALSE(c["process"]["user"].contains("additionalGids"));
  ImageConfig bare;
  EXPECT_EQ(runtime_config(bare, s)["process"]["cwd"], "/");
}

TEST(RuntimeConfig, AnnotationsFromFieldsThenLabels) {
  ImageConfig image = nginx_like();
  ordered_json a = runtime_config(image, settings_for(image))["annotations"];
  EXPECT_EQ(a["org.opencontainers.image.os"], "linux");
  EXPECT_EQ(a["org.opencontainers.image.architecture"], "arm64");
  EXPECT_EQ(a["org.opencontainers.image.variant"], "v8");
  EXPECT_EQ(a["org.opencontainers.image.created"], "2024-05-01T00:00:00Z");
  EXPECT_EQ(a["org.opencontainers.image.stopSignal"], "SIGQUIT");
  EXPECT_EQ(a["org.opencontainers.image.exposedPorts"], "443/tcp,80/tcp");
  EXPECT_EQ(a["org.opencontainers.image.author"], "from a label") << "labels win";
  EXPECT_EQ(a["maintainer"], "NGINX");
  EXPECT_FALSE(a.contains("org.opencontainers.image.os.version")) << "empty fields are left out";
}

// As `runc spec` prints it.
TEST(RuntimeConfig, RootTemplate) {
  ImageConfig image = nginx_like();
  ordered_json c = runtime_config(image, settings_for(image));
  EXPECT_EQ(mount_destinations(c), (std::vector<std::string>{"/proc", "/dev", "/dev/pts", "/dev/shm", "/dev/mqueue",
                                                             "/sys", "/sys/fs/cgroup"}));
  EXPECT_EQ((*find_mount(c, "/sys"))["type"], "sysfs");
  EXPECT_EQ(strings((*find_mount(c, "/dev/pts"))["options"]).back(), "gid=5");
  const ordered_json& linux = c["linux"];
  EXPECT_EQ(linux["resources"]["devices"][0], (ordered_json{{"allow", false}, {"access", "rwm"}}));
  std::vector<std::string> namespaces;
  for (const auto& ns : linux["namespaces"]) namespaces.push_back(ns["type"]);
  EXPECT_EQ(namespaces, (std::vector<std::string>{"pid", "network", "ipc", "uts", "mount"}));
  EXPECT_FALSE(linux.contains("uidMappings"));
  EXPECT_EQ(linux["maskedPaths"].size(), 10u);
  EXPECT_EQ(strings(linux["readonlyPaths"]).front(), "/proc/bus");
}

// As `runc spec --rootless` prints it, with our mappings and umoci's resolv.conf.
TEST(RuntimeConfig, RootlessTemplate) {
  ImageConfig image = nginx_like();
  RuntimeSettings s = settings_for(image);
  s.rootless = UserNamespace{rootless_mappings(1000, std::vector<SubordinateRange>{{100000, 65536}}),
                             rootless_mappings(1000, {})};
  s.resolv_conf_options = std::vector<std::string>{"nosuid", "ro", "relatime"};
  ordered_json c = runtime_config(image, s);
  const ordered_json& linux = c["linux"];
  EXPECT_FALSE(linux.contains("resources")) << "rootless runc refuses cgroup settings it cannot apply";
  EXPECT_EQ(linux["uidMappings"], (ordered_json{{{"containerID", 0}, {"hostID", 1000}, {"size", 1}},
                                                {{"containerID", 1}, {"hostID", 100000}, {"size", 65536}}}));
  EXPECT_EQ(linux["gidMappings"], (ordered_json{{{"containerID", 0}, {"hostID", 1000}, {"size", 1}}}));
  std::vector<std::string> namespaces;
  for (const auto& ns : linux["namespaces"]) namespaces.push_back(ns["type"]);
  EXPECT_EQ(namespaces, (std::vector<std::string>{"pid", "ipc", "uts", "mount", "user"}));
  EXPECT_FALSE(c["process"]["user"].contains("additionalGids")) << "rootless runc refuses them";
  const ordered_json* sys = find_mount(c, "/sys");
  EXPECT_EQ((*sys)["type"], "none");
  EXPECT_EQ(strings((*sys)["options"]).front(), "rbind");
  for (const auto& option : (*find_mount(c, "/dev/pts"))["options"]) EXPECT_NE(option, "gid=5");
  const ordered_json* resolv = find_mount(c, "/etc/resolv.conf");
  ASSERT_NE(resolv, nullptr);
  EXPECT_EQ(strings((*resolv)["options"]), (std::vector<std::string>{"rbind", "ro", "nosuid", "relatime"}));
  s.resolv_conf_options.reset();
  EXPECT_EQ(find_mount(runtime_config(image, s), "/etc/resolv.conf"), nullptr);
}

}  // namespace
}  // namespace imgpull::bundle
