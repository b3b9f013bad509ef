// Whiteouts: removing from the rootfs what lower layers put there.
//
// A layer's whiteouts apply to the layers below it only (OCI image-spec,
// "Whiteouts"): "a/.wh.b" removes the lower a/b, "a/.wh..wh..opq" empties the
// lower a, and neither touches what the same layer adds, whichever order the
// tar has them in (an opaque marker often comes after the directory's new
// entries). So the applier records each path the layer creates in LayerPaths,
// and the removal here keeps those (and the directories leading to them) while
// removing everything else under the whited-out path.
//
//   LayerPaths added;
//   added.add("etc/new.conf");
//   IMGPULL_TRY(remove_lower_children(etc.get(), "etc", added));  // etc/ keeps only new.conf
#pragma once

#include <set>
#include <string>

#include "imgpull/error.h"

namespace imgpull::unpack {

// The cleaned paths ("a/b") one layer has created so far.
class LayerPaths {
 public:
  void add(std::string path) { paths_.insert(std::move(path)); }
  bool contains(const std::string& path) const { return paths_.count(path) > 0; }
  // True if an added path lies below `path`.
  bool has_descendant(const std::string& path) const;

 private:
  std::set<std::string> paths_;
};

// Removes what lower layers put at `name` in the directory `dir_fd`, `path` being its
// path in the rootfs: all of it, or, if this layer added `path` or something below it,
// everything below it except what this layer added.
Status remove_lower(int dir_fd, const std::string& name, const std::string& path,
                    const LayerPaths& added);

// Removes from the directory `dir_fd` (at `dir_path`) everything lower layers put there.
Status remove_lower_children(int dir_fd, const std::string& dir_path, const LayerPaths& added);

}  // namespace imgpull::unpack
