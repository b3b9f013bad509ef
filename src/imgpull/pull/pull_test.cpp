// The pull pipeline driven through a fake registry (testing/fake_registry.h):
// what reaches the store and the rootfs, in which order, and how failures in
// one part stop the others. The same pipeline against a real registry is
// tested by tests/integration/.
#include "pull/pull.h"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <atomic>
#include <random>
#include <thread>

#include "imgpull/images.h"
#include "pull/resolve.h"
#include "testing/fake_registry.h"

namespace imgpull {
namespace {

using testing::FakeRegistry;
using testing::Gate;
using testing::ImageDocuments;
using testing::ImageOptions;
using testing::tar_of;
using testing::TestLayer;
using testing::TestStore;
using unpack::testing::slurp;
using unpack::testing::TempDir;

Reference ref_of(const std::string& text) {
  auto ref = Reference::parse(text);
  EXPECT_TRUE(ref.ok());
  return *ref;
}

// Every event of a pull, recorded from the pull's threads.
struct Events {
  std::mutex mutex;
  std::vector<PullEvent> all;
  std::function<void(const PullEvent&)> recorder() {
    return [this](const PullEvent& e) {
      std::lock_guard lock(mutex);
      all.push_back(e);
    };
  }
  // Indexes of the events of `kind` for `layer`.
  std::vector<size_t> find(PullEvent::Kind kind, const Digest& layer) {
    std::lock_guard lock(mutex);
    std::vector<size_t> at;
    for (size_t i = 0; i < all.size(); ++i) {
      if (all[i].kind == kind && all[i].layer == layer) at.push_back(i);
    }
    return at;
  }
};

// An index entry for the image `docs` (as FakeRegistry::push serves it).
Descriptor entry_for(const ImageDocuments& docs, std::string_view platform) {
  std::string manifest = to_oci_manifest(docs.manifest);
  return Descriptor{std::string(media_type::kOciManifest), Digest::of(manifest),
                    static_cast<int64_t>(manifest.size()), {}, {}, *Platform::parse(platform)};
}

// An OCI index (or a Docker manifest list) of `entries`.
std::string index_of(const std::vector<Descriptor>& entries, std::string_view type = media_type::kOciIndex) {
  nlohmann::json doc = {{"schemaVersion", 2}, {"mediaType", type}, {"manifests", nlohmann::json::array()}};
  for (const auto& d : entries) doc["manifests"].push_back(descriptor_to_json(d));
  return doc.dump();
}

using Requests = std::vector<std::string>;

// Bytes no compressor shrinks, so a layer's blob is as big as its file.
std::string random_bytes(size_t n, unsigned seed) {
  std::mt19937 gen(seed);
  std::string s(n, '\0');
  for (auto& c : s) c = static_cast<char>(gen());
  return s;
}

class PullTest : public ::testing::Test {
 protected:
  Result<PullResult> pull(const std::string& ref, PullOptions options = {}) {
    if (!options.on_event) options.on_event = events.recorder();
    return pull_image(store.store(), ref_of(ref), options, registry.connector());
  }
  PullOptions with_rootfs() {
    PullOptions options;
    options.rootfs_fd = rootfs_fd.get();
    return options;
  }

  FakeRegistry registry;
  TestStore store;
  Events events;
  TempDir rootfs{"pull-rootfs"};
  UniqueFd rootfs_fd{rootfs.open()};
};

TEST_F(PullTest, StoresEveryBlobAndNamesTheImage) {
  TestLayer a = TestLayer::gzipped(tar_of({{"a", "1"}}));
  TestLayer b = TestLayer::zstd(tar_of({{"b", "2"}}));
  auto docs = registry.push("1", {a, b});

  auto pulled = pull("registry.test/img:1");
  ASSERT_TRUE(pulled.ok()) << pulled.error().message();
  EXPECT_EQ(pulled->name, "registry.test/img:1");
  EXPECT_EQ(pulled->config_digest, docs.manifest.config.digest);
  EXPECT_EQ(pulled->bytes_downloaded, a.blob.size() + b.blob.size());
  EXPECT_FALSE(pulled->up_to_date);
  for (const auto& d : {a.digest(), b.digest(), docs.manifest.config.digest}) EXPECT_TRUE(store.store().has_blob(d));
  auto found = store.store().find_image("registry.test/img:1");
  ASSERT_TRUE(found.ok() && found->has_value());
  EXPECT_EQ((*found)->manifest.digest, pulled->manifest_digest);
  for (const auto& l : {a, b}) {
    EXPECT_EQ(events.find(PullEvent::Kind::kLayerWaiting, l.digest()).size(), 1u);
    EXPECT_EQ(events.find(PullEvent::Kind::kLayerComplete, l.digest()).size(), 1u);
  }

  // Nothing changed: nothing fetched again, and it says so.
  auto again = pull("registry.test/img:1");
  ASSERT_TRUE(again.ok()) << again.error().message();
  EXPECT_TRUE(again->up_to_date);
  EXPECT_EQ(again->bytes_downloaded, 0u);
  EXPECT_EQ(registry.fetches(a.digest()), 1);
  EXPECT_EQ(events.find(PullEvent::Kind::kLayerExists, a.digest()).size(), 1u);
}

TEST_F(PullTest, ByDigestWithEveryBlobLocalNeedsNoRegistry) {
  TestLayer a = TestLayer::gzipped(tar_of({{"a", "1"}}));
  registry.push("1", {a});
  auto first = pull("registry.test/img:1");
  ASSERT_TRUE(first.ok()) << first.error().message();
  ASSERT_EQ(registry.connects(), 1);

  auto by_digest = pull("registry.test/img@" + first->manifest_digest.str());
  ASSERT_TRUE(by_digest.ok()) << by_digest.error().message();
  EXPECT_EQ(registry.connects(), 1) << "no connection for what the store has";
}

TEST_F(PullTest, LayersAreAppliedInOrderWhateverOrderTheyArrive) {
  // Each layer rewrites the same file: only applying 1, 2, 3 in that order
  // leaves the third's content.
  std::vector<TestLayer> layers;
  for (int i = 1; i <= 3; ++i) layers.push_back(TestLayer::gzipped(tar_of({{"f", std::to_string(i)}, {"l" + std::to_string(i), "x"}})));
  registry.push("1", layers);
  auto first_gate = std::make_shared<Gate>();
  registry.script(layers[0].digest()).gate = first_gate;  // the first layer arrives last

  std::thread opener([&] {
    for (int i = 0; i < 2000 && !(store.store().has_blob(layers[1].digest()) &&
                                  store.store().has_blob(layers[2].digest()));
         ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    first_gate->open();
  });
  PullOptions options = with_rootfs();
  options.downloads.max_concurrent_blobs = 3;
  auto pulled = pull("registry.test/img:1", options);
  opener.join();
  ASSERT_TRUE(pulled.ok()) << pulled.error().message();

  EXPECT_EQ(slurp(rootfs.path() / "f"), "3");
  for (int i = 1; i <= 3; ++i) EXPECT_TRUE(std::filesystem::exists(rootfs.path() / ("l" + std::to_string(i))));
  auto downloaded = [&](int i) { return events.find(PullEvent::Kind::kLayerDownloaded, layers[i].digest()).at(0); };
  auto complete = [&](int i) { return events.find(PullEvent::Kind::kLayerComplete, layers[i].digest()).at(0); };
  EXPECT_LT(downloaded(1), downloaded(0)) << "the test meant layer 1 to arrive after the others";
  EXPECT_LT(downloaded(2), downloaded(0));
  EXPECT_LT(complete(0), complete(1));
  EXPECT_LT(complete(1), complete(2));
}

TEST_F(PullTest, WrongBytesAreFetchedOnceMoreFromTheFirstByte) {
  TestLayer a = TestLayer::gzipped(tar_of({{"a", "1"}}));
  registry.push("1", {a});
  registry.script(a.digest()).corrupt_times = 1;

  auto pulled = pull("registry.test/img:1");
  ASSERT_TRUE(pulled.ok()) << pulled.error().message();
  EXPECT_EQ(registry.fetches(a.digest()), 2);
  EXPECT_EQ(events.find(PullEvent::Kind::kLayerRefetching, a.digest()).size(), 1u);
  EXPECT_TRUE(store.store().has_blob(a.digest()));
}

TEST_F(PullTest, WrongTwiceFailsNamingTheBlobAndRecordsNothing) {
  TestLayer a = TestLayer::gzipped(tar_of({{"a", "1"}}));
  registry.push("1", {a});
  registry.script(a.digest()).corrupt_times = 2;

  auto pulled = pull("registry.test/img:1");
  ASSERT_FALSE(pulled.ok());
  EXPECT_EQ(pulled.error().code(), ErrorCode::kCorrupt);
  EXPECT_NE(pulled.error().message().find(a.digest().str()), std::string::npos) << pulled.error().message();
  EXPECT_NE(pulled.error().message().find("wrong both times"), std::string::npos) << pulled.error().message();
  EXPECT_EQ(registry.fetches(a.digest()), 2);
  EXPECT_FALSE(store.store().has_blob(a.digest()));
  auto found = store.store().find_image("registry.test/img:1");
  ASSERT_TRUE(found.ok());
  EXPECT_FALSE(found->has_value());
}

TEST_F(PullTest, WrongBytesTheRootfsAlreadyUsedAreNotFetchedAgain) {
  // Incompressible and uncompressed, so the applier reads (and reports) bytes
  // long before the download ends.
  TestLayer big = TestLayer::uncompressed(tar_of({{"big", random_bytes(2 << 20, 7)}}));
  registry.push("1", {big});
  auto& script = registry.script(big.digest());
  script.corrupt_times = 1;
  script.gate = std::make_shared<Gate>();
  script.pause_after = big.blob.size() - 1024;
  script.reached = std::make_shared<Gate>();
  PullOptions options = with_rootfs();
  options.on_event = [&](const PullEvent& e) {
    events.recorder()(e);
    if (e.kind == PullEvent::Kind::kLayerExtracting && e.current > 0) script.gate->open();
  };

  auto pulled = pull("registry.test/img:1", options);
  ASSERT_FALSE(pulled.ok());
  EXPECT_EQ(pulled.error().code(), ErrorCode::kCorrupt);
  EXPECT_NE(pulled.error().message().find("not fetched again"), std::string::npos) << pulled.error().message();
  EXPECT_EQ(registry.fetches(big.digest()), 1);
}

TEST_F(PullTest, ABlobListedTwiceIsFetchedOnceAndAppliedTwice) {
  TestLayer a = TestLayer::gzipped(tar_of({{"f", "a"}}));
  TestLayer b = TestLayer::gzipped(tar_of({{"f", "b"}}));
  registry.push("1", {a, b, a});

  auto pulled = pull("registry.test/img:1", with_rootfs());
  ASSERT_TRUE(pulled.ok()) << pulled.error().message();
  EXPECT_EQ(registry.fetches(a.digest()), 1);
  EXPECT_EQ(pulled->bytes_downloaded, a.blob.size() + b.blob.size());
  EXPECT_EQ(slurp(rootfs.path() / "f"), "a") << "the third layer (a again) was applied last";
  EXPECT_EQ(events.find(PullEvent::Kind::kLayerWaiting, a.digest()).size(), 1u);
}

TEST_F(PullTest, AnInterruptStopsThePullAndKeepsWhatWasDownloaded) {
  TestLayer big = TestLayer::uncompressed(tar_of({{"big", random_bytes(1 << 20, 3)}}));
  registry.push("1", {big});
  auto& script = registry.script(big.digest());
  script.gate = std::make_shared<Gate>();  // never opened: the download pauses
  script.pause_after = 512 * 1024;
  script.reached = std::make_shared<Gate>();
  std::atomic<bool> interrupted{false};
  PullOptions options;
  options.cancelled = [&] { return interrupted.load(); };
  std::thread ctrl_c([&] {
    struct Never : BlobSink {
      uint64_t bytes_held() const override { return 0; }
      Status restart() override { return {}; }
      Status write(const char*, size_t) override { return {}; }
    } never;
    script.reached->wait(never);
    interrupted = true;
  });

  auto pulled = pull("registry.test/img:1", options);
  ctrl_c.join();
  ASSERT_FALSE(pulled.ok());
  EXPECT_EQ(pulled.error().code(), ErrorCode::kCancelled) << pulled.error().message();
  // The partial file holds the bytes received, for the next pull to continue.
  auto partial = store.root() / "ingest" / (big.digest().hex() + ".partial");
  ASSERT_TRUE(std::filesystem::exists(partial));
  EXPECT_EQ(std::filesystem::file_size(partial), 512u * 1024);

  script.gate->open();
  auto resumed = pull("registry.test/img:1");
  ASSERT_TRUE(resumed.ok()) << resumed.error().message();
  EXPECT_EQ(resumed->bytes_resumed, 512u * 1024);
  EXPECT_EQ(resumed->bytes_downloaded, big.blob.size() - 512 * 1024);
}

TEST_F(PullTest, AnApplyErrorStopsADownloadThatStalls) {
  TestLayer bad = TestLayer::gzipped(tar_of({{"a", "1"}}));
  TestLayer stalled = TestLayer::uncompressed(tar_of({{"big", random_bytes(1 << 20, 5)}}));
  registry.push("1", {bad, stalled},
                ImageOptions().with_diff_ids({Digest::of("not the layer"), stalled.diff_id()}));
  auto& script = registry.script(stalled.digest());
  script.gate = std::make_shared<Gate>();  // never opened: stalls until the pull cancels it
  script.pause_after = 4096;

  auto pulled = pull("registry.test/img:1", with_rootfs());
  ASSERT_FALSE(pulled.ok());
  EXPECT_EQ(pulled.error().code(), ErrorCode::kCorrupt);
  EXPECT_NE(pulled.error().message().find("expected diff_id"), std::string::npos) << pulled.error().message();
  EXPECT_NE(pulled.error().message().find(bad.digest().str()), std::string::npos) << pulled.error().message();
  EXPECT_TRUE(events.find(PullEvent::Kind::kLayerDownloaded, stalled.digest()).empty());
}

// ---- resolving: HEAD first, nested indexes ----

TEST_F(PullTest, AnUpToDateTagCostsOneHeadAndNoManifestGet) {
  TestLayer a = TestLayer::gzipped(tar_of({{"a", "1"}}));
  auto docs = registry.push("1", {a});
  const std::string manifest = Digest::of(to_oci_manifest(docs.manifest)).str();

  auto first = pull("registry.test/img:1");
  ASSERT_TRUE(first.ok()) << first.error().message();
  // Nothing under the name yet: the tag is fetched at once (a HEAD would only
  // cost a round trip; the GET is needed anyway).
  EXPECT_EQ(registry.manifest_requests(), (Requests{"GET 1"}));
  EXPECT_EQ(first->repo_digest->str(), manifest);

  registry.clear_manifest_requests();
  auto again = pull("registry.test/img:1");
  ASSERT_TRUE(again.ok()) << again.error().message();
  EXPECT_EQ(registry.manifest_requests(), (Requests{"HEAD 1"}));
  EXPECT_TRUE(again->up_to_date);
  EXPECT_EQ(again->repo_digest, first->repo_digest);
  EXPECT_EQ(again->manifest_digest, first->manifest_digest);
  EXPECT_EQ(registry.fetches(a.digest()), 1);
}

TEST_F(PullTest, AnUpToDateIndexCostsOneHeadAndAMovedTagOnlyItsNewIndex) {
  TestLayer amd = TestLayer::gzipped(tar_of({{"arch", "amd64"}}));
  TestLayer arm = TestLayer::gzipped(tar_of({{"arch", "arm64"}}));
  auto amd_docs = registry.push("amd64", {amd});
  auto arm_docs = registry.push("arm64", {arm});
  Descriptor amd_entry = entry_for(amd_docs, "linux/amd64");
  Descriptor index = registry.push_document(
      "1", index_of({amd_entry, entry_for(arm_docs, "linux/arm64")}), media_type::kOciIndex);
  PullOptions options;
  options.platform = *Platform::parse("linux/amd64");

  auto first = pull("registry.test/img:1", options);
  ASSERT_TRUE(first.ok()) << first.error().message();
  EXPECT_EQ(registry.manifest_requests(),
            (Requests{"GET 1", "GET " + amd_entry.digest.str()}));
  EXPECT_EQ(first->repo_digest, index.digest);

  registry.clear_manifest_requests();
  auto again = pull("registry.test/img:1", options);
  ASSERT_TRUE(again.ok()) << again.error().message();
  EXPECT_EQ(registry.manifest_requests(), (Requests{"HEAD 1"}));
  EXPECT_TRUE(again->up_to_date);

  // The tag moves to an index listing the same amd64 image: only the new
  // index is fetched; the platform manifest is in the store.
  Descriptor moved = registry.push_document("1", index_of({amd_entry}, media_type::kDockerManifestList),
                                            media_type::kDockerManifestList);
  registry.clear_manifest_requests();
  auto after_move = pull("registry.test/img:1", options);
  ASSERT_TRUE(after_move.ok()) << after_move.error().message();
  EXPECT_EQ(registry.manifest_requests(), (Requests{"HEAD 1", "GET " + moved.digest.str()}));
  EXPECT_EQ(after_move->repo_digest, moved.digest);
  EXPECT_EQ(after_move->manifest_digest, first->manifest_digest);
}

TEST_F(PullTest, AHeadWithoutADigestOrARefusedHeadFallsBackToGetByTag) {
  TestLayer a = TestLayer::gzipped(tar_of({{"a", "1"}}));
  registry.push("1", {a});
  ASSERT_TRUE(pull("registry.test/img:1").ok());  // a record under the name: the next pull HEADs first
  registry.clear_manifest_requests();
  registry.head_without_digest();
  auto pulled = pull("registry.test/img:1");
  ASSERT_TRUE(pulled.ok()) << pulled.error().message();
  EXPECT_EQ(registry.manifest_requests(), (Requests{"HEAD 1", "GET 1"}));

  FakeRegistry refusing;
  refusing.push("1", {a});
  ASSERT_TRUE(pull_image(store.store(), ref_of("registry.test/other:1"), {}, refusing.connector()).ok());
  refusing.clear_manifest_requests();
  refusing.refuse_head(Error(ErrorCode::kInvalidArgument, "HEAD manifest 1: method not allowed (HTTP 405)"));
  auto refused = pull_image(store.store(), ref_of("registry.test/other:1"), {}, refusing.connector());
  ASSERT_TRUE(refused.ok()) << refused.error().message();
  EXPECT_EQ(refusing.manifest_requests(), (Requests{"HEAD 1", "GET 1"}));
}

TEST_F(PullTest, AHeadThatCannotBeServedIsNotFollowedByAGet) {
  TestLayer a = TestLayer::gzipped(tar_of({{"a", "1"}}));
  registry.push("1", {a});
  ASSERT_TRUE(pull("registry.test/img:1").ok());  // a record under the name: the next pull HEADs first
  registry.clear_manifest_requests();
  registry.refuse_head(Error(ErrorCode::kUnavailable, "manifest 1: gave up after 6 attempts: HEAD: too many requests"));
  auto pulled = pull("registry.test/img:1");
  ASSERT_FALSE(pulled.ok());
  EXPECT_NE(pulled.error().message().find("too many requests"), std::string::npos) << pulled.error().message();
  EXPECT_EQ(registry.manifest_requests(), (Requests{"HEAD 1"})) << "a GET would count against the limit too";
}

// index -> index (no platform) -> manifests, as containerd follows it.
class NestedIndexTest : public PullTest {
 protected:
  PullOptions for_platform(std::string_view platform) {
    PullOptions options = with_rootfs();
    options.platform = *Platform::parse(platform);
    return options;
  }

  TestLayer amd = TestLayer::gzipped(tar_of({{"arch", "amd64"}}));
  TestLayer arm = TestLayer::gzipped(tar_of({{"arch", "arm64"}}));
  ImageDocuments amd_docs = registry.push("amd64", {amd});
  ImageDocuments arm_docs = registry.push("arm64", {arm});
  Descriptor inner = registry.push_document(
      "", index_of({entry_for(arm_docs, "linux/arm64"), entry_for(amd_docs, "linux/amd64")}), media_type::kOciIndex);
  // The outer index also has an entry whose platform does not fit, which must not be taken.
  Descriptor outer = registry.push_document("1", index_of({entry_for(arm_docs, "linux/arm64/v8"), inner}),
                                            media_type::kOciIndex);
};

TEST_F(NestedIndexTest, FollowsAnIndexWithoutPlatformToTheWantedPlatform) {
  auto pulled = pull("registry.test/img:1", for_platform("linux/amd64"));
  ASSERT_TRUE(pulled.ok()) << pulled.error().message();
  EXPECT_EQ(pulled->config_digest, amd_docs.manifest.config.digest);
  EXPECT_EQ(pulled->repo_digest, outer.digest);
  EXPECT_EQ(slurp(rootfs.path() / "arch"), "amd64");
  EXPECT_EQ(registry.manifest_requests(), (Requests{"GET 1", "GET " + inner.digest.str(),
                                                     "GET " + entry_for(amd_docs, "linux/amd64").digest.str()}));
  // Every level is stored, so the repo digest leads to the image.
  EXPECT_TRUE(store.store().has_blob(outer.digest));
  EXPECT_TRUE(store.store().has_blob(inner.digest));
  EXPECT_FALSE(store.store().has_blob(arm.digest()));

  registry.clear_manifest_requests();
  auto again = pull("registry.test/img:1", for_platform("linux/amd64"));
  ASSERT_TRUE(again.ok()) << again.error().message();
  EXPECT_TRUE(again->up_to_date);
  EXPECT_EQ(registry.manifest_requests(), (Requests{"HEAD 1"}));

  // By the top-level digest, from the store alone.
  auto by_digest = pull("registry.test/img@" + outer.digest.str(), for_platform("linux/amd64"));
  ASSERT_TRUE(by_digest.ok()) << by_digest.error().message();
  EXPECT_EQ(by_digest->config_digest, amd_docs.manifest.config.digest);
  EXPECT_EQ(registry.connects(), 2) << "the pull by digest needed no registry";

  // Prune keeps every level: the walk from the repo digest passes through both indexes.
  auto pruned = prune_store(store.store(), {});
  ASSERT_TRUE(pruned.ok()) << pruned.error().message();
  EXPECT_EQ(pruned->blobs_deleted, 0u);
  EXPECT_TRUE(resolve_local(store.store(), outer.digest, *Platform::parse("linux/amd64")).has_value());
}

TEST_F(NestedIndexTest, AMatchingPlatformIsPreferredToAnIndexWithoutOne) {
  auto pulled = pull("registry.test/img:1", for_platform("linux/arm64"));
  ASSERT_TRUE(pulled.ok()) << pulled.error().message();
  EXPECT_EQ(pulled->config_digest, arm_docs.manifest.config.digest);
  EXPECT_EQ(registry.manifest_requests(),
            (Requests{"GET 1", "GET " + entry_for(arm_docs, "linux/arm64").digest.str()}));
}

TEST_F(NestedIndexTest, NoMatchListsWhatEachLevelOffers) {
  auto pulled = pull("registry.test/img:1", for_platform("linux/s390x"));
  ASSERT_FALSE(pulled.ok());
  EXPECT_EQ(pulled.error().code(), ErrorCode::kNotFound);
  EXPECT_EQ(pulled.error().message(),
            "pulling registry.test/img:1: no image for platform linux/s390x: index " + outer.digest.str() +
                " offers: linux/arm64/v8, an index with no platform (" + inner.digest.str() + "); index " +
                inner.digest.str() + " offers: linux/arm64, linux/amd64");
  auto found = store.store().find_image("registry.test/img:1");
  ASSERT_TRUE(found.ok());
  EXPECT_FALSE(found->has_value());
}

TEST_F(PullTest, IndexesNestedDeeperThanTheLimitAreRefused) {
  TestLayer a = TestLayer::gzipped(tar_of({{"a", "1"}}));
  Descriptor level = entry_for(registry.push("image", {a}), "linux/amd64");
  std::vector<Descriptor> levels;
  for (size_t i = 0; i <= kMaxIndexDepth; ++i) {
    level = registry.push_document("", index_of({level}), media_type::kOciIndex);
    levels.push_back(level);
  }
  PullOptions options;
  options.platform = *Platform::parse("linux/amd64");
  // kMaxIndexDepth levels are followed...
  auto deepest_allowed = pull("registry.test/img@" + levels[kMaxIndexDepth - 1].digest.str(), options);
  ASSERT_TRUE(deepest_allowed.ok()) << deepest_allowed.error().message();
  // ...one more is not.
  auto too_deep = pull("registry.test/img@" + levels[kMaxIndexDepth].digest.str(), options);
  ASSERT_FALSE(too_deep.ok());
  EXPECT_EQ(too_deep.error().code(), ErrorCode::kUnsupported);
  EXPECT_NE(too_deep.error().message().find(fmt::format("deeper than {} levels", kMaxIndexDepth)), std::string::npos)
      << too_deep.error().message();
  for (const auto& l : levels) {
    EXPECT_NE(too_deep.error().message().find(l.digest.str()), std::string::npos) << too_deep.error().message();
  }
}

TEST_F(PullTest, AMissingManifestSaysSo) {
  auto pulled = pull("registry.test/img:nope");
  ASSERT_FALSE(pulled.ok());
  EXPECT_EQ(pulled.error().code(), ErrorCode::kNotFound);
  EXPECT_EQ(pulled.error().message().rfind("pulling registry.test/img:nope: ", 0), 0u) << pulled.error().message();
}

}  // namespace
}  // namespace imgpull
