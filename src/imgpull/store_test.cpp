#include "imgpull/store.h"

#include <gtest/gtest.h>
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

}  // namespace
}  // namespace imgpull
