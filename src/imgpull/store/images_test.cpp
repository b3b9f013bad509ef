#include "imgpull/images.h"

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <linux/close_range.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "base/clock.h"
#include "testing/images.h"

namespace imgpull {
namespace {
namespace fs = std::filesystem;
using testing::ImageOptions;
using testing::tar_of;
using testing::TestLayer;
using testing::TestStore;

TestLayer layer(const std::string& name) { return TestLayer::gzipped(tar_of({{name, "content of " + name}})); }

// ---- finding ----

TEST(FindLocalImage, ByNormalisedNameIdPrefixAndRepoDigest) {
  TestStore s;
  auto a = s.put("docker.io/library/alpine:latest", {layer("a")}, ImageOptions().with_docker_manifest());
  s.put("localhost:5000/app:1", {layer("b")});

  for (std::string text : std::vector<std::string>{"alpine", "alpine:latest", "docker.io/library/alpine", a.config.str(),
                           a.config.hex().substr(0, 12), "sha256:" + a.config.hex().substr(0, 5),
                           "alpine@" + a.docker_manifest->str()}) {
    auto found = find_local_image(s.store(), text);
    ASSERT_TRUE(found.ok()) << text << ": " << found.error().message();
    EXPECT_EQ(found->image.record.name, "docker.io/library/alpine:latest") << text;
    EXPECT_EQ(found->image.manifest.config.digest, a.config) << text;
    bool id = text.find("alpine") == std::string::npos;
    EXPECT_EQ(found->by_name, !id) << text;
  }
  auto app = find_local_image(s.store(), "localhost:5000/app:1");
  ASSERT_TRUE(app.ok());
  EXPECT_EQ(app->image.record.name, "localhost:5000/app:1");
}

TEST(FindLocalImage, MissingIsNoSuchImage) {
  TestStore s;
  s.put("docker.io/library/alpine:latest", {layer("a")});
  for (std::string text : std::vector<std::string>{"alpine:3", "busybox", "sha256:" + std::string(64, '0'), "Bad Name"}) {
    auto found = find_local_image(s.store(), text);
    ASSERT_FALSE(found.ok()) << text;
    EXPECT_EQ(found.error().code(), ErrorCode::kNotFound);
    EXPECT_EQ(found.error().message(), "No such image: " + text);
  }
  // A repo digest names an image only in its own repository.
  auto other = find_local_image(s.store(), "busybox@" + Digest::of("x").str());
  EXPECT_FALSE(other.ok());
}

TEST(FindLocalImage, AmbiguousIdPrefixIsRefused) {
  TestStore s;
  // Images whose IDs share a first hex digit: within 17 there are two.
  std::map<char, std::string> by_first;
  for (int i = 0; i < 17; ++i) {
    auto image = s.put("docker.io/library/x:" + std::to_string(i), {layer("f")},
                       ImageOptions().with_created(fmt::format("2024-01-01T00:00:{:02}Z", i)));
    char first = image.config.hex()[0];
    if (by_first.contains(first)) {
      auto found = find_local_image(s.store(), std::string(1, first));
      ASSERT_FALSE(found.ok());
      EXPECT_NE(found.error().message().find("ambiguous"), std::string::npos) << found.error().message();
      return;
    }
    by_first[first] = image.config.hex();
  }
  FAIL() << "no two IDs share a first digit";
}

TEST(MatchesImagePattern, DockerStyleRepositoryAndTagGlobs) {
  EXPECT_TRUE(matches_image_pattern("alpine", "docker.io/library/alpine:3.19"));
  EXPECT_TRUE(matches_image_pattern("alpine:3.19", "docker.io/library/alpine:3.19"));
  EXPECT_TRUE(matches_image_pattern("alpine:3.*", "docker.io/library/alpine:3.19"));
  EXPECT_TRUE(matches_image_pattern("docker.io/library/alpine", "docker.io/library/alpine:3.19"));
  EXPECT_TRUE(matches_image_pattern("localhost:5000/*", "localhost:5000/app:1"));
  EXPECT_FALSE(matches_image_pattern("localhost:5000/*", "localhost:5000/team/app:1")) << "* stops at /";
  EXPECT_FALSE(matches_image_pattern("alpine:3.18", "docker.io/library/alpine:3.19"));
  EXPECT_FALSE(matches_image_pattern("alp", "docker.io/library/alpine:3.19"));
  EXPECT_FALSE(matches_image_pattern("busybox", "docker.io/library/alpine:3.19"));
}

// ---- inspect, history ----

TEST(InspectImage, DockerFieldsInDockerOrderWithEveryName) {
  TestStore s;
  TestLayer base = layer("base"), top = layer("top");
  auto a = s.put("docker.io/library/alpine:latest", {base, top}, ImageOptions().with_docker_manifest());
  ASSERT_TRUE(tag_image(s.store(), *s.store().load_image(a.record), "alpine:edge").ok());
  ASSERT_TRUE(tag_image(s.store(), *s.store().load_image(a.record), "localhost:5000/mirror/alpine").ok());

  auto found = find_local_image(s.store(), "alpine:edge");
  ASSERT_TRUE(found.ok());
  auto doc = inspect_image(s.store(), found->image);
  ASSERT_TRUE(doc.ok()) << doc.error().message();
  std::vector<std::string> keys;
  for (auto it = doc->begin(); it != doc->end(); ++it) keys.push_back(it.key());
  EXPECT_EQ(keys, (std::vector<std::string>{"Id", "RepoTags", "RepoDigests", "Parent", "Comment", "Created",
                                            "DockerVersion", "Author", "Config", "Architecture", "Os", "Size",
                                            "RootFS", "Metadata", "Descriptor"}));
  EXPECT_EQ((*doc)["Id"], a.config.str());
  EXPECT_EQ((*doc)["RepoTags"],
            nlohmann::ordered_json({"alpine:latest", "alpine:edge", "localhost:5000/mirror/alpine:latest"}));
  // The repo digest is the registry's: only alpine has one, and it is the Docker manifest's.
  EXPECT_EQ((*doc)["RepoDigests"], nlohmann::ordered_json({"alpine@" + a.docker_manifest->str()}));
  EXPECT_EQ((*doc)["Created"], "2024-01-02T03:04:05Z");
  EXPECT_EQ((*doc)["Config"]["Cmd"], nlohmann::ordered_json({"/bin/sh"}));
  EXPECT_EQ((*doc)["Architecture"], "amd64");
  EXPECT_EQ((*doc)["Os"], "linux");
  EXPECT_EQ((*doc)["RootFS"]["Type"], "layers");
  EXPECT_EQ((*doc)["RootFS"]["Layers"], nlohmann::ordered_json({base.diff_id().str(), top.diff_id().str()}));
  EXPECT_EQ((*doc)["Size"], found->image.manifest.config.size + static_cast<int64_t>(base.blob.size() + top.blob.size()));
  EXPECT_EQ((*doc)["Descriptor"]["digest"], a.record.manifest.digest.str());
}

TEST(ImageHistory, NewestFirstWithLayerSizesAndTheIdOnTop) {
  TestStore s;
  TestLayer one = layer("one"), two = layer("two");
  nlohmann::json history = {
      {{"created", "2024-01-01T00:00:00Z"}, {"created_by", "ADD rootfs /"}, {"comment", "base"}},
      {{"created", "2024-01-02T00:00:00Z"}, {"created_by", "ENV A=1"}, {"empty_layer", true}},
      {{"created", "2024-01-03T00:00:00Z"}, {"created_by", "RUN make"}},
      {{"created", "2024-01-04T00:00:00Z"}, {"created_by", "CMD [\"app\"]"}, {"empty_layer", true}}};
  auto image = s.put("docker.io/library/h:1", {one, two}, ImageOptions().with_history(history));
  auto rows = image_history(*s.store().load_image(image.record));
  ASSERT_EQ(rows.size(), 4u);
  EXPECT_EQ(rows[0].id, image.config);
  EXPECT_EQ(rows[0].created_by, "CMD [\"app\"]");
  EXPECT_EQ(rows[0].size, 0);
  EXPECT_EQ(rows[1].created_by, "RUN make");
  EXPECT_EQ(rows[1].size, static_cast<int64_t>(two.blob.size()));
  EXPECT_FALSE(rows[1].id.has_value()) << "docker shows <missing> below the top";
  EXPECT_EQ(rows[2].size, 0);
  EXPECT_EQ(rows[3].created_by, "ADD rootfs /");
  EXPECT_EQ(rows[3].comment, "base");
  EXPECT_EQ(rows[3].size, static_cast<int64_t>(one.blob.size()));
}

TEST(ImageHistory, WithoutHistoryOneRowPerLayer) {
  TestStore s;
  auto image = s.put("docker.io/library/h:1", {layer("one"), layer("two")}, ImageOptions().with_history(nlohmann::json::array()));
  auto rows = image_history(*s.store().load_image(image.record));
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[0].size, static_cast<int64_t>(layer("two").blob.size()));
}

// ---- tag, rmi ----

TEST(TagImage, NormalisesAndPointsAtTheSameManifest) {
  TestStore s;
  auto a = s.put("docker.io/library/alpine:3", {layer("a")});
  auto stored = s.store().load_image(a.record);
  auto name = tag_image(s.store(), *stored, "mirror/alpine");
  ASSERT_TRUE(name.ok()) << name.error().message();
  EXPECT_EQ(*name, "docker.io/mirror/alpine:latest");
  auto tagged = s.store().find_image(*name);
  ASSERT_TRUE(tagged.ok() && tagged->has_value());
  EXPECT_EQ((*tagged)->manifest.digest, a.record.manifest.digest);
  EXPECT_FALSE((*tagged)->repo_digest.has_value()) << "another repository's registry never served it";
  auto same_repo = tag_image(s.store(), *stored, "alpine:stable");
  ASSERT_TRUE(same_repo.ok());
  EXPECT_EQ((*s.store().find_image(*same_repo))->repo_digest, a.record.repo_digest);

  auto by_digest = tag_image(s.store(), *stored, "alpine@" + a.config.str());
  ASSERT_FALSE(by_digest.ok());
  EXPECT_NE(by_digest.error().message().find("refusing to create a tag with a digest reference"), std::string::npos);
  EXPECT_FALSE(tag_image(s.store(), *stored, "Not Valid").ok());
}

TEST(RemoveLocalImage, UntagsThenDeletesWithTheLastName) {
  TestStore s;
  auto a = s.put("docker.io/library/alpine:3", {layer("a")}, ImageOptions().with_docker_manifest());
  ASSERT_TRUE(tag_image(s.store(), *s.store().load_image(a.record), "alpine:stable").ok());

  auto first = remove_local_image(s.store(), "alpine:3");
  ASSERT_TRUE(first.ok()) << first.error().message();
  EXPECT_EQ(first->untagged, std::vector<std::string>{"alpine:3"});
  EXPECT_FALSE(first->deleted.has_value()) << "alpine:stable still names it";

  auto last = remove_local_image(s.store(), "alpine:stable");
  ASSERT_TRUE(last.ok());
  EXPECT_EQ(last->untagged, (std::vector<std::string>{"alpine:stable", "alpine@" + a.docker_manifest->str()}));
  EXPECT_EQ(last->deleted, a.config);
  EXPECT_TRUE(s.store().list_images()->empty());
  EXPECT_TRUE(s.store().has_blob(a.layers[0])) << "blobs stay until prune";

  auto again = remove_local_image(s.store(), "alpine:stable");
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.error().message(), "No such image: alpine:stable");
}

TEST(RemoveLocalImage, ByIdOnlyWhenTheImageHasOneName) {
  TestStore s;
  auto a = s.put("docker.io/library/alpine:3", {layer("a")});
  ASSERT_TRUE(tag_image(s.store(), *s.store().load_image(a.record), "alpine:stable").ok());
  auto refused = remove_local_image(s.store(), a.config.short_hex());
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.error().message().find("alpine:3, alpine:stable"), std::string::npos) << refused.error().message();
  ASSERT_TRUE(remove_local_image(s.store(), "alpine:3").ok());
  auto by_id = remove_local_image(s.store(), a.config.short_hex());
  ASSERT_TRUE(by_id.ok()) << by_id.error().message();
  EXPECT_EQ(by_id->untagged, (std::vector<std::string>{"alpine:stable", "alpine@" + a.record.repo_digest->str()}));
  EXPECT_EQ(by_id->deleted, a.config);
}

// ---- prune ----

std::set<Digest> blobs_of(const Store& store) {
  auto blobs = store.list_blobs();
  return std::set<Digest>(blobs->begin(), blobs->end());
}

TEST(PruneStore, DeletesWhatNoRecordReachesAndKeepsSharedLayers) {
  TestStore s;
  TestLayer shared = layer("shared");
  auto keep = s.put("docker.io/library/keep:1", {shared, layer("keep-only")}, ImageOptions().with_docker_manifest());
  auto gone = s.put("docker.io/library/gone:1", {shared, layer("gone-only")}, ImageOptions().with_docker_manifest());
  ASSERT_TRUE(remove_local_image(s.store(), "gone:1").ok());
  std::set<Digest> before = blobs_of(s.store());

  std::vector<std::string> reported;
  PruneOptions options;
  options.on_deleted = [&](const PrunedItem& item) { reported.push_back(item.what); };
  auto report = prune_store(s.store(), options);
  ASSERT_TRUE(report.ok()) << report.error().message();

  std::set<Digest> expected_gone{gone.record.manifest.digest, *gone.docker_manifest, gone.config, gone.layers[1]};
  std::set<Digest> after = blobs_of(s.store());
  for (const auto& d : expected_gone) EXPECT_FALSE(after.contains(d)) << d.str();
  for (const auto& d : {keep.record.manifest.digest, *keep.docker_manifest, keep.config, keep.layers[0],
                        keep.layers[1]}) {
    EXPECT_TRUE(after.contains(d)) << d.str();
  }
  EXPECT_EQ(before.size() - after.size(), expected_gone.size());
  EXPECT_EQ(report->blobs_deleted, expected_gone.size());
  EXPECT_EQ(reported.size(), expected_gone.size());
  EXPECT_GT(report->bytes_reclaimed, 0u);
  auto verified = verify_store(s.store(), nullptr);
  ASSERT_TRUE(verified.ok());
  EXPECT_TRUE(verified->ok()) << verified->problems.front().message;

  auto nothing = prune_store(s.store(), {});
  ASSERT_TRUE(nothing.ok());
  EXPECT_EQ(nothing->blobs_deleted, 0u);
}

TEST(PruneStore, KeepsAnIndexRepoDigestAndTheManifestsUnderIt) {
  TestStore s;
  auto image = s.put("docker.io/library/multi:1", {layer("m")});
  // As a pull from an index stores it: the index (the repo digest), and the
  // platform's manifest under it; the other platform's was never fetched.
  Descriptor other{std::string(media_type::kOciManifest), Digest::of("never fetched"), 13, {}, {}, Platform{"linux", "arm64", "", ""}};
  Descriptor chosen = image.record.manifest;
  nlohmann::json index = {{"schemaVersion", 2},
                          {"mediaType", media_type::kOciIndex},
                          {"manifests", {descriptor_to_json(chosen), descriptor_to_json(other)}}};
  s.put_blob(index.dump());
  ImageRecord record = image.record;
  record.repo_digest = Digest::of(index.dump());
  ASSERT_TRUE(s.store().record_image(record).ok());
  auto report = prune_store(s.store(), {});
  ASSERT_TRUE(report.ok()) << report.error().message();
  EXPECT_EQ(report->blobs_deleted, 0u);
  EXPECT_TRUE(s.store().has_blob(*record.repo_digest));
}

TEST(PruneStore, DeletesNothingWhenAManifestIsUnreadable) {
  TestStore s;
  auto image = s.put("docker.io/library/a:1", {layer("a")});
  s.put_blob("an unreachable blob");
  std::ofstream(s.store().blob_path(image.record.manifest.digest)) << "{ not json";
  auto report = prune_store(s.store(), {});
  ASSERT_FALSE(report.ok());
  EXPECT_NE(report.error().message().find("nothing was deleted"), std::string::npos) << report.error().message();
  EXPECT_TRUE(s.store().has_blob(Digest::of("an unreachable blob")));
}

TEST(PruneStore, DeletesOnlyStaleIngestFiles) {
  TestStore s;
  fs::path stale = s.root() / "ingest" / (std::string(64, 'a') + ".partial");
  fs::path live = s.root() / "ingest" / (std::string(64, 'b') + ".partial");
  std::ofstream(stale) << "left by a killed pull";
  std::ofstream(live) << "being written";
  fs::last_write_time(stale, fs::file_time_type::clock::now() - std::chrono::hours(2));
  std::vector<std::string> reported;
  PruneOptions options;
  options.on_deleted = [&](const PrunedItem& item) { reported.push_back(item.what); };
  auto report = prune_store(s.store(), options);
  ASSERT_TRUE(report.ok()) << report.error().message();
  EXPECT_FALSE(fs::exists(stale));
  EXPECT_TRUE(fs::exists(live));
  EXPECT_EQ(report->ingest_files_deleted, 1u);
  EXPECT_EQ(reported, std::vector<std::string>{"ingest/" + stale.filename().string()});
}

// A pull in another process commits a layer (unreachable until it records
// the image) and then waits; a prune started meanwhile must wait for it and
// then find the layer named, not delete it.
TEST(PruneStore, WaitsForAPullThatHasCommittedBlobsButNotRecorded) {
  TestStore s;
  TestLayer pulled = layer("pulled");
  int ready[2];
  ASSERT_EQ(pipe(ready), 0);
  pid_t child = fork();
  if (child == 0) {
    // Drop the descriptors shared with the parent (and with them its flocks),
    // so the child is a process of its own; keep the pipe's write end.
    if (ready[1] > 3) close_range(3, static_cast<unsigned>(ready[1]) - 1, 0);
    close_range(static_cast<unsigned>(ready[1]) + 1, ~0U, 0);
    _exit([&] {
      auto store = Store::open(s.root());
      if (!store) return 1;
      std::string bytes = pulled.blob;
      if (!store->write_blob(pulled.digest(), bytes).ok()) return 2;
      if (::write(ready[1], "x", 1) != 1) return 3;
      usleep(300 * 1000);  // the rest of the download
      // ... then the config and manifest, and the record, as pull_image does.
      nlohmann::json config = {{"architecture", "amd64"}, {"os", "linux"},
                               {"rootfs", {{"type", "layers"}, {"diff_ids", {pulled.diff_id().str()}}}}};
      std::string config_bytes = config.dump();
      if (!store->write_blob(Digest::of(config_bytes), config_bytes).ok()) return 4;
      ImageManifest m{std::string(media_type::kOciManifest),
                      {std::string(media_type::kOciConfig), Digest::of(config_bytes),
                       static_cast<int64_t>(config_bytes.size()), {}, {}, {}},
                      {pulled.descriptor()}};
      std::string manifest = to_oci_manifest(m);
      if (!store->write_blob(Digest::of(manifest), manifest).ok()) return 5;
      Descriptor d{std::string(media_type::kOciManifest), Digest::of(manifest),
                   static_cast<int64_t>(manifest.size()), {}, {}, {}};
      return store->record_image({"docker.io/library/pulled:1", d, std::nullopt, now_rfc3339()}).ok() ? 0 : 6;
    }());
  }
  close(ready[1]);
  char c;
  ASSERT_EQ(read(ready[0], &c, 1), 1);
  close(ready[0]);
  bool waited = false;
  PruneOptions options;
  options.on_wait = [&] { waited = true; };
  auto report = prune_store(s.store(), options);
  int status = 0;
  waitpid(child, &status, 0);
  ASSERT_TRUE(WIFEXITED(status)) << status;
  ASSERT_EQ(WEXITSTATUS(status), 0);
  ASSERT_TRUE(report.ok()) << report.error().message();
  EXPECT_TRUE(waited) << "prune did not wait for the store's other user";
  EXPECT_TRUE(s.store().has_blob(pulled.digest())) << "prune deleted a blob a pull was about to name";
  EXPECT_EQ(report->blobs_deleted, 0u);
  auto found = find_local_image(s.store(), "pulled:1");
  EXPECT_TRUE(found.ok()) << found.error().message();
}

// ---- verify ----

TEST(VerifyStore, ReportsCorruptAndMissingBlobs) {
  TestStore s;
  auto a = s.put("docker.io/library/a:1", {layer("a1"), layer("a2")});
  auto b = s.put("docker.io/library/b:1", {layer("b1")});
  auto clean = verify_store(s.store(), nullptr);
  ASSERT_TRUE(clean.ok());
  EXPECT_TRUE(clean->ok());
  EXPECT_EQ(clean->images_checked, 2u);
  EXPECT_EQ(clean->blobs_checked, blobs_of(s.store()).size());

  // Flip one byte of a layer; remove another image's config.
  fs::path layer_path = s.store().blob_path(a.layers[1]);
  std::string bytes = unpack::testing::slurp(layer_path);
  bytes[bytes.size() / 2] ^= 0x01;
  unpack::testing::write_file(layer_path, bytes);
  ASSERT_EQ(::unlink(s.store().blob_path(b.config).c_str()), 0);

  std::vector<std::string> heard;
  auto report = verify_store(s.store(), [&](const VerifyProblem& p) { heard.push_back(p.message); });
  ASSERT_TRUE(report.ok());
  EXPECT_FALSE(report->ok());
  ASSERT_EQ(report->problems.size(), 2u);
  EXPECT_EQ(report->problems[0].kind, VerifyProblem::Kind::kCorrupt);
  EXPECT_EQ(report->problems[0].message,
            fmt::format("corrupt: {} hashes to {}", a.layers[1].str(), Digest::of(bytes).str()));
  EXPECT_EQ(report->problems[1].kind, VerifyProblem::Kind::kMissing);
  EXPECT_EQ(report->problems[1].message,
            fmt::format("missing: {} (config of docker.io/library/b:1)", b.config.str()));
  EXPECT_EQ(heard.size(), 2u);
}

TEST(VerifyStore, NamesTheLayerAndImageOfAMissingLayer) {
  TestStore s;
  auto a = s.put("docker.io/library/a:1", {layer("a1"), layer("a2")});
  ASSERT_TRUE(s.store().remove_blob(a.layers[0]).ok());
  auto report = verify_store(s.store(), nullptr);
  ASSERT_TRUE(report.ok());
  ASSERT_EQ(report->problems.size(), 1u);
  EXPECT_EQ(report->problems[0].message,
            fmt::format("missing: {} (layer 1 of 2 of docker.io/library/a:1)", a.layers[0].str()));
}

}  // namespace
}  // namespace imgpull
