#include "pull/resolve.h"

#include <fmt/format.h>

#include <functional>
#include <variant>

#include "imgpull/client.h"  // store_name_for

namespace imgpull {
namespace {

bool is_config_type(std::string_view t) {
  return t == media_type::kDockerConfig || t == media_type::kOciConfig;
}

bool is_layer_type(std::string_view t) {
  return t.starts_with("application/vnd.oci.image.layer.") || t.starts_with("application/vnd.docker.image.rootfs.");
}

// Where the documents below the top-level one come from, by digest.
using ManifestReader = std::function<Result<FetchedManifest>(const Digest&)>;

// A document from the store, checked against its digest as it is read. The
// registry's Content-Type is not kept; the document's own mediaType (or its
// shape, for umoci's documents that have none) says what it is, as when it
// was first parsed.
Result<FetchedManifest> read_stored(const Store& store, const Digest& digest) {
  IMGPULL_ASSIGN_OR_RETURN(std::string bytes, store.read_blob(digest, kMaxManifestBytes));
  return FetchedManifest{std::move(bytes), "", digest};
}

// What an index offers, for the message when nothing in it fits:
// "linux/amd64, linux/arm64/v8, an index with no platform (sha256:...)".
std::string offers(const ImageIndex& index) {
  std::string list;
  for (const auto& d : index.manifests) {
    std::string entry = d.platform ? d.platform->str()
                                   : fmt::format("{} with no platform ({})",
                                                 is_index_media_type(d.media_type) ? "an index" : "a manifest",
                                                 d.digest.str());
    list += (list.empty() ? "" : ", ") + entry;
  }
  return list.empty() ? "nothing" : list;
}

// The entry of `index` to follow for `platform`: the first whose platform
// matches; else, as containerd does, the first index without a platform
// (its own entries say which platforms it serves). One path, as containerd
// walks: an index that leads nowhere is not backtracked from, so the
// requests a resolution makes are bounded by kMaxIndexDepth.
std::optional<Descriptor> entry_for(const ImageIndex& index, const Platform& platform) {
  if (auto chosen = select_platform(index, platform); chosen.ok()) return *chosen;
  for (const auto& d : index.manifests) {
    if (!d.platform && is_index_media_type(d.media_type)) return d;
  }
  return std::nullopt;
}

std::string join(const std::vector<std::string>& parts, std::string_view separator) {
  std::string out;
  for (const auto& p : parts) out += (out.empty() ? "" : std::string(separator)) + p;
  return out;
}

// From `top` down through any indexes to the image manifest for `platform`.
Result<ResolvedImage> follow(FetchedManifest top, const Platform& platform, const ManifestReader& read) {
  std::vector<FetchedManifest> indexes;
  std::vector<std::string> offered;  // by each index level, for the message when nothing fits
  FetchedManifest current = std::move(top);
  while (true) {
    auto parsed = parse_manifest(current.bytes, current.content_type);
    if (!parsed) return std::move(parsed).error().wrap("manifest " + current.digest.str());
    if (auto* manifest = std::get_if<ImageManifest>(&*parsed)) {
      return ResolvedImage{std::move(*manifest), std::move(current), std::move(indexes)};
    }
    const auto& index = std::get<ImageIndex>(*parsed);
    offered.push_back(fmt::format("index {} offers: {}", current.digest.str(), offers(index)));
    if (indexes.size() >= kMaxIndexDepth) {
      return Error(ErrorCode::kUnsupported,
                   fmt::format("indexes nest deeper than {} levels, which imgpull does not follow: {}",
                               kMaxIndexDepth, join(offered, "; ")));
    }
    auto entry = entry_for(index, platform);
    if (!entry) {
      return Error(ErrorCode::kNotFound,
                   fmt::format("no image for platform {}: {}", platform.str(), join(offered, "; ")));
    }
    indexes.push_back(std::move(current));
    IMGPULL_ASSIGN_OR_RETURN(current, read(entry->digest));
    if (current.bytes.size() != static_cast<size_t>(entry->size)) {
      return Error(ErrorCode::kCorrupt, fmt::format("manifest {}: index {} declares {} bytes, got {}",
                                                    entry->digest.str(), indexes.back().digest.str(), entry->size,
                                                    current.bytes.size()));
    }
  }
}

// Whether the store has an image under the reference's name (what an
// up-to-date pull finds unchanged). A store it cannot read has none.
bool has_record(const Store& store, const Reference& ref) {
  auto record = store.find_image(store_name_for(ref));
  return record.ok() && record->has_value();
}

// The document a tag names now. Its digest comes from a HEAD, which a
// rate limit counting manifest GETs does not count; when the HEAD says
// nothing usable, the document itself is fetched by tag.
using TaggedDocument = std::variant<Digest, FetchedManifest>;  // its digest, or the document itself
Result<TaggedDocument> tagged_document(Registry& registry, const Reference& ref) {
  const std::string selector = ref.manifest_selector();
  auto head = registry.head_manifest(selector);
  if (head.ok() && head->size && *head->size > kMaxManifestBytes) {
    return Error(ErrorCode::kTooLarge, fmt::format("manifest {}: the registry declares {} bytes, over the limit of {}",
                                                   selector, *head->size, kMaxManifestBytes));
  }
  if (head.ok() && head->digest) return TaggedDocument(*head->digest);
  // A registry that cannot be reached, or keeps failing or refusing with
  // 429, would answer a GET no better (and the GET would count); any other
  // refusal (404, 401, 405 to a HEAD it does not serve) is asked again with
  // GET, whose body carries the registry's own explanation.
  if (!head.ok()) {
    ErrorCode code = head.error().code();
    if (code == ErrorCode::kUnavailable || code == ErrorCode::kCancelled || code == ErrorCode::kTls) {
      return std::move(head).error();
    }
  }
  IMGPULL_ASSIGN_OR_RETURN(FetchedManifest document, registry.get_manifest(selector));
  return TaggedDocument(std::move(document));
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

Result<ResolvedImage> resolve_remote(Registry& registry, const Store& store, const Reference& ref,
                                     const Platform& platform) {
  // A document the store holds (an index another platform's pull fetched,
  // the manifest of an image pulled under another name) is not fetched again.
  ManifestReader read = [&](const Digest& digest) -> Result<FetchedManifest> {
    if (store.has_blob(digest)) {
      if (auto stored = read_stored(store, digest); stored.ok()) return stored;
    }
    return registry.get_manifest(digest.str());
  };
  std::optional<Digest> top = ref.digest;
  if (!top && !has_record(store, ref)) {
    // Nothing under this name yet: a HEAD could only say what the GET that
    // follows it says, a round trip later. The document is fetched by tag.
    IMGPULL_ASSIGN_OR_RETURN(FetchedManifest document, registry.get_manifest(ref.manifest_selector()));
    return follow(std::move(document), platform, read);
  }
  if (!top) {
    IMGPULL_ASSIGN_OR_RETURN(auto document, tagged_document(registry, ref));
    if (auto* fetched = std::get_if<FetchedManifest>(&document)) return follow(std::move(*fetched), platform, read);
    top = std::get<Digest>(document);
    // Unchanged since the last pull: the store has it all, and not one
    // manifest GET is spent.
    if (auto local = resolve_local(store, *top, platform)) return std::move(*local);
  }
  IMGPULL_ASSIGN_OR_RETURN(FetchedManifest document, read(*top));
  return follow(std::move(document), platform, read);
}

std::optional<ResolvedImage> resolve_local(const Store& store, const Digest& top, const Platform& platform) {
  if (!store.has_blob(top)) return std::nullopt;
  auto document = read_stored(store, top);
  if (!document) return std::nullopt;
  auto image = follow(std::move(document).value(), platform,
                      [&](const Digest& digest) { return read_stored(store, digest); });
  if (!image || !store.has_blob(image->manifest.config.digest)) return std::nullopt;
  for (const auto& layer : image->manifest.layers) {
    if (!store.has_blob(layer.digest)) return std::nullopt;
  }
  return std::move(image).value();
}

}  // namespace imgpull
