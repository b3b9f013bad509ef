#include "bundle/bundle.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <fstream>
#include <sstream>

#include "testing/layers.h"

namespace imgpull::bundle {
namespace {

namespace fs = std::filesystem;
using unpack::testing::TempDir;

class BundleTest : public ::testing::Test {
 protected:
  void SetUp() override {
    image_.platform = Platform{"linux", "amd64", "", ""};
    image_.run.cmd = {"/bin/sh", "-c", "echo hi"};
    image_.run.user = "www-data";
  }
  void write_rootfs_file(const std::string& path, const std::string& data) {
    fs::create_directories((bundle_ / "rootfs" / path).parent_path());
    std::ofstream(bundle_ / "rootfs" / path) << data;
  }
  nlohmann::json written_config() {
    std::ifstream in(bundle_ / "config.json");
    std::stringstream text;
    text << in.rdbuf();
    return nlohmann::json::parse(text.str());
  }

  TempDir parent_{"bundle"};
  fs::path bundle_ = parent_.path() / "my_web.app";
  ImageConfig image_;
  std::vector<std::string> warnings_;
  std::function<void(std::string_view)> warn_ = [this](std::string_view w) { warnings_.emplace_back(w); };
};

TEST_F(BundleTest, PrepareMakesTheDirectoryAndRefusesAFullOne) {
  auto rootfs = prepare_bundle_dir(bundle_, false);
  ASSERT_TRUE(rootfs.ok()) << rootfs.error().message();
  EXPECT_EQ(*rootfs, bundle_ / "rootfs");
  EXPECT_TRUE(fs::is_directory(bundle_));
  std::ofstream(bundle_ / "something") << "x";
  auto full = prepare_bundle_dir(bundle_, false);
  ASSERT_FALSE(full.ok());
  EXPECT_EQ(full.error().code(), ErrorCode::kInvalidArgument);
  EXPECT_TRUE(prepare_bundle_dir(bundle_, true).ok());
}

TEST_F(BundleTest, ConfigFromTheImageAndItsAccounts) {
  if (geteuid() != 0) GTEST_SKIP() << "checks the configuration for root (rootless: runtime_config_test)";
  write_rootfs_file("etc/passwd", "root:x:0:0:root:/root:/bin/sh\nwww-data:x:33:33::/var/www:/bin/sh\n");
  write_rootfs_file("usr/share/group", "www-data:x:33:\nweb:x:8080:www-data\n");
  fs::create_symlink("../usr/share/group", bundle_ / "rootfs/etc/group");  // followed inside the rootfs
  Status done = write_bundle_config(bundle_, image_, BundleOptions{}, warn_);
  ASSERT_TRUE(done.ok()) << done.error().message();
  nlohmann::json c = written_config();
  EXPECT_EQ(c["process"]["user"], (nlohmann::json{{"uid", 33}, {"gid", 33}, {"additionalGids", {8080}}}));
  EXPECT_EQ(c["process"]["args"], (nlohmann::json{"/bin/sh", "-c", "echo hi"}));
  EXPECT_EQ(c["hostname"], "my-web-app") << "named after the directory";
  EXPECT_EQ(c["linux"]["namespaces"].size(), 5u) << "root: no user namespace";
  struct stat st;
  ASSERT_EQ(stat((bundle_ / "config.json").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0644u);
  EXPECT_TRUE(warnings_.empty());
}

TEST_F(BundleTest, CmdOverrideAndImageHostname) {
  write_rootfs_file("etc/passwd", "www-data:x:33:33::/var/www:/bin/sh\n");
  image_.run.hostname = "from-image";
  image_.run.entrypoint = {"/entry"};
  BundleOptions options;
  options.cmd = std::vector<std::string>{"run", "this"};
  ASSERT_TRUE(write_bundle_config(bundle_, image_, options, warn_).ok());
  nlohmann::json c = written_config();
  EXPECT_EQ(c["process"]["args"], (nlohmann::json{"/entry", "run", "this"}));
  EXPECT_EQ(c["hostname"], "from-image");
  // Written again: replaced, no temporary files left.
  ASSERT_TRUE(write_bundle_config(bundle_, image_, BundleOptions{}, warn_).ok());
  EXPECT_EQ(written_config()["process"]["args"], (nlohmann::json{"/entry", "/bin/sh", "-c", "echo hi"}));
  size_t entries = 0;
  for (const auto& e : fs::directory_iterator(bundle_)) entries += e.path().filename() != "rootfs";
  EXPECT_EQ(entries, 1u) << "only config.json beside the rootfs";
}

TEST_F(BundleTest, AUserTheImageLacksFailsNaming) {
  write_rootfs_file("etc/passwd", "root:x:0:0:root:/root:/bin/sh\n");
  Status done = write_bundle_config(bundle_, image_, BundleOptions{}, warn_);
  ASSERT_FALSE(done.ok());
  EXPECT_EQ(done.error().code(), ErrorCode::kNotFound);
  EXPECT_NE(done.error().message().find("no user \"www-data\""), std::string::npos) << done.error().message();
  EXPECT_NE(done.error().message().find("config.json"), std::string::npos) << done.error().message();
  EXPECT_FALSE(fs::exists(bundle_ / "config.json"));
}

TEST_F(BundleTest, NoRootfsIsAnError) {
  fs::create_directories(bundle_);
  EXPECT_FALSE(write_bundle_config(bundle_, image_, BundleOptions{}, warn_).ok());
}

}  // namespace
}  // namespace imgpull::bundle
