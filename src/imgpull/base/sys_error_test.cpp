#include "base/sys_error.h"

#include <gtest/gtest.h>

#include <cerrno>

namespace imgpull {
namespace {

TEST(SysError, SaysWhatWasDoneAndWhy) {
  Error e = sys_error("creating directory etc", EACCES);
  EXPECT_EQ(e.code(), ErrorCode::kIo);
  EXPECT_EQ(e.message(), "creating directory etc: Permission denied");
}

TEST(SysError, NamesThePath) {
  Error e = sys_error("cannot create", std::filesystem::path("/a/b"), ENOSPC);
  EXPECT_EQ(e.code(), ErrorCode::kIo);
  EXPECT_EQ(e.message(), "cannot create /a/b: No space left on device");
}

TEST(SysError, TakesErrnoAndACode) {
  errno = ENOENT;
  Error e = sys_error("opening x", errno, ErrorCode::kNotFound);
  EXPECT_EQ(e.code(), ErrorCode::kNotFound);
  EXPECT_EQ(e.message(), "opening x: No such file or directory");
  errno = EPIPE;
  EXPECT_EQ(sys_error("writing").message(), "writing: Broken pipe");
}

}  // namespace
}  // namespace imgpull
