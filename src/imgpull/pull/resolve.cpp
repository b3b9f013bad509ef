#include "pull/resolve.h"

#include <fmt/format.h>

namespace imgpull {
namespace {

bool is_config_type(std::string_view t) {
  return t == media_type::kDockerConfig || t == media_type::kOciConfig;
}

bool is_layer_type(std::string_view t) {
  return t.starts_with("application/vnd.oci.image.layer.") || t.starts_with("application/vnd.docker.image.rootfs.");
}

}  // namespace

Status check_image_manifest(const ImageManifest& m) {
  if (!is_config_type(m.config.media_type)) {
    return Error(ErrorCode::kUnsupported,
                 fmt::format("not a container image: its config has media type \"{}\"", m.config.media_type));
  }
  for (const auto& layer : m.layers) {
    if (!is_layer_type(layer.media_type)) {
      return Error(ErrorCode::kUnsupported,
                   fmt::format("layer {} has unsupported media type \"{}\"", layer.digest.str(), layer.media_type));
    }
  }
  return {};
}

Result<ResolvedImage> resolve_remote(Registry& registry, const Reference& ref, const Platform& platform) {
  IMGPULL_ASSIGN_OR_RETURN(FetchedManifest top, registry.get_manifest(ref.manifest_selector()));
  auto parsed = parse_manifest(top.bytes, top.content_type);
  if (!parsed) return std::move(parsed).error().wrap("manifest " + top.digest.str());
  if (auto* manifest = std::get_if<ImageManifest>(&*parsed)) {
    return ResolvedImage{std::move(*manifest), std::move(top), std::nullopt};
  }
  auto& index = std::get<ImageIndex>(*parsed);
  IMGPULL_ASSIGN_OR_RETURN(Descriptor chosen, select_platform(index, platform));
  IMGPULL_ASSIGN_OR_RETURN(FetchedManifest child, registry.get_manifest(chosen.digest.str()));
  if (child.bytes.size() != static_cast<size_t>(chosen.size)) {
    return Error(ErrorCode::kCorrupt, fmt::format("manifest {}: the index declares {} bytes, got {}",
                                                  chosen.digest.str(), chosen.size, child.bytes.size()));
  }
  auto child_parsed = parse_manifest(child.bytes, child.content_type);
  if (!child_parsed) return std::move(child_parsed).error().wrap("manifest " + child.digest.str());
  auto* manifest = std::get_if<ImageManifest>(&*child_parsed);
  if (manifest == nullptr) {
    return Error(ErrorCode::kUnsupported,
                 fmt::format("index {} points at another index for {}; nested indexes are not followed",
                             top.digest.str(), platform.str()));
  }
  return ResolvedImage{std::move(*manifest), std::move(child), std::move(top)};
}

std::optional<ResolvedImage> resolve_local(const Store& store, const Reference& ref, const Platform& platform) {
  if (!ref.digest || !store.has_blob(*ref.digest)) return std::nullopt;
  auto read = [&](const Digest& d) -> std::optional<FetchedManifest> {
    auto bytes = store.read_blob(d, kMaxManifestBytes);
    if (!bytes) return std::nullopt;
    return FetchedManifest{std::move(bytes).value(), "", d};
  };
  auto top = read(*ref.digest);
  if (!top) return std::nullopt;
  auto parsed = parse_manifest(top->bytes, "");
  if (!parsed) return std::nullopt;
  std::optional<FetchedManifest> index;
  if (auto* idx = std::get_if<ImageIndex>(&*parsed)) {
    auto chosen = select_platform(*idx, platform);
    if (!chosen || !store.has_blob(chosen->digest)) return std::nullopt;
    auto child = read(chosen->digest);
    if (!child) return std::nullopt;
    parsed = parse_manifest(child->bytes, "");
    if (!parsed || !std::holds_alternative<ImageManifest>(*parsed)) return std::nullopt;
    index = std::move(top);
    top = std::move(child);
  }
  ResolvedImage image{std::get<ImageManifest>(std::move(*parsed)), std::move(*top), std::move(index)};
  if (!store.has_blob(image.manifest.config.digest)) return std::nullopt;
  for (const auto& layer : image.manifest.layers) {
    if (!store.has_blob(layer.digest)) return std::nullopt;
  }
  return image;
}

}  // namespace imgpull
