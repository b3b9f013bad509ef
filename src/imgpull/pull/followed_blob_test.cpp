#include "pull/followed_blob.h"

#include <fcntl.h>
#include <gtest/gtest.h>

#include <thread>

#include "testing/layers.h"

namespace imgpull {
namespace {

using unpack::testing::TempDir;
using unpack::testing::write_file;

class FollowedBlobTest : public ::testing::Test {
 protected:
  // The "ingest file": the test writes it as a download would.
  int open_file() { return ::open(path_.c_str(), O_RDONLY | O_CLOEXEC); }
  void append(const std::string& bytes) {
    content_ += bytes;
    write_file(path_, content_);
  }

  TempDir dir_{"followed"};
  std::filesystem::path path_ = dir_.path() / "blob.partial";
  std::string content_;
};

std::string read_some(FollowedBlob::Reader& reader, size_t n) {
  std::string buf(n, '\0');
  auto got = reader.read(buf.data(), n);
  EXPECT_TRUE(got.ok()) << got.error().message();
  buf.resize(got.ok() ? *got : 0);
  return buf;
}

TEST_F(FollowedBlobTest, AReaderGetsBytesAsTheyAreWrittenAndZeroAtTheEnd) {
  FollowedBlob blob;
  append("hello ");
  blob.opened(open_file());
  blob.grew(6);
  FollowedBlob::Reader reader(blob);
  EXPECT_EQ(read_some(reader, 100), "hello ");

  std::thread writer([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    append("world");
    blob.grew(11);
    blob.finished(path_);
  });
  EXPECT_EQ(read_some(reader, 100), "world") << "waits for the next bytes";
  EXPECT_EQ(read_some(reader, 100), "") << "the end";
  writer.join();
}

TEST_F(FollowedBlobTest, AReaderThatStartsAfterTheDownloadReadsTheCommittedBlob) {
  FollowedBlob blob;
  append("all of it");
  blob.opened(open_file());
  blob.grew(9);
  auto committed = dir_.path() / "blob";
  std::filesystem::rename(path_, committed);
  blob.finished(committed);  // the ingest descriptor is dropped here
  FollowedBlob::Reader reader(blob);
  EXPECT_EQ(read_some(reader, 4), "all ");
  EXPECT_EQ(read_some(reader, 100), "of it");
  EXPECT_EQ(read_some(reader, 100), "");
}

TEST_F(FollowedBlobTest, RewindIsRefusedOnceAReaderGotAByte) {
  FollowedBlob blob;
  append("abc");
  blob.opened(open_file());
  blob.grew(3);
  EXPECT_TRUE(blob.rewind()) << "nobody read anything yet";
  blob.opened(open_file());
  blob.grew(3);
  FollowedBlob::Reader reader(blob);
  EXPECT_EQ(read_some(reader, 1), "a");
  EXPECT_FALSE(blob.rewind());
}

TEST_F(FollowedBlobTest, AFailureReachesAWaitingReader) {
  FollowedBlob blob;
  append("");
  blob.opened(open_file());
  FollowedBlob::Reader reader(blob);
  std::thread failer([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    blob.failed(Error(ErrorCode::kUnavailable, "connection reset"));
  });
  char c;
  auto got = reader.read(&c, 1);
  failer.join();
  ASSERT_FALSE(got.ok());
  EXPECT_EQ(got.error().message(), "connection reset");
}

TEST_F(FollowedBlobTest, CancelWakesAWaitingReader) {
  FollowedBlob blob;
  FollowedBlob::Reader reader(blob);
  std::thread canceller([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    reader.cancel();
  });
  char c;
  auto got = reader.read(&c, 1);
  canceller.join();
  ASSERT_FALSE(got.ok());
  EXPECT_NE(got.error().message().find("applier stopped"), std::string::npos);
}

}  // namespace
}  // namespace imgpull
