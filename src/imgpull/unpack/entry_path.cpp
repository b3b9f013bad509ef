#include "unpack/entry_path.h"

namespace imgpull::unpack {

PathComponents clean_entry_path(std::string_view name) {
  PathComponents out;
  while (!name.empty()) {
    size_t slash = name.find('/');
    std::string_view part = name.substr(0, slash);
    name = slash == std::string_view::npos ? std::string_view() : name.substr(slash + 1);
    if (part.empty() || part == ".") continue;
    if (part == "..") {
      if (!out.empty()) out.pop_back();  // at the root, ".." stays at the root
      continue;
    }
    out.emplace_back(part);
  }
  return out;
}

std::string join_components(std::span<const std::string> components) {
  std::string out;
  for (const auto& part : components) {
    if (!out.empty()) out += '/';
    out += part;
  }
  return out;
}

Whiteout classify_whiteout(std::string_view base_name) {
  if (base_name == kOpaqueWhiteout) return {WhiteoutKind::kOpaque, ""};
  if (base_name.starts_with(kWhiteoutMetaPrefix)) return {WhiteoutKind::kMeta, ""};
  if (!base_name.starts_with(kWhiteoutPrefix)) return {WhiteoutKind::kNone, ""};
  std::string_view target = base_name.substr(kWhiteoutPrefix.size());
  if (target.empty() || target == "." || target == "..") return {WhiteoutKind::kInvalid, ""};
  return {WhiteoutKind::kRemove, std::string(target)};
}

}  // namespace imgpull::unpack
