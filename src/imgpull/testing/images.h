// Test helpers for images_test.cpp and export_test.cpp (header-only: only
// *_test.cpp include it): images written straight into a temporary store,
// with real tar layers, configs and manifests, and no registry.
//
//   TestStore s;
//   TestLayer base = TestLayer::gzipped(tar_of({{"etc/os-release", "ID=test\n"}}));
//   TestImage a = s.put("docker.io/library/a:1", {base});
#pragma once

#include <gtest/gtest.h>

#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "imgpull/manifest.h"
#include "imgpull/store.h"
#include "testing/layers.h"

namespace imgpull::testing {

using unpack::testing::TarBuilder;
using unpack::testing::TempDir;

// A tar of regular files, in the order of the map.
inline std::string tar_of(const std::map<std::string, std::string>& files) {
  TarBuilder tar;
  for (const auto& [name, data] : files) tar.file(name, data);
  return tar.finish();
}

struct TestLayer {
  std::string tar;   // the uncompressed stream: its digest is the diffID
  std::string blob;  // what the store holds
  std::string media_type;

  static TestLayer gzipped(std::string tar) {
    std::string blob = unpack::testing::gzip(tar);
    return {std::move(tar), std::move(blob), std::string(media_type::kOciLayerGzip)};
  }
  static TestLayer zstd(std::string tar) {
    std::string blob = unpack::testing::zstd(tar);
    return {std::move(tar), std::move(blob), std::string(media_type::kOciLayerZstd)};
  }
  static TestLayer uncompressed(std::string tar) {
    std::string blob = tar;
    return {std::move(tar), std::move(blob), std::string(media_type::kOciLayer)};
  }
  Digest digest() const { return Digest::of(blob); }
  Digest diff_id() const { return Digest::of(tar); }
  Descriptor descriptor() const {
    return Descriptor{media_type, digest(), static_cast<int64_t>(blob.size()), {}, {}, {}};
  }
};

struct TestImage {
  ImageRecord record;
  Digest config;
  std::vector<Digest> layers;
  std::optional<Digest> docker_manifest;  // the registry's manifest, when pushed as Docker schema 2
};

struct ImageOptions {
  std::string created = "2024-01-02T03:04:05Z";
  // One entry per layer ("RUN step N") when unset, plus an empty-layer CMD.
  std::optional<nlohmann::json> history;
  // Also store a Docker schema 2 manifest of the same blobs and make it the
  // repo digest, as a pull from a Docker registry does.
  bool docker_manifest = false;
  // Overrides the diffIDs the config lists (to make a lying config).
  std::optional<std::vector<Digest>> diff_ids;

  ImageOptions& with_created(std::string c) { created = std::move(c); return *this; }
  ImageOptions& with_history(nlohmann::json h) { history = std::move(h); return *this; }
  ImageOptions& with_docker_manifest() { docker_manifest = true; return *this; }
  ImageOptions& with_diff_ids(std::vector<Digest> d) { diff_ids = std::move(d); return *this; }
};

// One entry per layer ("RUN step N"), plus an empty-layer CMD.
inline nlohmann::json default_history(size_t layers, const std::string& created) {
  nlohmann::json history = nlohmann::json::array();
  for (size_t i = 0; i < layers; ++i) {
    history.push_back({{"created", created}, {"created_by", "RUN step " + std::to_string(i + 1)}});
  }
  history.push_back({{"created", created}, {"created_by", "CMD [\"/bin/sh\"]"}, {"empty_layer", true}});
  return history;
}

// An image's config and its OCI manifest, as a registry or a store holds them.
struct ImageDocuments {
  std::string config;     // the config blob
  ImageManifest manifest;  // config descriptor + the layers' descriptors
};

inline ImageDocuments image_documents(const std::vector<TestLayer>& layers, const ImageOptions& options = {}) {
  nlohmann::json diff_ids = nlohmann::json::array();
  if (options.diff_ids) {
    for (const auto& d : *options.diff_ids) diff_ids.push_back(d.str());
  } else {
    for (const auto& l : layers) diff_ids.push_back(l.diff_id().str());
  }
  nlohmann::json history = options.history.value_or(default_history(layers.size(), options.created));
  nlohmann::json config = {{"created", options.created},
                           {"architecture", "amd64"},
                           {"os", "linux"},
                           {"config", {{"Cmd", {"/bin/sh"}}, {"Env", {"PATH=/bin"}}}},
                           {"rootfs", {{"type", "layers"}, {"diff_ids", diff_ids}}},
                           {"history", history}};
  std::string config_bytes = config.dump();
  Descriptor config_desc{std::string(media_type::kOciConfig), Digest::of(config_bytes),
                         static_cast<int64_t>(config_bytes.size()), {}, {}, {}};
  ImageDocuments docs{std::move(config_bytes), ImageManifest{std::string(media_type::kOciManifest), config_desc, {}}};
  for (const auto& l : layers) docs.manifest.layers.push_back(l.descriptor());
  return docs;
}

class TestStore {
 public:
  TestStore() : dir_("images-test"), store_(open(dir_.path())) {}

  Store& store() { return store_; }
  const std::filesystem::path& root() const { return dir_.path(); }

  TestImage put(const std::string& name, const std::vector<TestLayer>& layers, const ImageOptions& options = {}) {
    ImageDocuments docs = image_documents(layers, options);
    put_blob(docs.config);
    ImageManifest manifest = docs.manifest;
    std::vector<Digest> layer_digests;
    for (const auto& l : layers) {
      put_blob(l.blob);
      layer_digests.push_back(l.digest());
    }
    const Descriptor& config_desc = manifest.config;
    std::string oci = to_oci_manifest(manifest);
    put_blob(oci);
    Descriptor named{std::string(media_type::kOciManifest), Digest::of(oci), static_cast<int64_t>(oci.size()), {},
                     {}, Platform{"linux", "amd64", "", ""}};
    std::optional<Digest> repo_digest = named.digest;
    std::optional<Digest> docker_manifest;
    if (options.docker_manifest) {
      std::string docker = docker_manifest_of(manifest);
      put_blob(docker);
      docker_manifest = repo_digest = Digest::of(docker);
    }
    TestImage image{ImageRecord{name, named, repo_digest, "2024-02-03T04:05:06Z"}, config_desc.digest,
                    std::move(layer_digests), docker_manifest};
    EXPECT_TRUE(store_.record_image(image.record).ok());
    return image;
  }

  void put_blob(const std::string& bytes) {
    Status st = store_.write_blob(Digest::of(bytes), bytes);
    ASSERT_TRUE(st.ok()) << st.error().message();
  }

 private:
  static Store open(const std::filesystem::path& root) {
    auto store = Store::open(root);
    if (!store) throw std::runtime_error(store.error().message());
    return std::move(store).value();
  }

  static std::string docker_manifest_of(const ImageManifest& m) {
    nlohmann::json doc = {{"schemaVersion", 2}, {"mediaType", media_type::kDockerManifest}};
    Descriptor config = m.config;
    config.media_type = media_type::kDockerConfig;
    doc["config"] = descriptor_to_json(config);
    doc["layers"] = nlohmann::json::array();
    for (Descriptor l : m.layers) {
      l.media_type = media_type::kDockerLayerGzip;
      doc["layers"].push_back(descriptor_to_json(l));
    }
    return doc.dump();
  }

  TempDir dir_;
  Store store_;
};

}  // namespace imgpull::testing
