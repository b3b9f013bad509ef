#include "imgpull/store.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <linux/close_range.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

namespace imgpull {
namespace {
namespace fs = std::filesystem;

class StoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/imgpull-store-test-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    root_ = tmpl;
  }
  void TearDown() override { fs::remove_all(root_); }

  size_t ingest_files() const {
    return static_cast<size_t>(std::distance(fs::directory_iterator(root_ / "ingest"), fs::directory_iterator()));
  }

  fs::path root_;
};

TEST_F(StoreTest, CreatesAnOciLayout) {
  auto store = Store::open(root_);
  ASSERT_TRUE(store.ok()) << store.error().message();
  EXPECT_TRUE(fs::exists(root_ / "oci-layout"));
  EXPECT_TRUE(fs::exists(root_ / "index.json"));
  EXPECT_TRUE(fs::is_directory(root_ / "blobs/sha256"));
  auto images = store->list_images();
  ASSERT_TRUE(images.ok());
  EXPECT_TRUE(images->empty());
}

TEST_F(StoreTest, CommitsOnlyVerifiedBlobs) {
  auto store = Store::open(root_);
  ASSERT_TRUE(store.ok());
  Digest d = Digest::of("hello world");

  auto writer = store->begin_ingest(d, 11);
  ASSERT_TRUE(writer.ok());
  ASSERT_TRUE(*writer);
  ASSERT_TRUE((*writer)->write("hello ", 6).ok());
  EXPECT_FALSE(store->has_blob(d)) << "visible before commit";
  ASSERT_TRUE((*writer)->write("world", 5).ok());
  ASSERT_TRUE((*writer)->commit().ok());
  EXPECT_TRUE(store->has_blob(d));
  EXPECT_EQ(*store->read_blob(d, 100), "hello world");
  EXPECT_EQ(ingest_files(), 0u);

  auto again = store->begin_ingest(d, 11);
  ASSERT_TRUE(again.ok());
  EXPECT_FALSE(*again) << "a present blob needs no writer";
}

TEST_F(StoreTest, RejectsWrongDigestAndSize) {
  auto store = Store::open(root_);
  ASSERT_TRUE(store.ok());
  Digest d = Digest::of("expected");
  {
    auto writer = store->begin_ingest(d, 8);
    ASSERT_TRUE((*writer)->write("unexpect", 8).ok());
    Status st = (*writer)->commit();
    ASSERT_FALSE(st.ok());
    EXPECT_EQ(st.error().code(), ErrorCode::kCorrupt);
    EXPECT_NE(st.error().message().find(d.str()), std::string::npos);
  }
  {
    auto writer = store->begin_ingest(d, 8);
    Status st = (*writer)->write("expected!", 9);
    ASSERT_FALSE(st.ok()) << "more bytes than the descriptor says";
  }
  {
    auto writer = store->begin_ingest(d, 8);
    ASSERT_TRUE((*writer)->write("expect", 6).ok());
    EXPECT_FALSE((*writer)->commit().ok()) << "short blob";
  }
  { auto abandoned = store->begin_ingest(d, 8); }
  EXPECT_FALSE(store->has_blob(d));
  EXPECT_EQ(ingest_files(), 0u);
}

TEST_F(StoreTest, ReadBlobDetectsCorruptionOnDisk) {
  auto store = Store::open(root_);
  Digest d = Digest::of("content");
  ASSERT_TRUE(store->write_blob(d, "content").ok());
  std::ofstream(store->blob_path(d)) << "tampered";
  auto read = store->read_blob(d, 100);
  ASSERT_FALSE(read.ok());
  EXPECT_EQ(read.error().code(), ErrorCode::kCorrupt);
}

TEST_F(StoreTest, RecordsImagesByName) {
  auto store = Store::open(root_);
  Digest m1 = Digest::of("m1"), m2 = Digest::of("m2");
  Descriptor d1{"application/vnd.oci.image.manifest.v1+json", m1, 2, {}, {}, {}};
  Descriptor d2{"application/vnd.oci.image.manifest.v1+json", m2, 2, {}, {}, {}};
  ASSERT_TRUE(store->record_image({"docker.io/library/a:1", d1, m1, "2024-01-01T00:00:00Z"}).ok());
  ASSERT_TRUE(store->record_image({"docker.io/library/b:1", d1, std::nullopt, ""}).ok());
  ASSERT_TRUE(store->record_image({"docker.io/library/a:1", d2, m2, ""}).ok());
  auto images = store->list_images();
  ASSERT_TRUE(images.ok());
  ASSERT_EQ(images->size(), 2u);
  auto a = store->find_image("docker.io/library/a:1");
  ASSERT_TRUE(a.ok() && a->has_value());
  EXPECT_EQ((*a)->manifest.digest, m2);
  EXPECT_EQ((*a)->repo_digest, m2);
  // index.json is valid JSON carrying the OCI ref name annotation.
  std::ifstream in(root_ / "index.json");
  auto doc = nlohmann::json::parse(in);
  EXPECT_EQ(doc["manifests"][0]["annotations"][kRefNameAnnotation], "docker.io/library/a:1");
}

TEST_F(StoreTest, ConcurrentIngestOfOneBlobInTwoProcesses) {
  auto store = Store::open(root_);
  ASSERT_TRUE(store.ok());
  std::string content(1 << 20, 'x');
  Digest d = Digest::of(content);
  auto first = store->begin_ingest(d, static_cast<int64_t>(content.size()));
  ASSERT_TRUE(first.ok() && *first);
  ASSERT_TRUE((*first)->write(content.data(), 1000).ok());
  pid_t child = fork();
  if (child == 0) {
    // A forked child shares the parent's open file descriptions, and with them
    // the parent's flock: drop them, so the child is a process of its own.
    close_range(3, ~0U, 0);
    // Blocks on the ingest lock until the parent commits, then finds the blob.
    auto s = Store::open(root_);
    auto second = s->begin_ingest(d, static_cast<int64_t>(content.size()));
    _exit(second.ok() && !*second ? 0 : 1);
  }
  usleep(100 * 1000);
  ASSERT_TRUE((*first)->write(content.data() + 1000, content.size() - 1000).ok());
  ASSERT_TRUE((*first)->commit().ok());
  int status = 0;
  waitpid(child, &status, 0);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  EXPECT_EQ(*store->read_blob(d, content.size()), content);
}

TEST_F(StoreTest, AnAbandonedWriterLeavesItsBytesForTheNextIngest) {
  auto store = Store::open(root_);
  ASSERT_TRUE(store.ok());
  std::string content(300 * 1024, 'a');
  for (size_t i = 0; i < content.size(); ++i) content[i] = static_cast<char>(i * 7 + i / 251);
  Digest d = Digest::of(content);
  const auto size = static_cast<int64_t>(content.size());
  {
    auto writer = store->begin_ingest(d, size);
    ASSERT_TRUE(writer.ok() && *writer);
    EXPECT_EQ((*writer)->resumed_bytes(), 0u);
    ASSERT_TRUE((*writer)->write(content.data(), 100'000).ok());
  }  // a failed pull: the writer goes, the partial stays
  EXPECT_EQ(ingest_files(), 1u);
  auto writer = store->begin_ingest(d, size);
  ASSERT_TRUE(writer.ok() && *writer) << (writer.ok() ? "" : writer.error().message());
  EXPECT_EQ((*writer)->resumed_bytes(), 100'000u);
  EXPECT_EQ((*writer)->bytes_written(), 100'000u);
  ASSERT_TRUE((*writer)->write(content.data() + 100'000, content.size() - 100'000).ok());
  ASSERT_TRUE((*writer)->commit().ok());
  EXPECT_EQ(*store->read_blob(d, content.size()), content);
  EXPECT_EQ(ingest_files(), 0u);
}

TEST_F(StoreTest, AKilledProcessesPartialIsContinued) {
  auto store = Store::open(root_);
  ASSERT_TRUE(store.ok());
  std::string content(2 << 20, 'k');
  for (size_t i = 0; i < content.size(); i += 4096) content[i] = static_cast<char>(i >> 12);
  Digest d = Digest::of(content);
  const auto size = static_cast<int64_t>(content.size());
  pid_t child = fork();
  if (child == 0) {
    close_range(3, ~0U, 0);
    auto s = Store::open(root_);
    auto w = s->begin_ingest(d, size);
    if (!w.ok() || !*w || !(*w)->write(content.data(), 1'234'567).ok()) _exit(1);
    ::kill(::getpid(), SIGKILL);  // no destructor, no cleanup: what a crash leaves
    _exit(2);
  }
  int status = 0;
  waitpid(child, &status, 0);
  ASSERT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) << status;
  EXPECT_EQ(ingest_files(), 1u);
  auto writer = store->begin_ingest(d, size);
  ASSERT_TRUE(writer.ok() && *writer);
  EXPECT_EQ((*writer)->resumed_bytes(), 1'234'567u);
  ASSERT_TRUE((*writer)->write(content.data() + 1'234'567, content.size() - 1'234'567).ok());
  ASSERT_TRUE((*writer)->commit().ok());
  EXPECT_TRUE(store->has_blob(d));
}

TEST_F(StoreTest, AWrongPartialFailsTheDigestAndIsNotResumedAgain) {
  auto store = Store::open(root_);
  ASSERT_TRUE(store.ok());
  std::string content = "the right bytes of a blob";
  Digest d = Digest::of(content);
  const auto size = static_cast<int64_t>(content.size());
  {
    auto writer = store->begin_ingest(d, size);
    ASSERT_TRUE((*writer)->write("THE", 3).ok());  // wrong bytes, as a crash might leave
  }
  {
    auto writer = store->begin_ingest(d, size);
    ASSERT_EQ((*writer)->resumed_bytes(), 3u);
    ASSERT_TRUE((*writer)->write(content.data() + 3, content.size() - 3).ok());
    Status st = (*writer)->commit();
    ASSERT_FALSE(st.ok());
    EXPECT_EQ(st.error().code(), ErrorCode::kCorrupt);
    EXPECT_NE(st.error().message().find("expected " + d.str()), std::string::npos) << st.error().message();
  }
  EXPECT_EQ(ingest_files(), 0u) << "wrong bytes are removed, never resumed";
  auto writer = store->begin_ingest(d, size);
  EXPECT_EQ((*writer)->resumed_bytes(), 0u);
  ASSERT_TRUE((*writer)->write(content.data(), content.size()).ok());
  ASSERT_TRUE((*writer)->commit().ok());
}

TEST_F(StoreTest, APartialLongerThanTheBlobStartsOver) {
  auto store = Store::open(root_);
  ASSERT_TRUE(store.ok());
  Digest d = Digest::of("short");
  std::ofstream(root_ / "ingest" / (d.hex() + ".partial")) << "much longer than five bytes";
  auto writer = store->begin_ingest(d, 5);
  ASSERT_TRUE(writer.ok() && *writer);
  EXPECT_EQ((*writer)->resumed_bytes(), 0u);
  ASSERT_TRUE((*writer)->write("short", 5).ok());
  ASSERT_TRUE((*writer)->commit().ok());
  EXPECT_EQ(*store->read_blob(d, 10), "short");
}

TEST_F(StoreTest, ARestartAfterResumingRewritesInPlace) {
  auto store = Store::open(root_);
  ASSERT_TRUE(store.ok());
  std::string content = "0123456789abcdef";
  Digest d = Digest::of(content);
  { ASSERT_TRUE((*store->begin_ingest(d, 16))->write(content.data(), 10).ok()); }
  auto writer = store->begin_ingest(d, 16);
  ASSERT_EQ((*writer)->resumed_bytes(), 10u);
  // The server ignored Range and sends everything again.
  ASSERT_TRUE((*writer)->restart().ok());
  EXPECT_EQ((*writer)->bytes_written(), 0u);
  ASSERT_TRUE((*writer)->write(content.data(), content.size()).ok());
  ASSERT_TRUE((*writer)->commit().ok());
  EXPECT_EQ(*store->read_blob(d, 100), content);
}

TEST_F(StoreTest, WriteBlobOverAnInterruptedPartialOfItself) {
  auto store = Store::open(root_);
  ASSERT_TRUE(store.ok());
  Digest d = Digest::of("a small manifest");
  std::ofstream(root_ / "ingest" / (d.hex() + ".partial")) << "a small";
  ASSERT_TRUE(store->write_blob(d, "a small manifest").ok());
  EXPECT_EQ(*store->read_blob(d, 100), "a small manifest");
  EXPECT_EQ(ingest_files(), 0u);
}

}  // namespace
}  // namespace imgpull
