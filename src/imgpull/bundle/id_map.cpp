#include "bundle/id_map.h"

#include <pwd.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <cstdlib>
#include <optional>
#include <fstream>
#include <limits>
#include <sstream>

namespace imgpull::bundle {
namespace {

// (uint32_t)-1 is no id: the last valid one is one below.
constexpr uint64_t kNoId = std::numeric_limits<uint32_t>::max();

std::optional<uint32_t> parse_u32(std::string_view s) {
  uint32_t value = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), value);
  if (s.empty() || ec != std::errc() || end != s.data() + s.size()) return std::nullopt;
  return value;
}

bool maps(const std::vector<IdMapping>& mappings, uint32_t id) {
  for (const IdMapping& m : mappings) {
    if (id >= m.container_id && id - m.container_id < m.size) return true;
  }
  return false;
}

// /etc/subuid is small (a line per user); anything unreadable reads as empty, as
// the system then gives the user no subordinate ids either.
std::string read_small_file(const char* path) {
  std::ifstream in(path);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

// What exec.LookPath (runc) finds: an executable file `name` in a $PATH directory.
bool in_path(const std::string& name) {
  const char* path = std::getenv("PATH");
  std::string_view dirs = path != nullptr ? path : "/usr/local/bin:/usr/bin:/bin";
  size_t start = 0;
  while (start <= dirs.size()) {
    size_t colon = dirs.find(':', start);
    if (colon == std::string_view::npos) colon = dirs.size();
    std::string dir(dirs.substr(start, colon - start));
    if (!dir.empty() && access((dir + "/" + name).c_str(), X_OK) == 0) return true;
    start = colon + 1;
  }
  return false;
}

std::string user_name(uid_t uid) {
  std::vector<char> buf(16 * 1024);
  passwd pw{};
  passwd* found = nullptr;
  if (getpwuid_r(uid, &pw, buf.data(), buf.size(), &found) != 0 || found == nullptr) return {};
  return found->pw_name;
}

std::vector<IdMapping> mappings_for(uint32_t id, const char* helper, const char* file, const std::string& name) {
  if (!in_path(helper)) return rootless_mappings(id, {});
  return rootless_mappings(id, parse_subordinate_ids(read_small_file(file), name, id));
}

}  // namespace

std::vector<SubordinateRange> parse_subordinate_ids(std::string_view text, std::string_view name, uint32_t id) {
  std::vector<SubordinateRange> ranges;
  std::string id_text = std::to_string(id);
  size_t start = 0;
  while (start < text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string_view::npos) end = text.size();
    std::string_view line = text.substr(start, end - start);
    start = end + 1;
    size_t first = line.find(':');
    size_t second = first == std::string_view::npos ? first : line.find(':', first + 1);
    if (second == std::string_view::npos) continue;
    std::string_view owner = line.substr(0, first);
    if (owner.empty() || (owner != name && owner != id_text)) continue;
    auto range_start = parse_u32(line.substr(first + 1, second - first - 1));
    auto count = parse_u32(line.substr(second + 1));
    if (range_start && count && *count > 0) ranges.push_back(SubordinateRange{*range_start, *count});
  }
  return ranges;
}

std::vector<IdMapping> rootless_mappings(uint32_t id, std::span<const SubordinateRange> ranges) {
  std::vector<IdMapping> mappings{IdMapping{0, id, 1}};
  uint64_t next = 1;  // the next container id
  for (const SubordinateRange& range : ranges) {
    if (mappings.size() == kMaxIdMapLines) break;
    if (id >= range.start && id - range.start < range.count) continue;
    if (uint64_t{range.start} + range.count > kNoId) continue;  // no such host ids
    uint64_t room = kNoId - next;
    uint32_t size = static_cast<uint32_t>(std::min<uint64_t>(range.count, room));
    if (size == 0) break;
    mappings.push_back(IdMapping{static_cast<uint32_t>(next), range.start, size});
    next += size;
  }
  return mappings;
}

bool UserNamespace::maps_uid(uint32_t container_id) const { return maps(uids, container_id); }
bool UserNamespace::maps_gid(uint32_t container_id) const { return maps(gids, container_id); }

UserNamespace caller_user_namespace() {
  uid_t uid = geteuid();
  std::string name = user_name(uid);
  UserNamespace ns;
  ns.uids = mappings_for(uid, "newuidmap", "/etc/subuid", name);
  ns.gids = mappings_for(getegid(), "newgidmap", "/etc/subgid", name);
  return ns;
}

}  // namespace imgpull::bundle
