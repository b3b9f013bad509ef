// Who an image's process runs as: the config's User ("name", "uid",
// "name:group", "uid:gid", "" for root) resolved in the image's own
// /etc/passwd and /etc/group, as runc and Docker resolve it (moby/sys/user's
// GetExecUser):
//  - a number is a uid, whether or not passwd has it; a name must be in passwd;
//  - the primary group is passwd's (0 for a uid passwd lacks), unless the spec
//    names one: a number is a gid, a name must be in /etc/group;
//  - supplementary groups are the /etc/group entries listing the user's name,
//    only when the spec names no group;
//  - "" is uid 0 looked up in passwd (root's group, home, supplementary groups);
//  - a missing file is an empty one: only numbers resolve then;
//  - a uid or gid that passwd or group do not give must be in 0..2^31-1.
// Where moby is lax we are not: a line whose id field is not a number is
// skipped (moby reads it as id 0, so a stray line could pose as root), and
// '#' comments are skipped in passwd as they are in group (glibc does both).
//
//   IMGPULL_ASSIGN_OR_RETURN(ExecUser user, resolve_exec_user("www-data", passwd, group));
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "imgpull/error.h"

namespace imgpull::bundle {

struct PasswdEntry {
  std::string name;
  uint32_t uid = 0;
  uint32_t gid = 0;
  std::string home;
};

struct GroupEntry {
  std::string name;
  uint32_t gid = 0;
  std::vector<std::string> members;
};

// name:password:uid:gid:gecos:home:shell, one a line.
std::vector<PasswdEntry> parse_passwd(std::string_view text);
// name:password:gid:member,member, one a line.
std::vector<GroupEntry> parse_group(std::string_view text);

struct ExecUser {
  uint32_t uid = 0;
  uint32_t gid = 0;
  std::vector<uint32_t> additional_gids;
  std::string home;  // "" when passwd does not say
};

// `passwd` and `group` are the files' contents; nullopt when the image has none.
// kNotFound for a name the files do not have, kInvalidArgument for an id out of range.
Result<ExecUser> resolve_exec_user(std::string_view spec, const std::optional<std::string>& passwd,
                                   const std::optional<std::string>& group);

}  // namespace imgpull::bundle
