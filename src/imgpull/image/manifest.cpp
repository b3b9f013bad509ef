#include "imgpull/manifest.h"

#include <fmt/format.h>
#include <sys/utsname.h>

#include <algorithm>

namespace imgpull {
namespace {

using nlohmann::json;

Error corrupt(std::string what) { return Error(ErrorCode::kCorrupt, std::move(what)); }

std::string string_field(const json& object, const char* key) {
  auto it = object.find(key);
  return it != object.end() && it->is_string() ? it->get<std::string>() : "";
}

// As string_field: a missing field, or one of another type, reads as false.
// (json::value(key, false) would throw on a non-boolean, ending the process.)
bool bool_field(const json& object, const char* key) {
  auto it = object.find(key);
  return it != object.end() && it->is_boolean() && it->get<bool>();
}

bool is_manifest_type(std::string_view t) {
  return t == media_type::kDockerManifest || t == media_type::kOciManifest;
}
bool is_index_type(std::string_view t) {
  return t == media_type::kDockerManifestList || t == media_type::kOciIndex;
}

// "application/vnd.oci.image.manifest.v1+json; charset=utf-8" -> the type.
std::string_view strip_parameters(std::string_view content_type) {
  auto semi = content_type.find(';');
  std::string_view t = content_type.substr(0, semi);
  while (!t.empty() && t.back() == ' ') t.remove_suffix(1);
  return t;
}

// The deepest nesting of arrays and objects in a JSON text (brackets inside
// strings do not count); the text need not be valid JSON.
size_t json_nesting_depth(std::string_view text) {
  size_t depth = 0, deepest = 0;
  bool in_string = false, escaped = false;
  for (char c : text) {
    if (in_string) {
      if (escaped) {
        escaped = false;
      } else if (c == '\\') {
        escaped = true;
      } else if (c == '"') {
        in_string = false;
      }
    } else if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      deepest = std::max(deepest, ++depth);
    } else if ((c == ']' || c == '}') && depth > 0) {
      --depth;
    }
  }
  return deepest;
}

Result<Platform> platform_from_json(const json& j) {
  if (!j.is_object()) return corrupt("platform is not an object");
  Platform p{string_field(j, "os"), string_field(j, "architecture"), string_field(j, "variant"),
             string_field(j, "os.version")};
  return p;
}

std::string normalise_arch(std::string_view arch) {
  if (arch == "x86_64" || arch == "x86-64") return "amd64";
  if (arch == "aarch64") return "arm64";
  return std::string(arch);
}

std::string normalise_variant(std::string_view arch, std::string_view variant) {
  if (arch == "arm64" && (variant.empty() || variant == "8")) return "v8";
  if (arch == "arm" && variant.empty()) return "v7";
  if (arch == "arm" && variant.size() == 1) return "v" + std::string(variant);
  return std::string(variant);
}

Result<std::vector<Descriptor>> descriptor_list(const json& doc, const char* key) {
  std::vector<Descriptor> out;
  const json& list = doc.at(key);
  if (!list.is_array()) return corrupt(fmt::format("\"{}\" is not an array", key));
  for (size_t i = 0; i < list.size(); ++i) {
    auto d = descriptor_from_json(list[i]);
    if (!d) return std::move(d).error().wrap(fmt::format("{}[{}]", key, i));
    out.push_back(std::move(d).value());
  }
  return out;
}

}  // namespace

std::string manifest_accept_header() {
  return fmt::format("{}, {}, {}, {}", media_type::kOciIndex, media_type::kOciManifest,
                     media_type::kDockerManifestList, media_type::kDockerManifest);
}

Platform Platform::host() {
  struct utsname u {};
  uname(&u);
  Platform p;
  p.os = "linux";
  p.architecture = normalise_arch(u.machine);
  if (p.architecture == "arm64") p.variant = "v8";
  if (std::string_view(u.machine).starts_with("armv7")) {
    p.architecture = "arm";
    p.variant = "v7";
  }
  return p;
}

Result<Platform> Platform::parse(std::string_view text) {
  Platform p;
  std::vector<std::string> parts;
  size_t start = 0;
  while (true) {
    auto slash = text.find('/', start);
    parts.emplace_back(text.substr(start, slash - start));
    if (slash == std::string_view::npos) break;
    start = slash + 1;
  }
  bool empty_part = false;
  for (const auto& part : parts) empty_part |= part.empty();
  if (parts.size() < 2 || parts.size() > 3 || empty_part) {
    return Error(ErrorCode::kInvalidArgument,
                 fmt::format("invalid platform \"{}\": expected os/arch[/variant], e.g. linux/arm64",
                             text));
  }
  p.os = parts[0];
  p.architecture = normalise_arch(parts[1]);
  if (parts.size() == 3) p.variant = parts[2];
  return p;
}

std::string Platform::str() const {
  std::string s = os + "/" + architecture;
  if (!variant.empty()) s += "/" + variant;
  return s;
}

bool Platform::matches(const Platform& offered) const {
  if (os != offered.os) return false;
  std::string arch = normalise_arch(architecture);
  if (arch != normalise_arch(offered.architecture)) return false;
  std::string want = normalise_variant(arch, variant);
  // Asking for no variant takes any variant of the architecture (except where
  // a default applies, handled by normalise_variant).
  if (want.empty()) return true;
  return want == normalise_variant(arch, offered.variant);
}

Result<Descriptor> descriptor_from_json(const json& j) {
  if (!j.is_object()) return corrupt("descriptor is not an object");
  auto digest_it = j.find("digest");
  if (digest_it == j.end() || !digest_it->is_string()) return corrupt("descriptor has no digest");
  auto digest = Digest::parse(digest_it->get<std::string>());
  if (!digest) return corrupt("descriptor digest: " + digest.error().message());
  auto size_it = j.find("size");
  if (size_it == j.end() || !size_it->is_number_integer() || size_it->get<int64_t>() < 0) {
    return corrupt(fmt::format("descriptor {} has no valid size", digest->str()));
  }
  Descriptor d{string_field(j, "mediaType"), *digest, size_it->get<int64_t>(), {}, {}, {}};
  if (auto urls = j.find("urls"); urls != j.end()) {
    if (!urls->is_array()) return corrupt("descriptor urls is not an array");
    for (const auto& u : *urls) {
      if (!u.is_string()) return corrupt("descriptor url is not a string");
      d.urls.push_back(u.get<std::string>());
    }
  }
  if (auto ann = j.find("annotations"); ann != j.end() && ann->is_object()) {
    for (const auto& [k, v] : ann->items()) {
      if (v.is_string()) d.annotations[k] = v.get<std::string>();
    }
  }
  if (auto plat = j.find("platform"); plat != j.end()) {
    IMGPULL_ASSIGN_OR_RETURN(d.platform, platform_from_json(*plat));
  }
  return d;
}

json descriptor_to_json(const Descriptor& d) {
  json j = {{"mediaType", d.media_type}, {"digest", d.digest.str()}, {"size", d.size}};
  if (!d.urls.empty()) j["urls"] = d.urls;
  if (!d.annotations.empty()) j["annotations"] = d.annotations;
  if (d.platform) {
    json p = {{"os", d.platform->os}, {"architecture", d.platform->architecture}};
    if (!d.platform->variant.empty()) p["variant"] = d.platform->variant;
    if (!d.platform->os_version.empty()) p["os.version"] = d.platform->os_version;
    j["platform"] = p;
  }
  return j;
}

Result<ParsedManifest> parse_manifest(std::string_view bytes, std::string_view content_type) {
  if (bytes.size() > kMaxManifestBytes) {
    return Error(ErrorCode::kTooLarge, fmt::format("manifest of {} bytes is over the {} byte limit",
                                                   bytes.size(), kMaxManifestBytes));
  }
  json doc = json::parse(bytes, nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded() || !doc.is_object()) return corrupt("manifest is not a JSON object");

  std::string_view header_type = strip_parameters(content_type);
  std::string body_type = string_field(doc, "mediaType");
  auto schema = doc.find("schemaVersion");
  if (header_type == media_type::kDockerSchema1 || header_type == media_type::kDockerSchema1Signed ||
      body_type == media_type::kDockerSchema1 || body_type == media_type::kDockerSchema1Signed ||
      (schema != doc.end() && *schema == 1)) {
    return Error(ErrorCode::kUnsupported,
                 "this is a Docker schema 1 manifest, which is deprecated and not supported; "
                 "push the image again with a current client to get a schema 2 or OCI manifest");
  }
  if (schema == doc.end() || *schema != 2) return corrupt("manifest schemaVersion is not 2");

  bool has_layers = doc.contains("layers");
  bool has_manifests = doc.contains("manifests");
  if (has_layers && has_manifests) {
    return corrupt("ambiguous document: it has both \"layers\" (a manifest) and \"manifests\" (an index)");
  }
  // A registry's Content-Type and the document's own mediaType must agree;
  // generic JSON types say nothing either way.
  bool header_is_specific = is_manifest_type(header_type) || is_index_type(header_type);
  if (!body_type.empty() && header_is_specific && body_type != header_type) {
    return corrupt(fmt::format("mediaType \"{}\" disagrees with Content-Type \"{}\"", body_type,
                               header_type));
  }
  std::string type = !body_type.empty() ? body_type
                     : header_is_specific ? std::string(header_type)
                     : has_manifests     ? std::string(media_type::kOciIndex)
                                         : std::string(media_type::kOciManifest);

  if (is_index_type(type)) {
    if (has_layers || !has_manifests) return corrupt(fmt::format("{} without \"manifests\"", type));
    IMGPULL_ASSIGN_OR_RETURN(auto manifests, descriptor_list(doc, "manifests"));
    return ParsedManifest(ImageIndex{type, std::move(manifests)});
  }
  if (!is_manifest_type(type)) {
    return Error(ErrorCode::kUnsupported, fmt::format("unsupported manifest media type \"{}\"", type));
  }
  if (has_manifests || !has_layers || !doc.contains("config")) {
    return corrupt(fmt::format("{} needs \"config\" and \"layers\"", type));
  }
  auto config = descriptor_from_json(doc["config"]);
  if (!config) return std::move(config).error().wrap("config");
  IMGPULL_ASSIGN_OR_RETURN(auto layers, descriptor_list(doc, "layers"));
  return ParsedManifest(ImageManifest{type, std::move(config).value(), std::move(layers)});
}

bool is_index_media_type(std::string_view media_type) { return is_index_type(media_type); }

Result<Descriptor> select_platform(const ImageIndex& index, const Platform& wanted) {
  std::vector<std::string> offered;
  for (const auto& d : index.manifests) {
    if (!d.platform) continue;
    if (wanted.matches(*d.platform)) return d;
    offered.push_back(d.platform->str());
  }
  std::string list;
  for (const auto& p : offered) list += (list.empty() ? "" : ", ") + p;
  return Error(ErrorCode::kNotFound,
               fmt::format("no image for platform {} in the index; it offers: {}", wanted.str(),
                           list.empty() ? "no platforms" : list));
}

Result<ImageConfig> parse_config(std::string_view bytes) {
  if (bytes.size() > kMaxConfigBytes) {
    return Error(ErrorCode::kTooLarge, fmt::format("image config of {} bytes is over the {} byte limit",
                                                   bytes.size(), kMaxConfigBytes));
  }
  if (json_nesting_depth(bytes) > kMaxConfigNesting) {
    return corrupt(fmt::format("image config nests deeper than {} levels", kMaxConfigNesting));
  }
  json doc = json::parse(bytes, nullptr, false);
  if (doc.is_discarded() || !doc.is_object()) return corrupt("image config is not a JSON object");
  ImageConfig config;
  config.created = string_field(doc, "created");
  config.platform = Platform{string_field(doc, "os"), string_field(doc, "architecture"),
                             string_field(doc, "variant"), string_field(doc, "os.version")};
  auto rootfs = doc.find("rootfs");
  if (rootfs == doc.end() || !rootfs->is_object() || !rootfs->contains("diff_ids") ||
      !(*rootfs)["diff_ids"].is_array()) {
    return corrupt("image config has no rootfs.diff_ids");
  }
  for (const auto& id : (*rootfs)["diff_ids"]) {
    if (!id.is_string()) return corrupt("image config diff_id is not a string");
    auto d = Digest::parse(id.get<std::string>());
    if (!d) return corrupt("image config diff_id: " + d.error().message());
    config.diff_ids.push_back(*d);
  }
  if (auto history = doc.find("history"); history != doc.end() && history->is_array()) {
    for (const auto& h : *history) {
      if (!h.is_object()) continue;
      config.history.push_back(HistoryEntry{string_field(h, "created"), string_field(h, "created_by"),
                                            string_field(h, "comment"),
                                            bool_field(h, "empty_layer")});
    }
  }
  config.raw = std::move(doc);
  return config;
}

std::string to_oci_manifest(const ImageManifest& manifest) {
  auto map_type = [](const std::string& t) -> std::string {
    if (t == media_type::kDockerConfig) return std::string(media_type::kOciConfig);
    if (t == media_type::kDockerLayerGzip) return std::string(media_type::kOciLayerGzip);
    if (t == "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip")
      return "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip";
    return t;
  };
  json doc = {{"schemaVersion", 2}, {"mediaType", media_type::kOciManifest}};
  Descriptor config = manifest.config;
  config.media_type = map_type(config.media_type);
  doc["config"] = descriptor_to_json(config);
  doc["layers"] = json::array();
  for (Descriptor layer : manifest.layers) {
    layer.media_type = map_type(layer.media_type);
    doc["layers"].push_back(descriptor_to_json(layer));
  }
  return doc.dump();
}

}  // namespace imgpull
