// Image manifests, indexes and configs: strict parsing of the exact bytes we
// hashed, and choosing a platform from an index.
//
// Docker schema 2 manifests and manifest lists, and OCI manifests and indexes,
// share one shape here: an ImageManifest (config + layers) or an ImageIndex
// (manifests with platforms). Schema 1 is refused with a message saying why.
//
//   IMGPULL_ASSIGN_OR_RETURN(ParsedManifest m, parse_manifest(bytes, content_type));
//   if (auto* index = std::get_if<ImageIndex>(&m)) {
//     IMGPULL_ASSIGN_OR_RETURN(Descriptor d, select_platform(*index, Platform::host()));
//   }
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include <nlohmann/json.hpp>

#include "imgpull/digest.h"
#include "imgpull/error.h"

namespace imgpull {

namespace media_type {
inline constexpr std::string_view kDockerManifest = "application/vnd.docker.distribution.manifest.v2+json";
inline constexpr std::string_view kDockerManifestList =
    "application/vnd.docker.distribution.manifest.list.v2+json";
inline constexpr std::string_view kDockerConfig = "application/vnd.docker.container.image.v1+json";
inline constexpr std::string_view kDockerSchema1 = "application/vnd.docker.distribution.manifest.v1+json";
inline constexpr std::string_view kDockerSchema1Signed =
    "application/vnd.docker.distribution.manifest.v1+prettyjws";
inline constexpr std::string_view kOciManifest = "application/vnd.oci.image.manifest.v1+json";
inline constexpr std::string_view kOciIndex = "application/vnd.oci.image.index.v1+json";
inline constexpr std::string_view kOciConfig = "application/vnd.oci.image.config.v1+json";
inline constexpr std::string_view kOciLayer = "application/vnd.oci.image.layer.v1.tar";
inline constexpr std::string_view kOciLayerGzip = "application/vnd.oci.image.layer.v1.tar+gzip";
inline constexpr std::string_view kOciLayerZstd = "application/vnd.oci.image.layer.v1.tar+zstd";
inline constexpr std::string_view kDockerLayerGzip = "application/vnd.docker.image.rootfs.diff.tar.gzip";
}  // namespace media_type

// The Accept header for manifest requests: every type we parse, so that a
// registry never down-converts to schema 1 (distribution 2.8 does when no
// listed type fits).
std::string manifest_accept_header();

// Manifests are small documents; 4 MiB is the limit containerd and the
// distribution registry both apply, and it bounds what we hold in memory.
inline constexpr size_t kMaxManifestBytes = 4 * 1024 * 1024;
// Image configs carry history and env; big ones are a few hundred KiB.
inline constexpr size_t kMaxConfigBytes = 8 * 1024 * 1024;
// Configs nest a few levels (config.Healthcheck.Test); `inspect` serialises the
// document recursively, so 8 MiB of nested arrays would overflow the stack.
inline constexpr size_t kMaxConfigNesting = 128;

struct Platform {
  std::string os;
  std::string architecture;
  std::string variant;
  std::string os_version;

  // The platform this binary runs on (linux/amd64, linux/arm64/v8, ...).
  static Platform host();
  // "linux/arm64", "linux/arm/v7", "linux/amd64": os/arch[/variant].
  static Result<Platform> parse(std::string_view text);
  std::string str() const;
  // Whether an image built for `offered` runs here (arm64 without a variant
  // is v8, arm without a variant is v7, as containerd normalises).
  bool matches(const Platform& offered) const;
};

struct Descriptor {
  std::string media_type;
  Digest digest;
  int64_t size = 0;
  std::vector<std::string> urls;
  std::map<std::string, std::string> annotations;
  std::optional<Platform> platform;
};

struct ImageManifest {
  std::string media_type;
  Descriptor config;
  std::vector<Descriptor> layers;
};

struct ImageIndex {
  std::string media_type;
  std::vector<Descriptor> manifests;
};

using ParsedManifest = std::variant<ImageManifest, ImageIndex>;

// Parses a manifest or index. `content_type` is the response's Content-Type;
// it decides the type when the document has no mediaType (umoci writes none)
// and must agree with it when both are present.
Result<ParsedManifest> parse_manifest(std::string_view bytes, std::string_view content_type);

// An OCI index or a Docker manifest list.
bool is_index_media_type(std::string_view media_type);

// The descriptor in `index` whose platform matches `wanted`; the error lists
// what the index offers.
Result<Descriptor> select_platform(const ImageIndex& index, const Platform& wanted);

struct HistoryEntry {
  std::string created;
  std::string created_by;
  std::string comment;
  bool empty_layer = false;
};

struct ImageConfig {
  std::string created;  // RFC 3339, "" when absent
  Platform platform;
  std::vector<Digest> diff_ids;
  std::vector<HistoryEntry> history;
  nlohmann::json raw;  // the whole document, for `inspect`
};

Result<ImageConfig> parse_config(std::string_view bytes);

// Serialises a descriptor as the OCI spec writes it (for index.json and for
// the OCI manifest we store beside a Docker one).
nlohmann::json descriptor_to_json(const Descriptor& descriptor);
Result<Descriptor> descriptor_from_json(const nlohmann::json& json);

// An OCI image manifest with the same config and layer blobs as `manifest`
// (a Docker schema 2 one): media types mapped, blobs unchanged, so OCI tools
// (skopeo, umoci) can read an image that came from a Docker registry.
std::string to_oci_manifest(const ImageManifest& manifest);

}  // namespace imgpull
