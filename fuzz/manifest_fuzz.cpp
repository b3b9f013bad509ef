// Fuzzes parse_manifest (manifests and indexes) and parse_config.
//
// The first input byte picks the Content-Type the registry "sent" (the
// document decides the type with it); the rest is the document, given to
// parse_manifest and to parse_config. Properties:
//  - a parsed manifest has a manifest media type, a parsed index an index
//    type, agreeing with a specific Content-Type;
//  - every descriptor has a valid digest whose hex length fits its algorithm
//    and a size >= 0, and survives descriptor_to_json -> descriptor_from_json;
//  - to_oci_manifest of a manifest parses as an OCI manifest with the same
//    blobs (digests, sizes, urls, annotations) in the same order;
//  - select_platform answers only with a descriptor whose platform matches;
//  - a parsed config's diff_ids are valid digests, and the document dumps
//    (as `imgpull inspect` does) and parses back equal.
// Refusals must be errors, never exceptions (nlohmann::json throws on type
// mismatches; an exception escaping is a crash here and in imgpull).
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <variant>

#include "fuzz/fuzz_check.h"
#include "imgpull/manifest.h"

namespace {

using namespace imgpull;

constexpr std::string_view kContentTypes[] = {
    "",
    "application/json",
    media_type::kOciManifest,
    media_type::kOciIndex,
    media_type::kDockerManifest,
    media_type::kDockerManifestList,
    media_type::kDockerSchema1Signed,
    "application/vnd.oci.image.manifest.v1+json; charset=utf-8",
};

bool valid_digest(const Digest& d) {
  size_t want = d.algorithm() == DigestAlgorithm::kSha256 ? 64 : 128;
  if (d.hex().size() != want) return false;
  for (char c : d.hex()) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  auto again = Digest::parse(d.str());
  return again.ok() && *again == d;
}

bool same_platform(const std::optional<Platform>& a, const std::optional<Platform>& b) {
  if (a.has_value() != b.has_value()) return false;
  if (!a) return true;
  return a->os == b->os && a->architecture == b->architecture && a->variant == b->variant &&
         a->os_version == b->os_version;
}

bool same_blob(const Descriptor& a, const Descriptor& b) {
  return a.digest == b.digest && a.size == b.size && a.urls == b.urls &&
         a.annotations == b.annotations && same_platform(a.platform, b.platform);
}

void check_descriptor(const Descriptor& d) {
  FUZZ_CHECK(valid_digest(d.digest)) << d.digest.str();
  FUZZ_CHECK(d.size >= 0) << d.size;
  auto again = descriptor_from_json(descriptor_to_json(d));
  FUZZ_CHECK(again.ok()) << again.error().message();
  FUZZ_CHECK(same_blob(*again, d) && again->media_type == d.media_type) << d.digest.str();
}

void check_manifest(const ImageManifest& m, std::string_view header_type) {
  FUZZ_CHECK(m.media_type == media_type::kOciManifest ||
             m.media_type == media_type::kDockerManifest)
      << m.media_type;
  if (header_type.starts_with(media_type::kOciManifest) ||
      header_type == media_type::kDockerManifest) {
    FUZZ_CHECK(header_type.starts_with(m.media_type)) << m.media_type << " vs " << header_type;
  }
  check_descriptor(m.config);
  for (const Descriptor& layer : m.layers) check_descriptor(layer);

  std::string oci = to_oci_manifest(m);
  auto reparsed = parse_manifest(oci, media_type::kOciManifest);
  FUZZ_CHECK(reparsed.ok()) << reparsed.error().message() << "\n" << oci;
  const auto* again = std::get_if<ImageManifest>(&*reparsed);
  FUZZ_CHECK(again != nullptr);
  FUZZ_CHECK(again->media_type == media_type::kOciManifest);
  FUZZ_CHECK(same_blob(again->config, m.config));
  FUZZ_CHECK(again->layers.size() == m.layers.size());
  for (size_t i = 0; i < m.layers.size(); ++i) FUZZ_CHECK(same_blob(again->layers[i], m.layers[i]));
}

void check_index(const ImageIndex& index, std::string_view header_type) {
  FUZZ_CHECK(index.media_type == media_type::kOciIndex ||
             index.media_type == media_type::kDockerManifestList)
      << index.media_type;
  if (header_type == media_type::kOciIndex || header_type == media_type::kDockerManifestList) {
    FUZZ_CHECK(index.media_type == header_type);
  }
  for (const Descriptor& d : index.manifests) check_descriptor(d);
  for (const Platform& wanted : {Platform::host(), Platform{"linux", "arm", "", ""},
                                 Platform{"linux", "arm64", "v8", ""}}) {
    auto chosen = select_platform(index, wanted);
    if (chosen) {
      FUZZ_CHECK(chosen->platform && wanted.matches(*chosen->platform));
    } else {
      FUZZ_CHECK(chosen.error().code() == ErrorCode::kNotFound);
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  std::string_view content_type = kContentTypes[data[0] % std::size(kContentTypes)];
  std::string_view doc(reinterpret_cast<const char*>(data + 1), size - 1);

  auto parsed = parse_manifest(doc, content_type);
  if (parsed) {
    if (const auto* m = std::get_if<ImageManifest>(&*parsed)) {
      check_manifest(*m, content_type);
    } else {
      check_index(std::get<ImageIndex>(*parsed), content_type);
    }
  } else {
    auto code = parsed.error().code();
    FUZZ_CHECK(code == ErrorCode::kCorrupt || code == ErrorCode::kUnsupported ||
               code == ErrorCode::kTooLarge)
        << parsed.error().message();
  }

  auto config = parse_config(doc);
  if (config) {
    for (const Digest& d : config->diff_ids) FUZZ_CHECK(valid_digest(d)) << d.str();
    FUZZ_CHECK(config->raw.is_object());
    // `imgpull inspect` serialises the document (raw.dump()); it must survive
    // that and read back the same.
    std::string dumped = config->raw.dump();
    FUZZ_CHECK(nlohmann::json::parse(dumped, nullptr, false) == config->raw) << dumped;
  } else {
    FUZZ_CHECK(config.error().code() == ErrorCode::kCorrupt ||
               config.error().code() == ErrorCode::kTooLarge)
        << config.error().message();
  }
  return 0;
}
