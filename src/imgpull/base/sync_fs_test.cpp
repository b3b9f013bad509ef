#include "base/sync_fs.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>

namespace imgpull {
namespace {

TEST(SyncFilesystems, SyncsDirectoriesAndRepeatsNothing) {
  auto dir = std::filesystem::temp_directory_path() / ("imgpull-sync-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir / "sub");
  Status synced = sync_filesystems({dir, dir / "sub", dir});
  EXPECT_TRUE(synced.ok()) << synced.error().message();
  std::filesystem::remove_all(dir);
}

TEST(SyncFilesystems, AMissingDirectoryIsAnErrorNamingIt) {
  Status synced = sync_filesystems({"/nonexistent/imgpull-sync-test"});
  ASSERT_FALSE(synced.ok());
  EXPECT_EQ(synced.error().code(), ErrorCode::kIo);
  EXPECT_NE(synced.error().message().find("/nonexistent/imgpull-sync-test"), std::string::npos)
      << synced.error().message();
}

}  // namespace
}  // namespace imgpull
