#include "base/process.h"

#include <gtest/gtest.h>
#include <sys/wait.h>

namespace imgpull {
namespace {

using namespace std::chrono_literals;

constexpr size_t kPlenty = 1024 * 1024;

TEST(RunProcess, GivesInputAndCollectsBothOutputs) {
  auto run = run_process("sh", {"-c", "cat; echo oops >&2; exit 3"}, "hello\n", 10s, kPlenty);
  ASSERT_TRUE(run.ok()) << run.error().message();
  ASSERT_TRUE(WIFEXITED(run->status));
  EXPECT_EQ(WEXITSTATUS(run->status), 3);
  EXPECT_EQ(run->out, "hello\n");
  EXPECT_EQ(run->err, "oops\n");
}

TEST(RunProcess, AProgramNotOnPathIsUnavailable) {
  auto run = run_process("imgpull-no-such-program", {}, "", 10s, kPlenty);
  ASSERT_FALSE(run.ok());
  EXPECT_EQ(run.error().code(), ErrorCode::kUnavailable);
  EXPECT_EQ(run.error().message(), "imgpull-no-such-program: not found on PATH");
}

TEST(RunProcess, AHangingProgramIsKilledAtTheTimeout) {
  auto run = run_process("sleep", {"30"}, "", 200ms, kPlenty);
  ASSERT_FALSE(run.ok());
  EXPECT_EQ(run.error().code(), ErrorCode::kUnavailable);
  EXPECT_EQ(run.error().message(), "sleep: did not finish within 200 ms (killed)");
}

TEST(RunProcess, AFloodingProgramIsKilledAtTheLimit) {
  auto run = run_process("yes", {}, "", 10s, 64 * 1024);
  ASSERT_FALSE(run.ok());
  EXPECT_EQ(run.error().message(), "yes: wrote more than 65536 bytes (killed)");
}

TEST(RunProcess, InputOverAPipeBufferIsRefused) {
  auto run = run_process("cat", {}, std::string(1 << 20, 'x'), 10s, kPlenty);
  ASSERT_FALSE(run.ok());
  EXPECT_EQ(run.error().message(), "cat: input too long for a pipe");
}

}  // namespace
}  // namespace imgpull
