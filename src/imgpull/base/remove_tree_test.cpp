#include "base/remove_tree.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>

#include "base/unique_fd.h"
#include "testing/layers.h"

namespace imgpull {
namespace {

namespace fs = std::filesystem;
using unpack::testing::TempDir;

TEST(RemoveAllAt, RemovesATreeWithoutFollowingItsSymlinks) {
  TempDir box("remove");
  fs::create_directories(box.path() / "outside" / "sub");
  std::ofstream(box.path() / "outside" / "sub" / "kept") << "kept\n";
  fs::create_directories(box.path() / "tree" / "a" / "b");
  std::ofstream(box.path() / "tree" / "a" / "b" / "f") << "12345";
  fs::create_directory_symlink(box.path() / "outside", box.path() / "tree" / "abs");
  fs::create_directory_symlink("../../outside", box.path() / "tree" / "a" / "rel");
  fs::create_hard_link(box.path() / "tree" / "a" / "b" / "f", box.path() / "tree" / "hard");
  ASSERT_EQ(::chmod((box.path() / "tree" / "a").c_str(), 0555), 0);

  UniqueFd dir = box.open();
  uint64_t bytes = 0;
  Status removed = remove_all_at(dir.get(), "tree", &bytes);
  ASSERT_TRUE(removed.ok()) << removed.error().message();
  EXPECT_FALSE(fs::exists(box.path() / "tree"));
  EXPECT_TRUE(fs::exists(box.path() / "outside" / "sub" / "kept"));
  EXPECT_EQ(bytes, 5u) << "a file with two links counts once";
}

TEST(RemoveAllAt, AMissingNameIsNotAnError) {
  TempDir box("remove");
  UniqueFd dir = box.open();
  EXPECT_TRUE(remove_all_at(dir.get(), "nothing").ok());
}

}  // namespace
}  // namespace imgpull
