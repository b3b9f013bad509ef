// The user namespace of a rootless container. The caller's uid and gid become
// root in it, as `runc spec --rootless` makes them; where the system gives the
// caller subordinate ids (/etc/subuid, /etc/subgid) and the setuid helpers that
// apply them are installed (newuidmap, newgidmap: Debian's uidmap), those ids
// become 1, 2, ... too, so that an image running as another user (nginx's 101,
// www-data's 33) starts. Without them only root exists in the container.
//
//   UserNamespace ns = caller_user_namespace();
//   if (!ns.maps_uid(101)) warn("...");
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace imgpull::bundle {

// The kernel takes at most 340 lines in a uid_map or gid_map (Linux 4.15 on).
inline constexpr size_t kMaxIdMapLines = 340;

struct IdMapping {
  uint32_t container_id = 0;
  uint32_t host_id = 0;
  uint32_t size = 0;
  bool operator==(const IdMapping&) const = default;
};

struct SubordinateRange {
  uint32_t start = 0;
  uint32_t count = 0;
  bool operator==(const SubordinateRange&) const = default;
};

// The ranges of a subuid or subgid file ("name:start:count" lines) that belong to
// the user `name` or to the numeric `id`, as newuidmap matches them, in file order.
std::vector<SubordinateRange> parse_subordinate_ids(std::string_view text, std::string_view name, uint32_t id);

// `id` as 0, then `ranges` from container id 1 on; a range holding `id` itself is
// left out (a host id may be mapped once), so are ranges past kMaxIdMapLines or
// past the last container id.
std::vector<IdMapping> rootless_mappings(uint32_t id, std::span<const SubordinateRange> ranges);

struct UserNamespace {
  std::vector<IdMapping> uids;
  std::vector<IdMapping> gids;
  bool maps_uid(uint32_t container_id) const;
  bool maps_gid(uint32_t container_id) const;
};

// For the calling user (effective ids): subordinate ranges only when the helper
// for them (newuidmap, newgidmap) is found in $PATH, as runc looks for it.
UserNamespace caller_user_namespace();

}  // namespace imgpull::bundle
