// Warnings from applying one layer, each said once: a layer with ten thousand
// files carrying an xattr the filesystem refuses gets one line, not ten
// thousand (as tar says "skipping device nodes" once).
//
//   Warnings warnings(options.warn, options.unapplied.get());
//   warnings.once("aufs", "ignoring aufs metadata such as \".wh..wh.plnk\"");
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <string_view>

namespace imgpull::unpack {

// What an unpack could not apply for lack of privilege, counted over all the
// layers of an image, for one summary line at the end instead of a warning
// per layer. Layers are applied one after another, but by the pull's applier
// thread while another thread reads the summary: hence the lock.
class UnappliedTally {
 public:
  void owner_recorded();
  // One more `what` (a singular noun: "device node", "symlink owner",
  // "security.capability xattr"); `why` says once, in the summary, what became
  // of them.
  void unapplied(const std::string& what, std::string_view why = {});
  // "not running as root: the image's owners of 120 entries kept in
  // user.rootlesscontainers only; not applied: 2 device nodes (empty files in
  // their place, ...), 1 fifo owner and 3 symlink owners (...)", or nothing
  // when there is nothing to say.
  std::optional<std::string> summary() const;

 private:
  struct Count {
    uint64_t n = 0;
    std::string why;
  };
  mutable std::mutex mutex_;
  uint64_t owners_recorded_ = 0;
  std::map<std::string, Count> unapplied_;
};

class Warnings {
 public:
  explicit Warnings(std::function<void(std::string_view)> sink, UnappliedTally* tally = nullptr)
      : sink_(std::move(sink)), tally_(tally) {}

  // Says `message` unless something was already said under `key`.
  void once(const std::string& key, std::string_view message) {
    if (!said_.insert(key).second) return;
    if (sink_) sink_(message);
  }

  // Something the image says that needs privileges we lack (a device node, a
  // security.* xattr). With a tally it is counted there as one more `what`, for
  // one line after the last layer; else said once as `message`.
  void unapplied(const std::string& what, std::string_view why, std::string_view message) {
    if (tally_ != nullptr) {
      tally_->unapplied(what, why);
    } else {
      once(what, message);
    }
  }

  UnappliedTally* tally() const { return tally_; }

 private:
  std::function<void(std::string_view)> sink_;
  UnappliedTally* tally_;
  std::set<std::string> said_;
};

}  // namespace imgpull::unpack
