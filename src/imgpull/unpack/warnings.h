// Warnings from applying one layer, each said once: a layer with ten thousand
// files carrying an xattr the filesystem refuses gets one line, not ten
// thousand (as tar says "skipping device nodes" once).
//
//   Warnings warnings(options.warn);
//   warnings.once("devices", "skipping device nodes: not running as root");
#pragma once

#include <functional>
#include <set>
#include <string>
#include <string_view>

namespace imgpull::unpack {

class Warnings {
 public:
  explicit Warnings(std::function<void(std::string_view)> sink) : sink_(std::move(sink)) {}

  // Says `message` unless something was already said under `key`.
  void once(const std::string& key, std::string_view message) {
    if (!said_.insert(key).second) return;
    if (sink_) sink_(message);
  }

 private:
  std::function<void(std::string_view)> sink_;
  std::set<std::string> said_;
};

}  // namespace imgpull::unpack
