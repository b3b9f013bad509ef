#include "bundle/rootfs_file.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>

#include "testing/layers.h"

namespace imgpull::bundle {
namespace {

namespace fs = std::filesystem;
using unpack::testing::TempDir;

class RootfsFileTest : public ::testing::Test {
 protected:
  void write(const std::string& path, const std::string& data) {
    fs::create_directories((root_.path() / path).parent_path());
    std::ofstream(root_.path() / path) << data;
  }
  void link(const std::string& path, const std::string& target) {
    fs::create_directories((root_.path() / path).parent_path());
    fs::create_symlink(target, root_.path() / path);
  }
  std::optional<std::string> read_ok(std::string_view path, size_t max = 1 << 20) {
    auto r = read_rootfs_file(root_fd_.get(), path, max);
    EXPECT_TRUE(r.ok()) << path << ": " << r.error().message();
    return r.ok() ? *r : std::nullopt;
  }

  TempDir outside_{"outside"};
  TempDir root_{"rootfs"};
  UniqueFd root_fd_ = root_.open();
};

TEST_F(RootfsFileTest, ReadsAFile) {
  write("etc/passwd", "root:x:0:0::/root:/bin/sh\n");
  EXPECT_EQ(read_ok("/etc/passwd"), "root:x:0:0::/root:/bin/sh\n");
  EXPECT_EQ(read_ok("etc//./passwd"), "root:x:0:0::/root:/bin/sh\n");
}

TEST_F(RootfsFileTest, MissingIsNothing) {
  EXPECT_EQ(read_ok("/etc/passwd"), std::nullopt);
  write("etc/group", "");
  EXPECT_EQ(read_ok("/etc/passwd"), std::nullopt);
  link("etc/dangling", "/nowhere/x");
  EXPECT_EQ(read_ok("/etc/dangling"), std::nullopt);
}

TEST_F(RootfsFileTest, SymlinksResolveInsideTheRoot) {
  std::ofstream(outside_.path() / "passwd") << "host secret\n";
  write("real/passwd", "image's own\n");
  write(outside_.path().relative_path().string() + "/passwd", "the image's copy of that path\n");
  // Absolute, climbing and chained links, each ending inside the rootfs.
  link("etc/passwd", outside_.path().string() + "/passwd");
  EXPECT_EQ(read_ok("/etc/passwd"), "the image's copy of that path\n");
  link("etc/group", "../../../../../../real/passwd");
  EXPECT_EQ(read_ok("/etc/group"), "image's own\n");
  link("a", "b");
  link("b", "etc/group");
  EXPECT_EQ(read_ok("/a"), "image's own\n");
  link("dir", "/real");
  EXPECT_EQ(read_ok("/dir/passwd"), "image's own\n");
}

TEST_F(RootfsFileTest, LoopsAndOddFilesAreRefused) {
  link("loop1", "loop2");
  link("loop2", "loop1");
  auto loop = read_rootfs_file(root_fd_.get(), "/loop1", 1024);
  ASSERT_FALSE(loop.ok());
  EXPECT_EQ(loop.error().code(), ErrorCode::kCorrupt);
  fs::create_directories(root_.path() / "etc/passwd");
  auto dir = read_rootfs_file(root_fd_.get(), "/etc/passwd", 1024);
  ASSERT_FALSE(dir.ok());
  EXPECT_EQ(dir.error().code(), ErrorCode::kCorrupt);
  ASSERT_EQ(mkfifo((root_.path() / "fifo").c_str(), 0644), 0);
  auto fifo = read_rootfs_file(root_fd_.get(), "/fifo", 1024);  // must not block
  ASSERT_FALSE(fifo.ok());
  EXPECT_EQ(fifo.error().code(), ErrorCode::kCorrupt);
}

TEST_F(RootfsFileTest, OverTheLimitIsTooLarge) {
  write("big", std::string(100, 'x'));
  EXPECT_EQ(read_ok("/big", 100)->size(), 100u);
  auto big = read_rootfs_file(root_fd_.get(), "/big", 99);
  ASSERT_FALSE(big.ok());
  EXPECT_EQ(big.error().code(), ErrorCode::kTooLarge);
}

}  // namespace
}  // namespace imgpull::bundle
