#include "unpack/tar_reader.h"

#include <gtest/gtest.h>
#include <malloc.h>
#include <sys/sysmacros.h>

#include "unpack/hashing_source.h"
#include "testing/layers.h"

namespace imgpull::unpack {
namespace {

using testing::raw_ustar_header;
using testing::TarBuilder;
using Type = TarEntry::Type;

struct ReadEntry {
  TarEntry entry;
  std::string data;
};

Result<std::vector<ReadEntry>> read_tar(ByteSource& source) {
  IMGPULL_ASSIGN_OR_RETURN(auto reader, TarReader::open(source));
  std::vector<ReadEntry> out;
  for (;;) {
    IMGPULL_ASSIGN_OR_RETURN(auto entry, reader->next());
    if (!entry) break;
    ReadEntry read{std::move(*entry), ""};
    for (;;) {
      IMGPULL_ASSIGN_OR_RETURN(auto block, reader->read_block());
      if (!block) break;
      read.data.resize(std::max<size_t>(read.data.size(), block->offset + block->size));
      read.data.replace(block->offset, block->size, static_cast<const char*>(block->data),
                        block->size);
    }
    out.push_back(std::move(read));
  }
  IMGPULL_TRY(reader->drain());
  return out;
}

Result<std::vector<ReadEntry>> read_tar(const std::string& bytes) {
  MemorySource source(bytes);
  return read_tar(source);
}

TEST(UnpackTarReaderTest, ReadsTheBlocksASourceLends) {
  std::string tar = TarBuilder().dir("etc").file("etc/hosts", std::string(5000, 'h')).finish();
  testing::LendingOnlySource source(tar, 700);  // fails every read(): only its blocks work
  auto entries = read_tar(source);
  ASSERT_TRUE(entries.ok()) << entries.error().message();
  ASSERT_EQ(entries->size(), 2u);
  EXPECT_EQ((*entries)[1].entry.path, "etc/hosts");
  EXPECT_EQ((*entries)[1].data, std::string(5000, 'h'));
  EXPECT_EQ(source.blocks_lent(), (tar.size() + 699) / 700);  // drain() took the rest too
}

// "LEN key=value\n", LEN counting itself.
std::string pax_record(const std::string& key, const std::string& value) {
  std::string body = " " + key + "=" + value + "\n";
  size_t len = body.size() + 1;
  while (std::to_string(len).size() + body.size() != len) ++len;
  return std::to_string(len) + body;
}

std::string padded(std::string data) {
  data.resize((data.size() + 511) / 512 * 512, '\0');
  return data;
}

std::string end_of_archive() { return std::string(1024, '\0'); }

TEST(UnpackTarReaderTest, ReadsEveryEntryType) {
  TarBuilder tar;
  tar.dir("etc", 0755)
      .file("etc/passwd", "root:x:0:0\n", 04755, [](archive_entry* e) {
        archive_entry_set_uid(e, 1234);
        archive_entry_set_gid(e, 5678);
        archive_entry_set_mtime(e, 1600000000, 123456789);
        archive_entry_xattr_add_entry(e, "user.note", "hi", 2);
      })
      .symlink("etc/link", "../target")
      .hardlink("etc/hard", "etc/passwd")
      .node("dev/null", AE_IFCHR, 0666, makedev(1, 3))
      .node("dev/sda", AE_IFBLK, 0660, makedev(8, 0))
      .node("run/fifo", AE_IFIFO, 0600);
  auto entries = read_tar(tar.finish());
  ASSERT_TRUE(entries.ok()) << entries.error().message();
  ASSERT_EQ(entries->size(), 7u);
  const auto& e = *entries;
  EXPECT_EQ(e[0].entry.type, Type::kDirectory);
  EXPECT_EQ(e[0].entry.path, "etc/");
  const TarEntry& passwd = e[1].entry;
  EXPECT_EQ(passwd.type, Type::kRegular);
  EXPECT_EQ(e[1].data, "root:x:0:0\n");
  EXPECT_EQ(passwd.mode, 04755u);
  EXPECT_EQ(passwd.uid, 1234u);
  EXPECT_EQ(passwd.gid, 5678u);
  ASSERT_TRUE(passwd.mtime.has_value());
  EXPECT_EQ(passwd.mtime->tv_sec, 1600000000);
  EXPECT_EQ(passwd.mtime->tv_nsec, 123456789);
  ASSERT_EQ(passwd.xattrs.size(), 1u);
  EXPECT_EQ(passwd.xattrs[0], (std::pair<std::string, std::string>{"user.note", "hi"}));
  EXPECT_EQ(e[2].entry.type, Type::kSymlink);
  EXPECT_EQ(e[2].entry.link_target, "../target");
  EXPECT_EQ(e[3].entry.type, Type::kHardlink);
  EXPECT_EQ(e[3].entry.link_target, "etc/passwd");
  EXPECT_EQ(e[4].entry.type, Type::kCharDevice);
  EXPECT_EQ(e[4].entry.rdev, makedev(1, 3));
  EXPECT_EQ(e[5].entry.type, Type::kBlockDevice);
  EXPECT_EQ(e[6].entry.type, Type::kFifo);
}

TEST(UnpackTarReaderTest, PaxLongNamesAndTargets) {
  std::string long_name = std::string(120, 'd') + "/" + std::string(200, 'f');
  std::string long_target = std::string(300, 't');
  TarBuilder tar;
  tar.file(long_name, "x").symlink("s", long_target).file("café/ünï", "u");
  auto entries = read_tar(tar.finish());
  ASSERT_TRUE(entries.ok()) << entries.error().message();
  ASSERT_EQ(entries->size(), 3u);
  EXPECT_EQ((*entries)[0].entry.path, long_name);
  EXPECT_EQ((*entries)[1].entry.link_target, long_target);
  EXPECT_EQ((*entries)[2].entry.path, "café/ünï");
}

TEST(UnpackTarReaderTest, GnuLongNamesAndLinks) {
  std::string long_name = std::string(150, 'n') + "/" + std::string(150, 'm');
  std::string long_target = std::string(250, 'l');
  TarBuilder tar(TarBuilder::Format::kGnu);
  tar.file(long_name, "data").symlink("sym", long_target).hardlink("hard", long_name);
  auto entries = read_tar(tar.finish());
  ASSERT_TRUE(entries.ok()) << entries.error().message();
  ASSERT_EQ(entries->size(), 3u);
  EXPECT_EQ((*entries)[0].entry.path, long_name);
  EXPECT_EQ((*entries)[0].data, "data");
  EXPECT_EQ((*entries)[1].entry.link_target, long_target);
  EXPECT_EQ((*entries)[2].entry.type, Type::kHardlink);
  EXPECT_EQ((*entries)[2].entry.link_target, long_name);
}

TEST(UnpackTarReaderTest, SparseFilesComeAsOffsetBlocks) {
  std::string data(3 << 20, '\0');
  std::fill_n(data.begin() + (1 << 20), 4096, 'x');
  TarBuilder tar;
  tar.file("sparse", data, 0644,
           [](archive_entry* e) { archive_entry_sparse_add_entry(e, 1 << 20, 4096); });
  std::string bytes = tar.finish();
  EXPECT_LT(bytes.size(), size_t{64} << 10) << "the holes were stored";
  auto entries = read_tar(bytes);
  ASSERT_TRUE(entries.ok()) << entries.error().message();
  ASSERT_EQ(entries->size(), 1u);
  EXPECT_EQ((*entries)[0].entry.size, 3 << 20);
  std::string got = (*entries)[0].data;
  got.resize(data.size(), '\0');  // the trailing hole has no block
  EXPECT_EQ(got, data);
}

TEST(UnpackTarReaderTest, DrainHashesEveryByteAfterTheEnd) {
  TarBuilder tar;
  tar.file("a", "hello");
  std::string bytes = tar.finish() + std::string(7000, '\0') + "trailing";
  MemorySource source(bytes);
  HashingSource hashed(source);
  auto entries = read_tar(hashed);
  ASSERT_TRUE(entries.ok()) << entries.error().message();
  EXPECT_EQ(hashed.bytes(), bytes.size());
  EXPECT_EQ(hashed.finish(), Digest::of(bytes));
}

size_t heap_in_use() {
  struct mallinfo2 info = mallinfo2();
  return info.uordblks + info.hblkhd;
}

void expect_refused_without_allocating(const std::string& bytes) {
  size_t before = heap_in_use();
  auto entries = read_tar(bytes);
  size_t grew = heap_in_use() > before ? heap_in_use() - before : 0;
  ASSERT_FALSE(entries.ok());
  EXPECT_EQ(entries.error().code(), ErrorCode::kCorrupt) << entries.error().message();
  EXPECT_LT(grew, size_t{4} << 20);
  // libarchive's own bound on special headers, not a read to the end of the stream.
  EXPECT_NE(entries.error().message().find("too large"), std::string::npos)
      << entries.error().message();
}

TEST(UnpackTarReaderTest, HugePaxHeaderIsRefused) {
  // A PAX header claiming 8 GiB of records, followed by a little data.
  std::string bytes = raw_ustar_header("PaxHeaders/x", 'x', 077777777777ULL) +
                      padded(pax_record("path", "x")) + end_of_archive();
  expect_refused_without_allocating(bytes);
}

TEST(UnpackTarReaderTest, HugeGnuLongNameIsRefused) {
  std::string bytes = raw_ustar_header("././@LongLink", 'L', 077777777777ULL) +
                      padded("name") + end_of_archive();
  expect_refused_without_allocating(bytes);
}

TEST(UnpackTarReaderTest, PaxSizeBeyondTheStreamIsCorrupt) {
  std::string pax = pax_record("size", "999999999999");
  std::string bytes = raw_ustar_header("PaxHeaders/f", 'x', pax.size()) + padded(pax) +
                      raw_ustar_header("f", '0', 5) + padded("hello") + end_of_archive();
  auto entries = read_tar(bytes);
  ASSERT_FALSE(entries.ok());
  EXPECT_EQ(entries.error().code(), ErrorCode::kCorrupt);
}

TEST(UnpackTarReaderTest, NonTarIsCorrupt) {
  for (const std::string& bytes : {std::string("not a tar at all"),
                                   std::string(5000, 'x'), testing::gzip("x")}) {
    auto entries = read_tar(bytes);
    ASSERT_FALSE(entries.ok()) << bytes.size();
    EXPECT_EQ(entries.error().code(), ErrorCode::kCorrupt);
  }
}

TEST(UnpackTarReaderTest, TruncatedDataIsCorrupt) {
  TarBuilder tar;
  tar.file("big", std::string(100000, 'b'));
  std::string bytes = tar.finish().substr(0, 50000);
  auto entries = read_tar(bytes);
  ASSERT_FALSE(entries.ok());
  EXPECT_EQ(entries.error().code(), ErrorCode::kCorrupt);
}

TEST(UnpackTarReaderTest, SourceErrorsKeepTheirCode) {
  class FailingSource : public ByteSource {
   public:
    explicit FailingSource(std::string bytes) : bytes_(std::move(bytes)), inner_(bytes_) {}
    Result<size_t> read(void* buf, size_t n) override {
      IMGPULL_ASSIGN_OR_RETURN(size_t got, inner_.read(buf, std::min<size_t>(n, 512)));
      if (got == 0) return Error(ErrorCode::kTooLarge, "over the limit");
      return got;
    }

   private:
    std::string bytes_;
    MemorySource inner_;
  };
  TarBuilder tar;
  tar.file("a", std::string(3000, 'a'));
  std::string bytes = tar.finish();
  FailingSource source(bytes.substr(0, 2048));
  auto entries = read_tar(source);
  ASSERT_FALSE(entries.ok());
  EXPECT_EQ(entries.error().code(), ErrorCode::kTooLarge) << entries.error().message();
}

TEST(UnpackTarReaderTest, OutOfRangeIdsAreCorrupt) {
  TarBuilder tar;
  tar.file("a", "x", 0644, [](archive_entry* e) { archive_entry_set_uid(e, 4294967295LL); });
  auto entries = read_tar(tar.finish());
  ASSERT_FALSE(entries.ok());
  EXPECT_EQ(entries.error().code(), ErrorCode::kCorrupt);
}

// Go's archive/tar returns io.EOF for a stream of 0 bytes, as for the end-of-archive blocks.
TEST(UnpackTarReaderTest, ZeroBytesAndBareEndBlocksHaveNoEntries) {
  for (const std::string& bytes : {std::string(), end_of_archive(), std::string(512, '\0')}) {
    auto entries = read_tar(bytes);
    ASSERT_TRUE(entries.ok()) << bytes.size() << ": " << entries.error().message();
    EXPECT_TRUE(entries->empty()) << bytes.size();
  }
}

std::string pax_header(const std::string& records) {
  return raw_ustar_header("PaxHeaders/f", 'x', records.size()) + padded(records);
}

TEST(UnpackTarReaderTest, EmptyXattrValuesAreLeftOut) {
  TarBuilder built(TarBuilder::Format::kPaxAlways);
  built.file("built", "x", 0644, [](archive_entry* e) {
    archive_entry_xattr_add_entry(e, "user.empty", "", 0);
    archive_entry_xattr_add_entry(e, "user.full", "v", 1);
  });
  std::string raw = pax_header(pax_record("SCHILY.xattr.user.empty", "") +
                               pax_record("SCHILY.xattr.user.full", "v")) +
                    raw_ustar_header("raw", '0', 1) + padded("x") + end_of_archive();
  for (const std::string& bytes : {built.finish(), raw}) {
    auto entries = read_tar(bytes);
    ASSERT_TRUE(entries.ok()) << entries.error().message();
    ASSERT_EQ(entries->size(), 1u);
    using Xattrs = std::vector<std::pair<std::string, std::string>>;
    EXPECT_EQ((*entries)[0].entry.xattrs, (Xattrs{{"user.full", "v"}})) << (*entries)[0].entry.path;
  }
}

TEST(UnpackTarReaderTest, NegativePaxTimesKeepTheirSign) {
  std::string bytes = pax_header(pax_record("mtime", "-86400.25") + pax_record("atime", "-3")) +
                      raw_ustar_header("f", '0', 0) + end_of_archive();
  auto entries = read_tar(bytes);
  ASSERT_TRUE(entries.ok()) << entries.error().message();
  ASSERT_EQ(entries->size(), 1u);
  const TarEntry& e = (*entries)[0].entry;
  ASSERT_TRUE(e.mtime && e.atime);
  // -86400.25 s is -86401 s + 0.75 s.
  EXPECT_EQ(e.mtime->tv_sec, -86401);
  EXPECT_EQ(e.mtime->tv_nsec, 750'000'000);
  EXPECT_EQ(e.atime->tv_sec, -3);
  EXPECT_EQ(e.atime->tv_nsec, 0);
}

TEST(UnpackTarReaderTest, HardlinkCarryingDataIsCorrupt) {
  // After a PAX header libarchive takes the hardlink's size as data; Go would read the
  // "hidden" entry inside it as the next header.
  std::string inner = raw_ustar_header("hidden", '0', 1) + padded("h");
  std::string bytes = raw_ustar_header("target", '0', 1) + padded("t") +
                      pax_header(pax_record("mtime", "1700000000")) +
                      raw_ustar_header("link", '1', inner.size(), "target") + inner +
                      end_of_archive();
  auto entries = read_tar(bytes);
  ASSERT_FALSE(entries.ok());
  EXPECT_EQ(entries.error().code(), ErrorCode::kCorrupt);
  EXPECT_NE(entries.error().message().find("hardlink entry that carries data"), std::string::npos)
      << entries.error().message();
}

}  // namespace
}  // namespace imgpull::unpack
