#include "base/file_io.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <fstream>

#include "base/unique_fd.h"
#include "testing/layers.h"

namespace imgpull {
namespace {
namespace fs = std::filesystem;

void put(const fs::path& path, const std::string& content) { std::ofstream(path, std::ios::binary) << content; }

TEST(ReadFile, ReadsAWholeFile) {
  unpack::testing::TempDir dir("file-io");
  std::string big(200 * 1024, 'x');  // more than one read
  big += "end";
  put(dir.path() / "f", big);
  auto text = read_file(dir.path() / "f", big.size());
  ASSERT_TRUE(text.ok()) << text.error().message();
  EXPECT_EQ(*text, big);
}

TEST(ReadFile, AMissingFileIsNotFound) {
  unpack::testing::TempDir dir("file-io");
  auto text = read_file(dir.path() / "missing", 10);
  ASSERT_FALSE(text.ok());
  EXPECT_EQ(text.error().code(), ErrorCode::kNotFound);
  EXPECT_EQ(text.error().message(), (dir.path() / "missing").string() + " does not exist");
}

TEST(ReadFile, AFileOverTheLimitIsTooLarge) {
  unpack::testing::TempDir dir("file-io");
  put(dir.path() / "f", "12345");
  EXPECT_TRUE(read_file(dir.path() / "f", 5).ok());
  auto text = read_file(dir.path() / "f", 4);
  ASSERT_FALSE(text.ok());
  EXPECT_EQ(text.error().code(), ErrorCode::kTooLarge);
  EXPECT_EQ(text.error().message(), (dir.path() / "f").string() + " is larger than the limit of 4 bytes");
}

TEST(ReadFile, ADirectoryIsAnIoErrorNamingIt) {
  unpack::testing::TempDir dir("file-io");
  auto text = read_file(dir.path(), 10);
  ASSERT_FALSE(text.ok());
  EXPECT_EQ(text.error().code(), ErrorCode::kIo);
  EXPECT_EQ(text.error().message(), "cannot read " + dir.path().string() + ": Is a directory");
}

TEST(WriteAll, WritesEverythingAndNamesThePathOnFailure) {
  unpack::testing::TempDir dir("file-io");
  fs::path path = dir.path() / "out";
  std::string data(300 * 1024, 'y');
  {
    UniqueFd fd(::open(path.c_str(), O_CREAT | O_WRONLY | O_CLOEXEC, 0644));
    ASSERT_TRUE(fd);
    ASSERT_TRUE(write_all(fd.get(), data.data(), data.size(), path).ok());
  }
  EXPECT_EQ(*read_file(path, data.size()), data);

  UniqueFd read_only(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  Status failed = write_all(read_only.get(), "z", 1, path);
  ASSERT_FALSE(failed.ok());
  EXPECT_EQ(failed.error().code(), ErrorCode::kIo);
  EXPECT_EQ(failed.error().message(), "cannot write " + path.string() + ": Bad file descriptor");
}

}  // namespace
}  // namespace imgpull
