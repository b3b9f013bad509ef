#include "unpack/path_resolver.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include "testing/layers.h"

namespace imgpull::unpack {
namespace {

using testing::TempDir;
namespace fs = std::filesystem;
using P = std::vector<std::string>;

// Both implementations must give the same answers.
class ResolverTest : public ::testing::TestWithParam<ResolveMode> {
 protected:
  void SetUp() override {
    root_ = base_.path() / "root";
    outside_ = base_.path() / "outside";
    fs::create_directories(root_ / "usr/lib");
    fs::create_directories(root_ / "etc");
    fs::create_directories(outside_);
    testing::write_file(root_ / "file", "x");
    fs::create_directory_symlink("usr/lib", root_ / "lib");
    fs::create_directory_symlink("/usr", root_ / "abs");
    fs::create_directory_symlink("../../../..", root_ / "up");
    fs::create_directory_symlink(outside_, root_ / "outside_abs");
    fs::create_directory_symlink("../outside", root_ / "outside_rel");
    fs::create_directory_symlink("hop2/../..", root_ / "hop1");
    fs::create_directory_symlink("/etc/../..", root_ / "hop2");
    fs::create_directory_symlink("loop", root_ / "loop");
    fs::create_directory_symlink("/made/by/link", root_ / "dangling");
    root_fd_ = UniqueFd(::open(root_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    before_ = testing::snapshot_tree(outside_);
  }
  void TearDown() override { EXPECT_EQ(testing::snapshot_tree(outside_), before_); }

  PathResolver resolver() { return PathResolver(root_fd_.get(), GetParam()); }

  // The inode `fd` is open on equals the one at `expected`.
  void expect_at(const Result<UniqueFd>& fd, const fs::path& expected) {
    ASSERT_TRUE(fd.ok()) << fd.error().message();
    struct stat got, want;
    ASSERT_EQ(fstat(fd->get(), &got), 0);
    ASSERT_EQ(::lstat(expected.c_str(), &want), 0) << expected;
    EXPECT_EQ(got.st_ino, want.st_ino) << expected;
  }
  void expect_error(const Result<UniqueFd>& fd, ErrorCode code) {
    ASSERT_FALSE(fd.ok());
    EXPECT_EQ(fd.error().code(), code) << fd.error().message();
  }

  TempDir base_{"resolver"};
  fs::path root_, outside_;
  UniqueFd root_fd_;
  std::map<std::string, std::string> before_;
};

TEST_P(ResolverTest, OpensPlainDirectories) {
  auto r = resolver();
  expect_at(r.open_dir(P{}), root_);
  expect_at(r.open_dir(P{"usr", "lib"}), root_ / "usr/lib");
}

TEST_P(ResolverTest, FollowsSymlinksInsideTheRoot) {
  auto r = resolver();
  expect_at(r.open_dir(P{"lib"}), root_ / "usr/lib");
  expect_at(r.open_dir(P{"abs", "lib"}), root_ / "usr/lib");
}

TEST_P(ResolverTest, DotDotAndAbsoluteSymlinksStopAtTheRoot) {
  auto r = resolver();
  expect_at(r.open_dir(P{"up"}), root_);
  expect_at(r.open_dir(P{"up", "etc"}), root_ / "etc");
  expect_at(r.open_dir(P{"hop1"}), root_);
  expect_at(r.open_dir(P{"hop1", "usr"}), root_ / "usr");
  expect_error(r.open_dir(P{"outside_abs"}), ErrorCode::kNotFound);
  expect_error(r.open_dir(P{"outside_rel"}), ErrorCode::kNotFound);
}

TEST_P(ResolverTest, ReportsMissingNonDirectoriesAndLoops) {
  auto r = resolver();
  expect_error(r.open_dir(P{"nope"}), ErrorCode::kNotFound);
  expect_error(r.open_dir(P{"file"}), ErrorCode::kNotFound);
  expect_error(r.open_dir(P{"dangling"}), ErrorCode::kNotFound);
  expect_error(r.open_dir(P{"loop"}), ErrorCode::kCorrupt);
}

TEST_P(ResolverTest, CreatesMissingDirectoriesInsideTheRoot) {
  mode_t old = umask(077);
  auto r = resolver();
  expect_at(r.create_dirs(P{"a", "b"}), root_ / "a/b");
  expect_at(r.create_dirs(P{"up", "c"}), root_ / "c");
  expect_at(r.create_dirs(P{"dangling", "x"}), root_ / "made/by/link/x");
  expect_at(r.create_dirs(P{"outside_abs", "sub"}), root_ / outside_.relative_path() / "sub");
  expect_at(r.create_dirs(P{"outside_rel", "sub"}), root_ / "outside/sub");
  umask(old);
  EXPECT_EQ(testing::lstat_of(root_ / "a").st_mode & 07777, 0755u) << "umask leaked in";
  EXPECT_EQ(testing::lstat_of(root_ / "a/b").st_mode & 07777, 0755u);
  expect_error(r.create_dirs(P{"file", "x"}), ErrorCode::kNotFound);
  expect_error(r.create_dirs(P{"loop", "x"}), ErrorCode::kCorrupt);
}

INSTANTIATE_TEST_SUITE_P(Unpack, ResolverTest,
                         ::testing::Values(ResolveMode::kOpenat2, ResolveMode::kWalk),
                         [](const auto& info) {
                           return info.param == ResolveMode::kOpenat2 ? "Openat2" : "Walk";
                         });

}  // namespace
}  // namespace imgpull::unpack
