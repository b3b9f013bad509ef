#include "pull/write_behind.h"

#include <gtest/gtest.h>

#include <atomic>
#include <mutex>
#include <string>
#include <thread>

namespace imgpull {
namespace {

std::string pattern(size_t n) {
  std::string s(n, '\0');
  for (size_t i = 0; i < n; ++i) s[i] = static_cast<char>('a' + (i * 7 + i / 251) % 26);
  return s;
}

// What a consumer saw, and in which threads.
struct Recorder {
  std::mutex mutex;
  std::string bytes;
  std::vector<std::thread::id> threads;
  Status consume(std::span<const char> piece) {
    std::lock_guard lock(mutex);
    bytes.append(piece.data(), piece.size());
    threads.push_back(std::this_thread::get_id());
    return {};
  }
};

// Appends `all` in uneven pieces, as libcurl hands a body over.
Status append_unevenly(WriteBehind& behind, const std::string& all) {
  size_t pos = 0;
  for (size_t i = 0; pos < all.size(); ++i) {
    size_t take = std::min(all.size() - pos, 1 + (i * 7919) % 40'000);
    IMGPULL_TRY(behind.append(std::span<const char>(all.data() + pos, take)));
    pos += take;
  }
  return {};
}

TEST(WriteBehind, ConsumesTheWholeStreamInOrderInAnotherThread) {
  Recorder seen;
  std::string want = pattern(3'000'017);
  WriteBehind behind([&](std::span<const char> b) { return seen.consume(b); }, 3, 64 * 1024);
  ASSERT_TRUE(append_unevenly(behind, want).ok());
  EXPECT_EQ(behind.appended(), want.size());
  ASSERT_TRUE(behind.drain().ok());
  EXPECT_EQ(seen.bytes, want);
  // Full buffers went to the thread; the tail was consumed by drain, here.
  ASSERT_GE(seen.threads.size(), 2u);
  EXPECT_NE(seen.threads.front(), std::this_thread::get_id());
  EXPECT_EQ(seen.threads.back(), std::this_thread::get_id());
}

TEST(WriteBehind, AStreamShorterThanABufferIsConsumedByDrainInTheCallersThread) {
  Recorder seen;
  WriteBehind behind([&](std::span<const char> b) { return seen.consume(b); }, 3, 64 * 1024);
  std::string want = pattern(1000);
  ASSERT_TRUE(behind.append(want).ok());
  EXPECT_TRUE(seen.bytes.empty());  // held, not consumed yet
  ASSERT_TRUE(behind.drain().ok());
  EXPECT_EQ(seen.bytes, want);
  ASSERT_EQ(seen.threads.size(), 1u);
  EXPECT_EQ(seen.threads[0], std::this_thread::get_id());
}

TEST(WriteBehind, HoldsAtMostItsBuffersAheadOfASlowConsumer) {
  std::atomic<bool> release{false};
  std::atomic<size_t> consumed{0};
  WriteBehind behind(
      [&](std::span<const char> b) {
        while (!release.load()) std::this_thread::yield();
        consumed += b.size();
        return Status();
      },
      2, 1000);
  std::atomic<int> accepted{0};  // whole buffers' worth the producer got rid of
  std::thread producer([&] {
    for (int i = 0; i < 100; ++i) {
      (void)behind.append(std::string(1000, 'x'));
      ++accepted;
    }
  });
  // The consumer is stuck on its first buffer: two buffers in use (that one and
  // one queued), the third one fills and then the producer has to wait.
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  EXPECT_EQ(consumed.load(), 0u);
  EXPECT_EQ(accepted.load(), 2);
  release = true;
  producer.join();
  ASSERT_TRUE(behind.drain().ok());
  EXPECT_EQ(consumed.load(), 100'000u);
}

TEST(WriteBehind, TheFirstConsumeErrorComesBackAndNothingIsConsumedAfterIt) {
  Recorder seen;
  int calls = 0;
  WriteBehind behind(
      [&](std::span<const char> b) -> Status {
        if (++calls == 3) return Error(ErrorCode::kIo, "no space left on device");
        return seen.consume(b);
      },
      2, 1000);
  Status appended = append_unevenly(behind, pattern(50'000));
  Status drained = behind.drain();
  ASSERT_FALSE(drained.ok());
  EXPECT_NE(drained.error().message().find("no space left"), std::string::npos);
  // The error came back from an append or, at the latest, from drain.
  if (!appended.ok()) {
    EXPECT_EQ(appended.error().message(), drained.error().message());
  }
  EXPECT_EQ(seen.bytes, pattern(2000));  // the two buffers before the failing one
  EXPECT_EQ(calls, 3);
}

TEST(WriteBehind, DiscardForgetsWhatIsNotConsumedAndStartsOver) {
  Recorder seen;
  WriteBehind behind([&](std::span<const char> b) { return seen.consume(b); }, 3, 1000);
  ASSERT_TRUE(behind.append(pattern(500)).ok());
  behind.discard();
  EXPECT_EQ(behind.appended(), 0u);
  std::string want = pattern(7'777);
  ASSERT_TRUE(append_unevenly(behind, want).ok());
  ASSERT_TRUE(behind.drain().ok());
  EXPECT_EQ(seen.bytes, want);
}

TEST(WriteBehind, DestroyingItConsumesWhatItHolds) {
  Recorder seen;
  std::string want = pattern(123'456);
  {
    WriteBehind behind([&](std::span<const char> b) { return seen.consume(b); }, 2, 10'000);
    ASSERT_TRUE(append_unevenly(behind, want).ok());
  }
  EXPECT_EQ(seen.bytes, want);
}

}  // namespace
}  // namespace imgpull
