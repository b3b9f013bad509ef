#include "store/file_lock.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/file.h>

#include <cerrno>

#include <optional>

#include "testing/layers.h"

namespace imgpull {
namespace {

using unpack::testing::TempDir;

TEST(FileLock, SharedLocksCoexistAndExclusiveWaitsForThemToGo) {
  TempDir dir("lock");
  auto path = dir.path() / ".in-use.lock";
  auto a = FileLock::acquire(path, FileLock::Mode::kShared);
  ASSERT_TRUE(a.ok()) << a.error().message();
  std::optional<FileLock> b;
  {
    auto second = FileLock::acquire(path, FileLock::Mode::kShared);  // does not wait for a
    ASSERT_TRUE(second.ok());
    b.emplace(std::move(second).value());
  }
  int waits = 0;
  // b's shared lock keeps a from turning exclusive: it says so, and gets it once b is gone.
  Status changed = a->change_mode(FileLock::Mode::kExclusive, [&] {
    ++waits;
    b.reset();
  });
  ASSERT_TRUE(changed.ok()) << changed.error().message();
  EXPECT_EQ(waits, 1);
  // Back to shared: nothing to wait for.
  ASSERT_TRUE(a->change_mode(FileLock::Mode::kShared, [&] { ++waits; }).ok());
  EXPECT_EQ(waits, 1);
}

TEST(FileLock, TheDescriptorOfOpenLockedHoldsTheLock) {
  TempDir dir("lock");
  auto path = dir.path() / "x.partial";
  auto held = open_locked(path);
  ASSERT_TRUE(held.ok()) << held.error().message();
  UniqueFd other(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  ASSERT_TRUE(other);
  EXPECT_NE(::flock(other.get(), LOCK_SH | LOCK_NB), 0);
  EXPECT_EQ(errno, EWOULDBLOCK);
  held->reset();  // closing the descriptor is what releases it
  EXPECT_EQ(::flock(other.get(), LOCK_SH | LOCK_NB), 0);
}

TEST(FileLock, AMissingDirectoryIsAnErrorNamingThePath) {
  TempDir dir("lock");
  auto path = dir.path() / "missing" / ".lock";
  auto lock = FileLock::acquire(path);
  ASSERT_FALSE(lock.ok());
  EXPECT_EQ(lock.error().code(), ErrorCode::kIo);
  EXPECT_EQ(lock.error().message(), "cannot open " + path.string() + ": No such file or directory");
}

}  // namespace
}  // namespace imgpull
