#include "unpack/warnings.h"

#include <fmt/format.h>

#include <algorithm>
#include <vector>

#include "unpack/rootless_owner.h"  // kRootlessOwnerXattr

namespace imgpull::unpack {

void UnappliedTally::owner_recorded() {
  std::lock_guard lock(mutex_);
  ++owners_recorded_;
}

void UnappliedTally::unapplied(const std::string& what, std::string_view why) {
  std::lock_guard lock(mutex_);
  Count& count = unapplied_[what];
  ++count.n;
  if (count.why.empty()) count.why = why;
}

std::optional<std::string> UnappliedTally::summary() const {
  std::lock_guard lock(mutex_);
  if (owners_recorded_ == 0 && unapplied_.empty()) return std::nullopt;
  std::string line = "not running as root:";
  if (owners_recorded_ > 0) {
    line += fmt::format(" the image's owners of {} {} kept in {} only;", owners_recorded_,
                        owners_recorded_ == 1 ? "entry" : "entries", kRootlessOwnerXattr);
  }
  if (!unapplied_.empty()) {
    // Things with the same reason are listed together, the reason said once.
    std::vector<std::pair<std::string, std::vector<std::string>>> by_reason;
    for (const auto& [what, count] : unapplied_) {
      const std::string& why = count.why;  // clang 14 cannot capture a structured binding
      auto same = std::find_if(by_reason.begin(), by_reason.end(),
                               [&](const auto& group) { return group.first == why; });
      if (same == by_reason.end()) same = by_reason.insert(by_reason.end(), {count.why, {}});
      same->second.push_back(fmt::format("{} {}{}", count.n, what, count.n == 1 ? "" : "s"));
    }
    line += " not applied:";
    const char* separator = " ";
    for (const auto& [why, items] : by_reason) {
      line += separator + fmt::format("{}", fmt::join(items, " and "));
      if (!why.empty()) line += " (" + why + ")";
      separator = ", ";
    }
  } else {
    line.pop_back();  // the ';'
  }
  return line;
}

}  // namespace imgpull::unpack
