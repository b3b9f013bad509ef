#include "bundle/exec_user.h"

#include <fmt/format.h>

#include <algorithm>
#include <charconv>

#include "base/text.h"

namespace imgpull::bundle {
namespace {

// Ids that are not in passwd or group must fit a signed 32-bit id, as moby
// checks them (for 32-bit systems' sake).
constexpr uint64_t kMaxId = (uint64_t{1} << 31) - 1;

std::vector<std::string_view> split(std::string_view s, char separator) {
  std::vector<std::string_view> parts;
  size_t start = 0;
  for (;;) {
    size_t end = s.find(separator, start);
    parts.push_back(s.substr(start, end == std::string_view::npos ? end : end - start));
    if (end == std::string_view::npos) return parts;
    start = end + 1;
  }
}

// The lines of a passwd or group file worth reading, split into fields.
template <typename Visit>
void for_each_record(std::string_view text, Visit visit) {
  for (std::string_view line : split(text, '\n')) {
    line = trim_space(line);
    if (line.empty() || line.front() == '#') continue;
    visit(split(line, ':'));
  }
}

// A decimal id; nullopt for anything else (a sign, a space, too large for 32 bits).
std::optional<uint64_t> parse_id(std::string_view s) {
  uint64_t value = 0;
  if (s.empty() || s.size() > 10) return std::nullopt;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), value);
  if (ec != std::errc() || end != s.data() + s.size() || value > UINT32_MAX) return std::nullopt;
  return value;
}

std::string_view field(const std::vector<std::string_view>& fields, size_t i) {
  return i < fields.size() ? fields[i] : std::string_view();
}

Result<uint32_t> id_in_range(uint64_t id, std::string_view what, std::string_view spec) {
  if (id > kMaxId) {
    return Error(ErrorCode::kInvalidArgument,
                 fmt::format("user \"{}\": {} {} is out of range (0 to {})", spec, what, id, kMaxId));
  }
  return static_cast<uint32_t>(id);
}

}  // namespace

std::vector<PasswdEntry> parse_passwd(std::string_view text) {
  std::vector<PasswdEntry> entries;
  for_each_record(text, [&](const std::vector<std::string_view>& fields) {
    auto uid = parse_id(field(fields, 2));
    auto gid = parse_id(field(fields, 3));
    if (!uid || !gid) return;
    entries.push_back(PasswdEntry{std::string(fields[0]), static_cast<uint32_t>(*uid),
                                  static_cast<uint32_t>(*gid), std::string(field(fields, 5))});
  });
  return entries;
}

std::vector<GroupEntry> parse_group(std::string_view text) {
  std::vector<GroupEntry> entries;
  for_each_record(text, [&](const std::vector<std::string_view>& fields) {
    auto gid = parse_id(field(fields, 2));
    if (!gid) return;
    GroupEntry entry{std::string(fields[0]), static_cast<uint32_t>(*gid), {}};
    std::string_view members = field(fields, 3);
    if (!members.empty()) {
      for (std::string_view member : split(members, ',')) entry.members.emplace_back(member);
    }
    entries.push_back(std::move(entry));
  });
  return entries;
}

Result<ExecUser> resolve_exec_user(std::string_view spec, const std::optional<std::string>& passwd,
                                   const std::optional<std::string>& group) {
  std::vector<std::string_view> parts = split(spec, ':');
  std::string_view user_arg = parts[0];
  std::string_view group_arg = field(parts, 1);
  std::optional<uint64_t> uid_arg = parse_id(user_arg);
  std::optional<uint64_t> gid_arg = parse_id(group_arg);

  ExecUser user;
  std::vector<PasswdEntry> users = passwd ? parse_passwd(*passwd) : std::vector<PasswdEntry>{};
  // First match wins, as in moby.
  auto found = std::find_if(users.begin(), users.end(), [&](const PasswdEntry& u) {
    if (user_arg.empty()) return u.uid == 0;
    if (uid_arg) return u.uid == *uid_arg;
    return u.name == user_arg;
  });
  std::string matched_name;
  if (found != users.end()) {
    matched_name = found->name;
    user.uid = found->uid;
    user.gid = found->gid;
    user.home = found->home;
  } else if (!user_arg.empty()) {
    if (!uid_arg) {
      return Error(ErrorCode::kNotFound,
                   fmt::format("user \"{}\": no user \"{}\" in the image's /etc/passwd{}", spec, user_arg,
                               passwd ? "" : " (it has none)"));
    }
    IMGPULL_ASSIGN_OR_RETURN(user.uid, id_in_range(*uid_arg, "uid", spec));
  }

  if (group_arg.empty() && matched_name.empty()) return user;
  std::vector<GroupEntry> groups = group ? parse_group(*group) : std::vector<GroupEntry>{};
  if (!group_arg.empty()) {
    auto named = std::find_if(groups.begin(), groups.end(), [&](const GroupEntry& g) {
      return gid_arg ? g.gid == *gid_arg : g.name == group_arg;
    });
    if (named != groups.end()) {
      user.gid = named->gid;
    } else if (gid_arg) {
      IMGPULL_ASSIGN_OR_RETURN(user.gid, id_in_range(*gid_arg, "gid", spec));
    } else {
      return Error(ErrorCode::kNotFound,
                   fmt::format("user \"{}\": no group \"{}\" in the image's /etc/group{}", spec, group_arg,
                               group ? "" : " (it has none)"));
    }
    return user;
  }
  for (const GroupEntry& g : groups) {
    if (std::find(g.members.begin(), g.members.end(), matched_name) != g.members.end()) {
      user.additional_gids.push_back(g.gid);
    }
  }
  return user;
}

}  // namespace imgpull::bundle
