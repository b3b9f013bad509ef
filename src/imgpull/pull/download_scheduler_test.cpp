#include "pull/download_scheduler.h"

#include <gtest/gtest.h>

#include <thread>

#include "testing/fake_registry.h"

namespace imgpull {
namespace {

using testing::FakeRegistry;
using testing::Gate;
using testing::tar_of;
using testing::TestLayer;
using testing::TestStore;

// A sink that is never cancelled, for a test thread waiting on a Gate.
struct Patient : BlobSink {
  uint64_t bytes_held() const override { return 0; }
  Status restart() override { return {}; }
  Status write(const char*, size_t) override { return {}; }
};

class DownloadSchedulerTest : public ::testing::Test {
 protected:
  std::vector<TestLayer> layers(int n) {
    std::vector<TestLayer> out;
    for (int i = 0; i < n; ++i) out.push_back(TestLayer::gzipped(tar_of({{"f" + std::to_string(i), "x"}})));
    registry.push("1", out);
    return out;
  }
  std::vector<Descriptor> descriptors(const std::vector<TestLayer>& ls) {
    std::vector<Descriptor> out;
    for (const auto& l : ls) out.push_back(l.descriptor());
    return out;
  }

  FakeRegistry registry;
  TestStore store;
  PullEvents events{nullptr};
  FollowedBlobs followed;
  StopSignal stop{nullptr};
  DownloadScheduler downloads{registry, store.store(), events, followed, stop};
};

TEST_F(DownloadSchedulerTest, NeverRunsMoreThanItsConcurrency) {
  auto ls = layers(4);
  std::vector<std::shared_ptr<Gate>> gates, reached;
  for (const auto& l : ls) {
    gates.push_back(std::make_shared<Gate>());
    reached.push_back(std::make_shared<Gate>());
    auto& s = registry.script(l.digest());
    s.gate = gates.back();
    s.reached = reached.back();
  }
  auto started = [&] {
    int n = 0;
    for (const auto& l : ls) n += registry.fetches(l.digest());
    return n;
  };
  std::thread test([&] {
    for (int i = 0; i < 3000 && started() < 2; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(5));
    std::this_thread::sleep_for(std::chrono::milliseconds(50));  // time for a third to start, were it allowed
    EXPECT_EQ(started(), 2);
    for (auto& g : gates) g->open();
  });
  Status st = downloads.run(descriptors(ls), DownloadOptions{.initial_connections = 2, .max_connections = 2});
  test.join();
  ASSERT_TRUE(st.ok()) << st.error().message();
  EXPECT_EQ(registry.max_in_flight(), 2);
  for (const auto& l : ls) EXPECT_TRUE(store.store().has_blob(l.digest()));
  EXPECT_EQ(downloads.bytes_downloaded(), [&] {
    uint64_t n = 0;
    for (const auto& l : ls) n += l.blob.size();
    return n;
  }());
}

TEST_F(DownloadSchedulerTest, TheFirstFailureStopsTheOthers) {
  auto ls = layers(1);
  auto& s = registry.script(ls[0].digest());
  s.gate = std::make_shared<Gate>();  // never opened: waits until cancelled
  Descriptor unknown = TestLayer::gzipped(tar_of({{"nowhere", "x"}})).descriptor();

  Status st = downloads.run({ls[0].descriptor(), unknown}, DownloadOptions{.initial_connections = 2});
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().code(), ErrorCode::kNotFound) << st.error().message();
  EXPECT_NE(st.error().message().find(unknown.digest.str()), std::string::npos) << st.error().message();
  EXPECT_TRUE(stop.failed());
  EXPECT_FALSE(store.store().has_blob(ls[0].digest()));
}

TEST_F(DownloadSchedulerTest, CancelFromAnotherThreadEndsRunWithThatError) {
  auto ls = layers(1);
  auto& s = registry.script(ls[0].digest());
  s.gate = std::make_shared<Gate>();
  s.reached = std::make_shared<Gate>();
  std::thread applier([&] {
    Patient patient;
    ASSERT_TRUE(s.reached->wait(patient));
    downloads.cancel(Error(ErrorCode::kCorrupt, "the applier failed"));
  });
  Status st = downloads.run(descriptors(ls), DownloadOptions{});
  applier.join();
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().message(), "the applier failed");
}

TEST_F(DownloadSchedulerTest, AFollowerIsToldOfEveryByteAndTheEnd) {
  auto ls = layers(1);
  auto& blob = *followed.emplace(ls[0].digest(), std::make_unique<FollowedBlob>()).first->second;
  FollowedBlob::Reader reader(blob);
  Status st = downloads.run(descriptors(ls), DownloadOptions{.initial_connections = 1});
  ASSERT_TRUE(st.ok()) << st.error().message();
  std::string got(ls[0].blob.size() + 10, '\0');
  auto n = read_full(reader, got.data(), got.size());
  ASSERT_TRUE(n.ok()) << n.error().message();
  got.resize(*n);
  EXPECT_EQ(got, ls[0].blob);
}

// Another process writing a blob (its ingest file locked) does not hold up
// the rest: with one connection, the blob is set aside, the other is fetched,
// and the first is found in the store once that process commits it. Waiting
// for the lock instead would hang here (the other process, played by the
// test, commits only after the second blob arrived), as two pulls sharing
// layers could each wait for the other.
TEST_F(DownloadSchedulerTest, ABlobAnotherProcessIsWritingIsSetAsideNotWaitedFor) {
  auto ls = layers(2);
  const TestLayer& theirs = ls[0];
  const TestLayer& ours = ls[1];
  auto other_process = store.store().begin_ingest(theirs.digest(), static_cast<int64_t>(theirs.blob.size()));
  ASSERT_TRUE(other_process.ok() && *other_process);
  bool ours_first = false;
  std::thread other([&] {
    for (int i = 0; i < 2000 && !store.store().has_blob(ours.digest()); ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    ours_first = store.store().has_blob(ours.digest());
    ASSERT_TRUE((*other_process)->write(theirs.blob.data(), theirs.blob.size()).ok());
    ASSERT_TRUE((*other_process)->commit().ok());
  });
  Status st = downloads.run(descriptors(ls), DownloadOptions{.initial_connections = 1, .max_connections = 1,
                                                             .max_concurrent_blobs = 1});
  other.join();
  ASSERT_TRUE(st.ok()) << st.error().message();
  EXPECT_TRUE(ours_first) << "the pull waited for the blob another process held";
  EXPECT_EQ(registry.fetches(theirs.digest()), 0);
  EXPECT_EQ(registry.fetches(ours.digest()), 1);
  EXPECT_TRUE(store.store().has_blob(theirs.digest()));
}

}  // namespace
}  // namespace imgpull
