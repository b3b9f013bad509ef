#include "remote/hosts.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

namespace imgpull {
namespace {

namespace fs = std::filesystem;

class TempDir {
 public:
  TempDir() {
    std::string pattern = (fs::temp_directory_path() / "imgpull-hosts-XXXXXX").string();
    path_ = mkdtemp(pattern.data());
  }
  ~TempDir() { fs::remove_all(path_); }
  const fs::path& path() const { return path_; }
  void write(const fs::path& rel, const std::string& text) const {
    fs::create_directories((path_ / rel).parent_path());
    std::ofstream(path_ / rel) << text;
  }

 private:
  fs::path path_;
};

Result<HostsConfig> parse(const std::string& text, const std::string& dir = "/etc/imgpull/certs.d/x") {
  return parse_hosts_toml(text, dir, "registry.example:5000", "hosts.toml");
}

TEST(HostsToml, HostsInFileOrderThenServer) {
  // Names that sort the other way round: the file's order must win.
  auto config = parse(R"(
server = "https://upstream.example"
[host."https://zz-first.example:5000"]
  capabilities = ["pull", "resolve"]
[host."http://aa-second.example"]
  capabilities = ["pull"]
)");
  ASSERT_TRUE(config.ok()) << config.error().message();
  ASSERT_EQ(config->endpoints.size(), 3u);
  EXPECT_EQ(config->endpoints[0].base_url(), "https://zz-first.example:5000/v2");
  EXPECT_EQ(config->endpoints[0].capabilities, kCapabilityPull | kCapabilityResolve);
  EXPECT_FALSE(config->endpoints[0].upstream);
  EXPECT_EQ(config->endpoints[1].base_url(), "http://aa-second.example/v2");
  EXPECT_TRUE(config->endpoints[1].can(kCapabilityPull));
  EXPECT_FALSE(config->endpoints[1].can(kCapabilityResolve));
  EXPECT_EQ(config->endpoints[2].base_url(), "https://upstream.example/v2");
  EXPECT_TRUE(config->endpoints[2].upstream);
  EXPECT_EQ(config->endpoints[2].capabilities, kAllCapabilities);
}

TEST(HostsToml, NoServerMeansTheRegistryItself) {
  auto config = parse("[host.\"https://mirror\"]\n");
  ASSERT_TRUE(config.ok()) << config.error().message();
  ASSERT_EQ(config->endpoints.size(), 2u);
  EXPECT_EQ(config->endpoints[0].capabilities, kAllCapabilities);  // unspecified: all, as containerd
  EXPECT_EQ(config->endpoints[1].base_url(), "https://registry.example:5000/v2");
}

TEST(HostsToml, ServerAsTheMirrorMeansNoFallback) {
  auto config = parse("server = \"http://127.0.0.1:5001\"\n");
  ASSERT_TRUE(config.ok()) << config.error().message();
  ASSERT_EQ(config->endpoints.size(), 1u);
  EXPECT_EQ(config->endpoints[0].base_url(), "http://127.0.0.1:5001/v2");
}

TEST(HostsToml, PathsAndOverridePath) {
  auto config = parse(R"(
[host."https://mirror.example/docker"]
[host."https://other.example/v2/"]
[host."https://odd.example/api/upstream"]
  override_path = true
)");
  ASSERT_TRUE(config.ok()) << config.error().message();
  EXPECT_EQ(config->endpoints[0].base_url(), "https://mirror.example/docker/v2");
  EXPECT_EQ(config->endpoints[1].base_url(), "https://other.example/v2");
  EXPECT_EQ(config->endpoints[2].base_url(), "https://odd.example/api/upstream");
}

TEST(HostsToml, TlsFieldsRelativeToTheDirectory) {
  TempDir dir;
  dir.write("ca-1.pem", "-----BEGIN CERTIFICATE-----\nA\n-----END CERTIFICATE-----");
  dir.write("ca-2.pem", "-----BEGIN CERTIFICATE-----\nB\n-----END CERTIFICATE-----\n");
  dir.write("client.cert", "c");
  dir.write("client.key", "k");
  auto config = parse(R"(
[host."https://mirror"]
  ca = ["ca-1.pem", "ca-2.pem"]
  client = [["client.cert", "client.key"]]
[host."https://other"]
  client = "client.cert"
  skip_verify = true
[host."https://plain"]
)",
                      dir.path().string());
  ASSERT_TRUE(config.ok()) << config.error().message();
  const auto& tls = config->endpoints[0].tls;
  ASSERT_TRUE(tls);
  EXPECT_NE(tls->ca_pem.find("\nA\n-----END CERTIFICATE-----\n-----BEGIN"), std::string::npos);
  EXPECT_EQ(tls->client_cert_file, (dir.path() / "client.cert").string());
  EXPECT_EQ(tls->client_key_file, (dir.path() / "client.key").string());
  ASSERT_TRUE(config->endpoints[1].tls);
  EXPECT_TRUE(config->endpoints[1].tls->skip_verify);
  EXPECT_EQ(config->endpoints[1].tls->client_key_file, "");  // key in the cert file
  EXPECT_FALSE(config->endpoints[2].tls);                     // left to certs.d
}

TEST(HostsToml, ErrorsNameTheFileAndWhat) {
  auto bad_syntax = parse("server = \n");
  ASSERT_FALSE(bad_syntax.ok());
  EXPECT_NE(bad_syntax.error().message().find("hosts.toml: line 1"), std::string::npos) << bad_syntax.error().message();

  auto bad_cap = parse("[host.\"https://m\"]\ncapabilities = [\"pull\", \"fetch\"]\n");
  ASSERT_FALSE(bad_cap.ok());
  EXPECT_NE(bad_cap.error().message().find("unknown capability \"fetch\""), std::string::npos);

  auto missing_ca = parse("[host.\"https://m\"]\nca = \"nope.pem\"\n", "/nonexistent");
  ASSERT_FALSE(missing_ca.ok());
  EXPECT_NE(missing_ca.error().message().find("/nonexistent/nope.pem"), std::string::npos);

  auto bad_scheme = parse("server = \"ftp://m\"\n");
  ASSERT_FALSE(bad_scheme.ok());
  EXPECT_NE(bad_scheme.error().message().find("not an http(s) URL"), std::string::npos);

  auto bad_type = parse("[host.\"https://m\"]\nskip_verify = \"yes\"\n");
  ASSERT_FALSE(bad_type.ok());
}

TEST(HostsDirectories, ContainerdNamesThenDefault) {
  TempDir a, b;
  b.write("reg.example_5000_/hosts.toml", "server = \"https://from-underscore\"\n");
  a.write("_default/hosts.toml", "server = \"https://from-default\"\n");
  auto config = load_hosts_config({a.path().string(), b.path().string()}, "reg.example:5000", "reg.example:5000");
  ASSERT_TRUE(config.ok()) << config.error().message();
  EXPECT_EQ(config->endpoints.back().host, "from-underscore");

  auto other = load_hosts_config({a.path().string(), b.path().string()}, "other.example", "other.example");
  ASSERT_TRUE(other.ok());
  EXPECT_EQ(other->endpoints.back().host, "from-default");

  // A Docker-style directory (no hosts.toml) for the namespace stops the
  // search: the registry itself, no _default mirror.
  b.write("docker.example/ca.crt", "x");
  auto docker_style = load_hosts_config({a.path().string(), b.path().string()}, "docker.example", "docker.example");
  ASSERT_TRUE(docker_style.ok());
  ASSERT_EQ(docker_style->endpoints.size(), 1u);
  EXPECT_EQ(docker_style->endpoints[0].host, "docker.example");
  EXPECT_EQ(docker_style->source, "");
}

TEST(CertDirs, DockerFileNames) {
  TempDir root;
  root.write("reg:5000/ca.crt", "CA1\n");
  root.write("reg:5000/extra.crt", "CA2");
  root.write("reg:5000/client.cert", "cert");
  root.write("reg:5000/client.key", "key");
  auto tls = tls_from_cert_dirs({root.path().string()}, "reg:5000");
  ASSERT_TRUE(tls.ok()) << tls.error().message();
  EXPECT_EQ(tls->ca_pem, "CA1\nCA2\n");
  EXPECT_EQ(tls->client_cert_file, (root.path() / "reg:5000" / "client.cert").string());
  EXPECT_EQ(tls->client_key_file, (root.path() / "reg:5000" / "client.key").string());

  root.write("lonely/client.cert", "cert");
  auto lonely = tls_from_cert_dirs({root.path().string()}, "lonely");
  ASSERT_FALSE(lonely.ok());
  EXPECT_NE(lonely.error().message().find("has no key client.key"), std::string::npos);

  auto none = tls_from_cert_dirs({root.path().string()}, "elsewhere");
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->empty());
}

}  // namespace
}  // namespace imgpull
