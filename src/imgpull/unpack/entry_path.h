// What a tar entry's name means inside the rootfs: its cleaned path
// components, and whether it is a whiteout.
//
// Names are cleaned lexically, as containerd does (filepath.Join("/", name)):
// leading "/" and "./" go, empty and "." components go, and ".." removes the
// component before it but never climbs above the root (it is clamped there).
// So "../../etc/passwd", "/etc/passwd" and "etc/x/../passwd" all name
// etc/passwd in the root. Symlinks are not looked at here: PathResolver
// follows them, inside the root, when the parent directory is opened.
//
//   PathComponents p = clean_entry_path("./usr/../etc/.wh.motd");   // {"etc", ".wh.motd"}
//   Whiteout w = classify_whiteout(p.back());                        // kRemove, target "motd"
#pragma once

#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace imgpull::unpack {

using PathComponents = std::vector<std::string>;

// Empty result: the name is the root itself ("", ".", "/", "..", "a/..").
PathComponents clean_entry_path(std::string_view name);

// "a/b/c"; "" for no components.
std::string join_components(std::span<const std::string> components);

inline constexpr std::string_view kWhiteoutPrefix = ".wh.";
inline constexpr std::string_view kWhiteoutMetaPrefix = ".wh..wh.";
inline constexpr std::string_view kOpaqueWhiteout = ".wh..wh..opq";

enum class WhiteoutKind {
  kNone,     // an ordinary name
  kRemove,   // ".wh.NAME": remove NAME from the lower layers
  kOpaque,   // ".wh..wh..opq": empty the directory of what lower layers put there
  kMeta,     // another ".wh..wh." name (aufs bookkeeping such as .wh..wh.plnk): ignored
  kInvalid,  // ".wh.", ".wh..", ".wh...": would name the directory itself or its parent
};

struct Whiteout {
  WhiteoutKind kind = WhiteoutKind::kNone;
  std::string target;  // for kRemove: the name to remove, in the same directory
};

Whiteout classify_whiteout(std::string_view base_name);

}  // namespace imgpull::unpack
