#include "unpack/decompress.h"

#include <gtest/gtest.h>
#include <malloc.h>

#include <random>

#include "unpack/read_ahead.h"
#include "testing/layers.h"

namespace imgpull::unpack {
namespace {

using testing::gzip;
using testing::gzip_zeros;
using testing::read_all;
using testing::zstd;
using testing::zstd_zeros;

constexpr uint64_t kNoLimit = ~uint64_t{0};

// Text-like bytes that compress, but not to nothing.
std::string sample(size_t n, unsigned seed = 1) {
  std::mt19937 rng(seed);
  std::string out(n, '\0');
  for (auto& c : out) c = static_cast<char>('a' + rng() % 16);
  return out;
}

Result<std::string> decompress(Compression c, const std::string& bytes, uint64_t max = kNoLimit,
                               size_t chunk = 4096) {
  MemorySource source(bytes);
  auto d = make_decompressor(c, source, max);
  return read_all(*d, chunk);
}

// Hands out one byte per read: every refill and state boundary gets exercised.
class TrickleSource : public ByteSource {
 public:
  explicit TrickleSource(std::string_view bytes) : inner_(bytes) {}
  Result<size_t> read(void* buf, size_t n) override { return inner_.read(buf, n ? 1 : 0); }

 private:
  MemorySource inner_;
};

void expect_code(const Result<std::string>& r, ErrorCode code) {
  ASSERT_FALSE(r.ok()) << "decompressed " << r->size() << " bytes";
  EXPECT_EQ(r.error().code(), code) << r.error().message();
}

TEST(DecompressTest, NoneIsPassThrough) {
  std::string data = sample(300000);
  auto out = decompress(Compression::kNone, data);
  ASSERT_TRUE(out.ok()) << out.error().message();
  EXPECT_EQ(*out, data);
}

TEST(DecompressTest, GzipRoundTrips) {
  for (size_t size : {size_t{0}, size_t{1}, size_t{100000}, size_t{3} << 20}) {
    std::string data = sample(size);
    auto out = decompress(Compression::kGzip, gzip(data));
    ASSERT_TRUE(out.ok()) << size << ": " << out.error().message();
    EXPECT_EQ(*out, data) << size;
  }
}

TEST(DecompressTest, GzipMultiMemberAsPigzWrites) {
  std::string a = sample(200000, 1), b = sample(1, 2), c = sample(150000, 3);
  std::string stream = gzip(a) + gzip(b) + gzip("") + gzip(c);
  auto out = decompress(Compression::kGzip, stream);
  ASSERT_TRUE(out.ok()) << out.error().message();
  EXPECT_EQ(*out, a + b + c);

  TrickleSource trickle(stream);
  auto d = make_decompressor(Compression::kGzip, trickle, kNoLimit);
  auto slow = read_all(*d, 7);
  ASSERT_TRUE(slow.ok()) << slow.error().message();
  EXPECT_EQ(*slow, a + b + c);
}

TEST(DecompressTest, GzipTruncatedIsCorrupt) {
  std::string z = gzip(sample(100000));
  for (size_t cut : {size_t{1}, size_t{4}, size_t{8}, z.size() / 2, z.size() - 5}) {
    SCOPED_TRACE(cut);
    expect_code(decompress(Compression::kGzip, z.substr(0, z.size() - cut)), ErrorCode::kCorrupt);
  }
  expect_code(decompress(Compression::kGzip, z.substr(0, 5)), ErrorCode::kCorrupt);
}

TEST(DecompressTest, GzipEmptyInputIsCorrupt) {
  expect_code(decompress(Compression::kGzip, ""), ErrorCode::kCorrupt);
}

TEST(DecompressTest, GzipCorruptBytesAreCorrupt) {
  std::string z = gzip(sample(100000));
  std::string bad_data = z;
  bad_data[z.size() / 2] ^= 0x55;
  expect_code(decompress(Compression::kGzip, bad_data), ErrorCode::kCorrupt);
  std::string bad_crc = z;
  bad_crc[z.size() - 6] ^= 0x01;  // inside the CRC-32 of the trailer
  expect_code(decompress(Compression::kGzip, bad_crc), ErrorCode::kCorrupt);
  std::string bad_magic = z;
  bad_magic[0] = 'x';
  expect_code(decompress(Compression::kGzip, bad_magic), ErrorCode::kCorrupt);
}

TEST(DecompressTest, GzipTrailingGarbageIsCorrupt) {
  std::string z = gzip(sample(1000));
  expect_code(decompress(Compression::kGzip, z + "garbage after the member"), ErrorCode::kCorrupt);
  expect_code(decompress(Compression::kGzip, z + std::string(512, '\0')), ErrorCode::kCorrupt);
  expect_code(decompress(Compression::kGzip, z + "\x1f"), ErrorCode::kCorrupt);
}

TEST(DecompressTest, ZstdRoundTripsMultipleFrames) {
  std::string a = sample(500000, 4), b = sample(10, 5);
  std::string stream = zstd(a) + zstd(b) + zstd("");
  auto out = decompress(Compression::kZstd, stream);
  ASSERT_TRUE(out.ok()) << out.error().message();
  EXPECT_EQ(*out, a + b);

  TrickleSource trickle(stream);
  auto d = make_decompressor(Compression::kZstd, trickle, kNoLimit);
  auto slow = read_all(*d, 3);
  ASSERT_TRUE(slow.ok()) << slow.error().message();
  EXPECT_EQ(*slow, a + b);
}

TEST(DecompressTest, ZstdSkippableFrameIsAccepted) {
  std::string skippable("\x50\x2a\x4d\x18\x04\x00\x00\x00meta", 12);
  auto out = decompress(Compression::kZstd, zstd("abc") + skippable + zstd("def"));
  ASSERT_TRUE(out.ok()) << out.error().message();
  EXPECT_EQ(*out, "abcdef");
}

TEST(DecompressTest, ZstdTruncatedIsCorrupt) {
  std::string z = zstd(sample(100000));
  for (size_t cut : {size_t{1}, size_t{4}, z.size() / 2, z.size() - 3}) {
    SCOPED_TRACE(cut);
    expect_code(decompress(Compression::kZstd, z.substr(0, z.size() - cut)), ErrorCode::kCorrupt);
  }
  expect_code(decompress(Compression::kZstd, ""), ErrorCode::kCorrupt);
}

TEST(DecompressTest, ZstdCorruptBytesAndTrailingGarbageAreCorrupt) {
  std::string z = zstd(sample(100000));
  std::string bad = z;
  bad[z.size() / 2] ^= 0x55;
  expect_code(decompress(Compression::kZstd, bad), ErrorCode::kCorrupt);
  std::string bad_magic = z;
  bad_magic[0] ^= 0x01;
  expect_code(decompress(Compression::kZstd, bad_magic), ErrorCode::kCorrupt);
  expect_code(decompress(Compression::kZstd, z + "trailing"), ErrorCode::kCorrupt);
}

TEST(DecompressTest, ZstdHugeWindowIsRefused) {
  std::string big_window = zstd(sample(1000), kMaxZstdWindowLog + 2);
  expect_code(decompress(Compression::kZstd, big_window), ErrorCode::kTooLarge);
}

TEST(DecompressTest, BombsStopAtTheLimit) {
  constexpr uint64_t kMax = 1 << 20;
  expect_code(decompress(Compression::kGzip, gzip_zeros(kMax + 1), kMax), ErrorCode::kTooLarge);
  expect_code(decompress(Compression::kZstd, zstd_zeros(kMax + 1), kMax), ErrorCode::kTooLarge);
  expect_code(decompress(Compression::kNone, std::string(kMax + 1, '\0'), kMax),
              ErrorCode::kTooLarge);
  // Exactly the limit is fine.
  auto exact = decompress(Compression::kGzip, gzip_zeros(kMax), kMax);
  ASSERT_TRUE(exact.ok()) << exact.error().message();
  EXPECT_EQ(exact->size(), kMax);
}

TEST(DecompressTest, GigabyteBombFailsFastInBoundedMemory) {
  // 1 GiB of zeros in ~1 MiB of gzip, against a 64 MiB limit.
  std::string bomb = gzip_zeros(uint64_t{1} << 30);
  MemorySource source(bomb);
  auto d = make_decompressor(Compression::kGzip, source, 64 << 20);
  std::vector<char> buf(1 << 16);
  Result<size_t> n = size_t{0};
  uint64_t total = 0;
  while ((n = d->read(buf.data(), buf.size())) && *n > 0) total += *n;
  ASSERT_FALSE(n.ok());
  EXPECT_EQ(n.error().code(), ErrorCode::kTooLarge);
  EXPECT_LE(total, uint64_t{64} << 20);
}

size_t heap_in_use() {
  struct mallinfo2 info = mallinfo2();
  return info.uordblks + info.hblkhd;
}

// Decompresses 256 MiB and watches the heap: it must stay within the fixed buffers.
void expect_bounded_memory(Compression c, const std::string& compressed, uint64_t expected) {
  MemorySource source(compressed);
  size_t baseline = heap_in_use();
  size_t peak = baseline;
  auto d = make_decompressor(c, source, kNoLimit);
  std::vector<char> buf(1 << 16);
  uint64_t total = 0;
  for (int i = 0;; ++i) {
    auto n = d->read(buf.data(), buf.size());
    ASSERT_TRUE(n.ok()) << n.error().message();
    if (*n == 0) break;
    total += *n;
    if (i % 256 == 0) peak = std::max(peak, heap_in_use());
  }
  EXPECT_EQ(total, expected);
  EXPECT_LT(peak - baseline, size_t{8} << 20) << "heap grew by " << (peak - baseline);
}

TEST(DecompressTest, MemoryStaysBounded) {
  constexpr uint64_t kSize = uint64_t{256} << 20;
  expect_bounded_memory(Compression::kGzip, gzip_zeros(kSize), kSize);
  expect_bounded_memory(Compression::kZstd, zstd_zeros(kSize), kSize);
}

// The decompressors take a read-ahead source's blocks in place (no copy); blocks of one
// byte, of odd sizes and of a megabyte cross every member, frame and symbol boundary.
Result<std::string> decompress_from_blocks(Compression c, const std::string& bytes,
                                           size_t block_bytes) {
  MemorySource source(bytes);
  ReadAheadSource ahead(source, nullptr, 3, block_bytes);
  auto d = make_decompressor(c, ahead, kNoLimit);
  return read_all(*d, 4096);
}

TEST(DecompressTest, GzipAndZstdDecompressReadAheadBlocksInPlace) {
  std::string a = sample(200000, 1), b = sample(1, 2), c = sample(150000, 3);
  for (size_t block : {size_t{1}, size_t{7}, size_t{4096}, size_t{1} << 20}) {
    auto gz = decompress_from_blocks(Compression::kGzip, gzip(a) + gzip(b) + gzip("") + gzip(c), block);
    ASSERT_TRUE(gz.ok()) << block << ": " << gz.error().message();
    EXPECT_EQ(*gz, a + b + c) << block;
    auto zs = decompress_from_blocks(Compression::kZstd, zstd(a) + zstd(b) + zstd(c), block);
    ASSERT_TRUE(zs.ok()) << block << ": " << zs.error().message();
    EXPECT_EQ(*zs, a + b + c) << block;
  }
}

// Any source that lends blocks is read by its blocks (asked through ByteSource,
// not by the source's type): this one fails every read().
TEST(DecompressTest, DecompressorsTakeTheBlocksASourceLends) {
  std::string data = sample(300000);
  for (auto [c, compressed] : {std::pair{Compression::kGzip, gzip(data)}, std::pair{Compression::kZstd, zstd(data)}}) {
    testing::LendingOnlySource source(compressed, 1000);
    auto d = make_decompressor(c, source, kNoLimit);
    auto out = read_all(*d, 4096);
    ASSERT_TRUE(out.ok()) << out.error().message();
    EXPECT_EQ(*out, data);
    EXPECT_EQ(source.blocks_lent(), (compressed.size() + 999) / 1000);
  }
}

TEST(DecompressTest, BadStreamsFromReadAheadBlocksAreStillCorrupt) {
  std::string data = sample(300000);
  std::string gz = gzip(data), zs = zstd(data);
  for (size_t block : {size_t{1}, size_t{7}, size_t{65536}}) {
    SCOPED_TRACE(block);
    expect_code(decompress_from_blocks(Compression::kGzip, gz.substr(0, gz.size() / 2), block),
                ErrorCode::kCorrupt);
    expect_code(decompress_from_blocks(Compression::kGzip, gz + "garbage!", block), ErrorCode::kCorrupt);
    expect_code(decompress_from_blocks(Compression::kGzip, "", block), ErrorCode::kCorrupt);
    expect_code(decompress_from_blocks(Compression::kZstd, zs.substr(0, zs.size() / 2), block),
                ErrorCode::kCorrupt);
    expect_code(decompress_from_blocks(Compression::kZstd, zs + "garbage!", block), ErrorCode::kCorrupt);
  }
}

}  // namespace
}  // namespace imgpull::unpack
