#include "base/atomic_file.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>

#include "base/file_io.h"
#include "testing/layers.h"

namespace imgpull {
namespace {
namespace fs = std::filesystem;

using unpack::testing::TempDir;

size_t files_in(const fs::path& dir) {
  return static_cast<size_t>(std::distance(fs::directory_iterator(dir), fs::directory_iterator()));
}

TEST(AtomicFile, ReplacesTheFileOnlyAtCommit) {
  TempDir dir("atomic");
  fs::path path = dir.path() / "index.json";
  std::ofstream(path) << "old";
  auto file = AtomicFile::create(path);
  ASSERT_TRUE(file.ok()) << file.error().message();
  ASSERT_TRUE(file->write("new content").ok());
  EXPECT_EQ(*read_file(path, 100), "old");  // readers still see the old file
  EXPECT_EQ(file->temporary_path().parent_path(), dir.path());
  EXPECT_TRUE(file->temporary_path().filename().string().starts_with("index.json.tmp-"));
  ASSERT_TRUE(file->commit().ok());
  EXPECT_EQ(*read_file(path, 100), "new content");
  EXPECT_EQ(files_in(dir.path()), 1u);  // no temporary file left
}

TEST(AtomicFile, WithoutCommitTheTemporaryFileGoesAndTheOldStays) {
  TempDir dir("atomic");
  fs::path path = dir.path() / "config.json";
  std::ofstream(path) << "old";
  {
    auto file = AtomicFile::create(path, {.mode = 0600, .sync = true});
    ASSERT_TRUE(file.ok());
    ASSERT_TRUE(file->write("half").ok());
    EXPECT_EQ(files_in(dir.path()), 2u);
  }
  EXPECT_EQ(*read_file(path, 100), "old");
  EXPECT_EQ(files_in(dir.path()), 1u);
}

TEST(AtomicFile, TwoWritersOfOnePathNeverShareATemporaryFile) {
  TempDir dir("atomic");
  fs::path path = dir.path() / "index.json";
  auto a = AtomicFile::create(path);
  auto b = AtomicFile::create(path);
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_NE(a->temporary_path(), b->temporary_path());
  ASSERT_TRUE(a->write("a").ok());
  ASSERT_TRUE(b->write("b").ok());
  ASSERT_TRUE(a->commit().ok());
  ASSERT_TRUE(b->commit().ok());
  EXPECT_EQ(*read_file(path, 100), "b");
}

TEST(AtomicFile, CreatesWithTheModeGiven) {
  TempDir dir("atomic");
  fs::path path = dir.path() / "config.json";
  ASSERT_TRUE(replace_file(path, "{}", {.mode = 0600, .sync = true}).ok());
  struct stat st {};
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  EXPECT_EQ(*read_file(path, 100), "{}");
}

TEST(AtomicFile, AMissingDirectoryIsAnErrorNamingTheTemporaryFile) {
  TempDir dir("atomic");
  fs::path path = dir.path() / "no-such-dir" / "index.json";
  Status replaced = replace_file(path, "{}");
  ASSERT_FALSE(replaced.ok());
  EXPECT_EQ(replaced.error().code(), ErrorCode::kIo);
  EXPECT_TRUE(replaced.error().message().starts_with("cannot create " + path.string() + ".tmp-"))
      << replaced.error().message();
  EXPECT_TRUE(replaced.error().message().ends_with(": No such file or directory")) << replaced.error().message();
}

TEST(AtomicFile, AFailedRenameKeepsTheOldAndRemovesTheTemporaryFile) {
  TempDir dir("atomic");
  fs::path path = dir.path() / "target";
  fs::create_directories(path / "not-empty");  // rename(2) cannot put a file over a directory
  Status replaced = replace_file(path, "x");
  ASSERT_FALSE(replaced.ok());
  EXPECT_EQ(replaced.error().message(), "cannot rename into " + path.string() + ": Is a directory");
  EXPECT_EQ(files_in(dir.path()), 1u);
}

}  // namespace
}  // namespace imgpull
