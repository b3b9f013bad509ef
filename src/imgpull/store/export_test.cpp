#include "imgpull/export.h"

#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <map>
#include <thread>

#include "testing/images.h"

namespace imgpull {
namespace {
namespace fs = std::filesystem;
using testing::ImageOptions;
using testing::tar_of;
using testing::TestLayer;
using testing::TestStore;
using unpack::testing::TempDir;

// Every entry of a tar file, by name ("dir/" for directories).
std::map<std::string, std::string> read_tar(const fs::path& path) {
  std::map<std::string, std::string> entries;
  archive* a = archive_read_new();
  archive_read_support_format_tar(a);
  EXPECT_EQ(archive_read_open_filename(a, path.c_str(), 1 << 16), ARCHIVE_OK) << archive_error_string(a);
  archive_entry* entry = nullptr;
  while (archive_read_next_header(a, &entry) == ARCHIVE_OK) {
    std::string data;
    char buf[1 << 16];
    la_ssize_t n;
    while ((n = archive_read_data(a, buf, sizeof buf)) > 0) data.append(buf, static_cast<size_t>(n));
    entries[archive_entry_pathname(entry)] = data;
  }
  archive_read_free(a);
  return entries;
}

std::vector<ExportImage> named(TestStore& s, const std::vector<std::string>& texts) {
  std::vector<FoundImage> found;
  for (const auto& t : texts) {
    auto f = find_local_image(s.store(), t);
    EXPECT_TRUE(f.ok()) << t << ": " << f.error().message();
    found.push_back(std::move(f).value());
  }
  return group_for_export(found);
}

TEST(ChainIds, FollowTheImageSpec) {
  Digest a = Digest::of("a"), b = Digest::of("b"), c = Digest::of("c");
  auto chains = chain_ids({a, b, c});
  ASSERT_EQ(chains.size(), 3u);
  EXPECT_EQ(chains[0], a);
  EXPECT_EQ(chains[1], Digest::of(a.str() + " " + b.str()));
  EXPECT_EQ(chains[2], Digest::of(chains[1].str() + " " + c.str()));
}

TEST(GroupForExport, OneEntryPerImageWithEveryNameGiven) {
  TestStore s;
  auto a = s.put("docker.io/library/a:1", {TestLayer::gzipped(tar_of({{"a", "a"}}))});
  ASSERT_TRUE(tag_image(s.store(), *s.store().load_image(a.record), "a:2").ok());
  s.put("docker.io/library/b:1", {TestLayer::gzipped(tar_of({{"b", "b"}}))});
  auto images = named(s, {"a:1", "b:1", "a:2", "a:1", a.config.short_hex()});
  ASSERT_EQ(images.size(), 2u);
  ASSERT_EQ(images[0].records.size(), 2u);
  EXPECT_EQ(images[0].records[0].name, "docker.io/library/a:1");
  EXPECT_EQ(images[0].records[1].name, "docker.io/library/a:2");
  EXPECT_EQ(images[1].records[0].name, "docker.io/library/b:1");
  EXPECT_TRUE(named(s, {a.config.str()})[0].records.empty()) << "by ID: no names, as docker save";
}

TEST(DockerArchive, ClassicLayoutWithUncompressedLayers) {
  TestStore s;
  TestLayer base = TestLayer::gzipped(tar_of({{"etc/os-release", "ID=test\n"}}));
  TestLayer zstd = TestLayer::zstd(tar_of({{"usr/bin/app", "#!/bin/sh\n"}}));
  TestLayer plain = TestLayer::uncompressed(tar_of({{"srv/data", "data"}}));
  auto app = s.put("localhost:5000/team/app:1.0", {base, zstd, plain});
  auto other = s.put("docker.io/library/other:latest", {base});
  TempDir out("export-test");
  fs::path file = out.path() / "images.tar";
  Status saved = save_archive(s.store(), named(s, {"localhost:5000/team/app:1.0", "other"}),
                              ArchiveFormat::kDocker, file);
  ASSERT_TRUE(saved.ok()) << saved.error().message();
  EXPECT_EQ(std::distance(fs::directory_iterator(out.path()), fs::directory_iterator()), 1) << "no temporary left";

  auto entries = read_tar(file);
  auto manifest = nlohmann::json::parse(entries.at("manifest.json"));
  ASSERT_EQ(manifest.size(), 2u);
  auto chains = chain_ids({base.diff_id(), zstd.diff_id(), plain.diff_id()});
  EXPECT_EQ(manifest[0]["Config"], app.config.hex() + ".json");
  EXPECT_EQ(manifest[0]["RepoTags"], nlohmann::json({"localhost:5000/team/app:1.0"}));
  EXPECT_EQ(manifest[0]["Layers"], nlohmann::json({chains[0].hex() + "/layer.tar", chains[1].hex() + "/layer.tar",
                                                   chains[2].hex() + "/layer.tar"}));
  EXPECT_EQ(manifest[1]["RepoTags"], nlohmann::json({"other:latest"}));
  EXPECT_EQ(manifest[1]["Layers"], nlohmann::json({chains[0].hex() + "/layer.tar"})) << "shared base, one copy";

  // Each layer.tar is the uncompressed stream the config's diffID names.
  EXPECT_EQ(entries.at(chains[0].hex() + "/layer.tar"), base.tar);
  EXPECT_EQ(entries.at(chains[1].hex() + "/layer.tar"), zstd.tar);
  EXPECT_EQ(entries.at(chains[2].hex() + "/layer.tar"), plain.tar);
  EXPECT_EQ(entries.at(chains[1].hex() + "/VERSION"), "1.0");
  EXPECT_EQ(nlohmann::json::parse(entries.at(chains[1].hex() + "/json"))["parent"], chains[0].hex());
  EXPECT_EQ(Digest::of(entries.at(app.config.hex() + ".json")), app.config);
  EXPECT_EQ(Digest::of(entries.at(other.config.hex() + ".json")), other.config);
  auto repositories = nlohmann::json::parse(entries.at("repositories"));
  EXPECT_EQ(repositories["localhost:5000/team/app"]["1.0"], chains[2].hex());
  EXPECT_EQ(repositories["other"]["latest"], chains[0].hex());
}

TEST(DockerArchive, RefusesALayerThatIsNotWhatTheConfigSays) {
  TestStore s;
  TestLayer layer = TestLayer::gzipped(tar_of({{"a", "a"}}));
  s.put("docker.io/library/liar:1", {layer}, ImageOptions().with_diff_ids({Digest::of("something else")}));
  TempDir out("export-test");
  fs::path file = out.path() / "liar.tar";
  Status saved = save_archive(s.store(), named(s, {"liar:1"}), ArchiveFormat::kDocker, file);
  ASSERT_FALSE(saved.ok());
  EXPECT_EQ(saved.error().code(), ErrorCode::kCorrupt);
  EXPECT_NE(saved.error().message().find("saving docker.io/library/liar:1: layer " + layer.digest().str()),
            std::string::npos)
      << saved.error().message();
  EXPECT_NE(saved.error().message().find("expected diff_id " + Digest::of("something else").str()),
            std::string::npos);
  EXPECT_TRUE(fs::is_empty(out.path())) << "a failed save leaves nothing behind";
}

TEST(DockerArchive, ByIdHasNoRepoTags) {
  TestStore s;
  auto a = s.put("docker.io/library/a:1", {TestLayer::gzipped(tar_of({{"a", "a"}}))});
  TempDir out("export-test");
  ASSERT_TRUE(save_archive(s.store(), named(s, {a.config.short_hex()}), ArchiveFormat::kDocker, out.path() / "a.tar").ok());
  auto entries = read_tar(out.path() / "a.tar");
  EXPECT_TRUE(nlohmann::json::parse(entries.at("manifest.json"))[0]["RepoTags"].is_null());
  EXPECT_FALSE(entries.contains("repositories"));
}

TEST(OciLayout, HoldsJustTheNamedImagesAndReadsAsAStore) {
  TestStore s;
  TestLayer shared = TestLayer::gzipped(tar_of({{"shared", "s"}}));
  auto a = s.put("docker.io/library/a:1", {shared}, ImageOptions().with_docker_manifest());
  auto b = s.put("docker.io/library/b:1", {shared, TestLayer::gzipped(tar_of({{"b", "b"}}))});
  s.put("docker.io/library/not-saved:1", {TestLayer::gzipped(tar_of({{"c", "c"}}))});
  TempDir out("export-test");
  fs::path dir = out.path() / "layout";
  Status saved = save_oci_layout(s.store(), named(s, {"a:1", "b:1"}), dir);
  ASSERT_TRUE(saved.ok()) << saved.error().message();

  std::set<std::string> blobs;
  for (const auto& e : fs::directory_iterator(dir / "blobs/sha256")) blobs.insert(e.path().filename());
  std::set<std::string> expected{a.record.manifest.digest.hex(), a.docker_manifest->hex(), a.config.hex(),
                                 b.record.manifest.digest.hex(), b.config.hex(),        b.layers[0].hex(),
                                 b.layers[1].hex()};
  EXPECT_EQ(blobs, expected);
  EXPECT_EQ(unpack::testing::slurp(dir / "oci-layout"), R"({"imageLayoutVersion":"1.0.0"})");
  auto index = nlohmann::json::parse(unpack::testing::slurp(dir / "index.json"));
  EXPECT_EQ(index["manifests"][0]["annotations"]["org.opencontainers.image.ref.name"], "docker.io/library/a:1");
  EXPECT_EQ(index["manifests"][0]["annotations"]["io.containerd.image.name"], "docker.io/library/a:1");

  auto exported = Store::open(dir);
  ASSERT_TRUE(exported.ok());
  auto images = exported->list_images();
  ASSERT_EQ(images->size(), 2u);
  EXPECT_EQ((*images)[0].repo_digest, a.docker_manifest);
  auto verified = verify_store(*exported, nullptr);
  ASSERT_TRUE(verified.ok());
  EXPECT_TRUE(verified->ok());

  Status again = save_oci_layout(s.store(), named(s, {"a:1"}), dir);
  ASSERT_FALSE(again.ok()) << "an existing layout is not merged into";
  EXPECT_NE(again.error().message().find("not an empty directory"), std::string::npos);
}

TEST(OciArchive, IsTheLayoutAsATar) {
  TestStore s;
  auto a = s.put("docker.io/library/a:1", {TestLayer::gzipped(tar_of({{"a", "a"}}))});
  TempDir out("export-test");
  ASSERT_TRUE(save_archive(s.store(), named(s, {"a:1"}), ArchiveFormat::kOci, out.path() / "a.tar").ok());
  auto entries = read_tar(out.path() / "a.tar");
  EXPECT_TRUE(entries.contains("oci-layout"));
  EXPECT_TRUE(entries.contains("index.json"));
  for (const auto& d : {a.record.manifest.digest, a.config, a.layers[0]}) {
    ASSERT_TRUE(entries.contains("blobs/sha256/" + d.hex())) << d.str();
    EXPECT_EQ(Digest::of(entries.at("blobs/sha256/" + d.hex())), d);
  }
}

TEST(OciArchive, RefusesACorruptBlob) {
  TestStore s;
  auto a = s.put("docker.io/library/a:1", {TestLayer::gzipped(tar_of({{"a", "a"}}))});
  std::string bytes = unpack::testing::slurp(s.store().blob_path(a.layers[0]));
  bytes[bytes.size() / 2] ^= 0x01;
  unpack::testing::write_file(s.store().blob_path(a.layers[0]), bytes);
  TempDir out("export-test");
  Status saved = save_archive(s.store(), named(s, {"a:1"}), ArchiveFormat::kOci, out.path() / "a.tar");
  ASSERT_FALSE(saved.ok());
  EXPECT_EQ(saved.error().code(), ErrorCode::kCorrupt);
  EXPECT_NE(saved.error().message().find(a.layers[0].str()), std::string::npos) << saved.error().message();
  EXPECT_TRUE(fs::is_empty(out.path()));
}

TEST(DockerArchive, WritesToAPipe) {
  TestStore s;
  s.put("docker.io/library/a:1", {TestLayer::gzipped(tar_of({{"a", "a"}}))});
  auto images = named(s, {"a:1"});
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  std::string received;
  std::thread reader([&] {
    char buf[4096];
    ssize_t n;
    while ((n = read(fds[0], buf, sizeof buf)) > 0) received.append(buf, static_cast<size_t>(n));
  });
  Status written = write_archive(s.store(), images, ArchiveFormat::kDocker, fds[1]);
  close(fds[1]);
  reader.join();
  close(fds[0]);
  ASSERT_TRUE(written.ok()) << written.error().message();
  TempDir out("export-test");
  unpack::testing::write_file(out.path() / "piped.tar", received);
  EXPECT_TRUE(read_tar(out.path() / "piped.tar").contains("manifest.json"));
}

}  // namespace
}  // namespace imgpull
