#include "unpack/read_ahead.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <condition_variable>
#include <mutex>
#include <string>

namespace imgpull::unpack {
namespace {

std::string pattern(size_t n) {
  std::string s(n, '\0');
  for (size_t i = 0; i < n; ++i) s[i] = static_cast<char>('a' + (i * 7 + i / 251) % 26);
  return s;
}

// Gives its bytes in small, uneven reads, as a decompressor does.
class DribbleSource : public ByteSource {
 public:
  explicit DribbleSource(std::string bytes) : bytes_(std::move(bytes)) {}
  Result<size_t> read(void* buf, size_t n) override {
    size_t take = std::min({n, bytes_.size() - pos_, size_t{1} + (pos_ % 977)});
    std::memcpy(buf, bytes_.data() + pos_, take);
    pos_ += take;
    return take;
  }

 private:
  std::string bytes_;
  size_t pos_ = 0;
};

TEST(ReadAheadSource, BlocksCarryTheWholeStreamInOrder) {
  std::string want = pattern(1'000'003);
  DribbleSource inner(want);
  ReadAheadSource ahead(inner, nullptr, 3, 64 * 1024);
  std::string got;
  for (;;) {
    auto block = ahead.next_block();
    ASSERT_TRUE(block.ok()) << block.error().message();
    if (block->empty()) break;
    EXPECT_LE(block->size(), 64u * 1024);
    got.append(block->data(), block->size());
  }
  EXPECT_EQ(got, want);
  auto again = ahead.next_block();  // stays at the end
  ASSERT_TRUE(again.ok());
  EXPECT_TRUE(again->empty());
}

TEST(ReadAheadSource, TheHasherSeesEveryByteOnceInOrder) {
  std::string want = pattern(2'500'001);
  for (size_t buffers : {2, 3, 8}) {
    DribbleSource inner(want);
    Hasher hasher;
    ReadAheadSource ahead(inner, &hasher, buffers, 32 * 1024);
    std::string got;
    for (;;) {
      auto block = ahead.next_block();
      ASSERT_TRUE(block.ok());
      if (block->empty()) break;
      got.append(block->data(), block->size());
    }
    ahead.join();
    EXPECT_EQ(got, want);
    EXPECT_EQ(hasher.bytes_hashed(), want.size());
    EXPECT_EQ(hasher.finish(), Digest::of(want));
  }
}

TEST(ReadAheadSource, ReadCopiesTheSameBytes) {
  std::string want = pattern(300'001);
  MemorySource inner(want);
  ReadAheadSource ahead(inner, nullptr, 2, 4096);
  std::string got;
  char buf[1000];
  for (;;) {
    auto n = ahead.read(buf, sizeof buf);
    ASSERT_TRUE(n.ok());
    if (*n == 0) break;
    got.append(buf, *n);
  }
  EXPECT_EQ(got, want);
}

TEST(ReadAheadSource, EmptyStream) {
  MemorySource inner("");
  ReadAheadSource ahead(inner);
  auto block = ahead.next_block();
  ASSERT_TRUE(block.ok());
  EXPECT_TRUE(block->empty());
}

class FailingSource : public ByteSource {
 public:
  Result<size_t> read(void* buf, size_t n) override {
    if (sent_ >= 10'000) return Error(ErrorCode::kCorrupt, "broken stream");
    size_t take = std::min<size_t>(n, 10'000 - sent_);
    std::memset(buf, 'x', take);
    sent_ += take;
    return take;
  }

 private:
  size_t sent_ = 0;
};

TEST(ReadAheadSource, TheInnerErrorComesOutAfterTheBytesBeforeIt) {
  FailingSource inner;
  ReadAheadSource ahead(inner, nullptr, 2, 4096);
  size_t total = 0;
  for (;;) {
    auto block = ahead.next_block();
    if (!block.ok()) {
      EXPECT_EQ(block.error().code(), ErrorCode::kCorrupt);
      EXPECT_NE(block.error().message().find("broken stream"), std::string::npos);
      break;
    }
    ASSERT_FALSE(block->empty()) << "end of stream instead of the error";
    total += block->size();
  }
  EXPECT_EQ(total, 10000u);  // every byte before the error, the partly filled buffer too
}

// Blocks until cancelled, as a download that does not progress.
class BlockingSource : public ByteSource {
 public:
  Result<size_t> read(void*, size_t) override {
    std::unique_lock lock(mutex_);
    reading_ = true;
    changed_.notify_all();
    changed_.wait(lock, [&] { return cancelled_; });
    return Error(ErrorCode::kUnavailable, "cancelled");
  }
  void cancel() override {
    std::lock_guard lock(mutex_);
    cancelled_ = true;
    changed_.notify_all();
  }
  void wait_reading() {
    std::unique_lock lock(mutex_);
    changed_.wait(lock, [&] { return reading_; });
  }

 private:
  std::mutex mutex_;
  std::condition_variable changed_;
  bool reading_ = false;
  bool cancelled_ = false;
};

TEST(ReadAheadSource, DestroyingItCancelsABlockedRead) {
  BlockingSource inner;
  Hasher hasher;
  {
    ReadAheadSource ahead(inner, &hasher);
    inner.wait_reading();
  }  // must not hang
  SUCCEED();
}

TEST(ReadAheadSource, StopsWhenTheReaderStopsEarly) {
  std::string big = pattern(10'000'000);
  MemorySource inner(big);
  {
    Hasher hasher;
    ReadAheadSource ahead(inner, &hasher, 2, 4096);
    auto block = ahead.next_block();
    ASSERT_TRUE(block.ok());
  }  // the thread is waiting for a free buffer: destroying wakes and joins it
  SUCCEED();
}

}  // namespace
}  // namespace imgpull::unpack
