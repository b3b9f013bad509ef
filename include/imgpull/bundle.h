// OCI runtime bundles: what `imgpull pull --bundle DIR` and `imgpull unpack
// --bundle DIR` make, and runc or crun start as they are (`cd DIR && runc run
// ID`): the image's root filesystem in DIR/rootfs and, in DIR/config.json,
// the runtime configuration made from the image config (the command, its
// environment, working directory and user, looked up in the image's own
// /etc/passwd and /etc/group; hostname; the labels as annotations) on runc's
// `spec` template. Not run as root, the configuration is rootless: a user
// namespace mapping the caller to root, as `runc spec --rootless` writes it.
//
//   imgpull::PullRequest request;
//   request.bundle = "/srv/web";
//   request.bundle_options.cmd = std::vector<std::string>{"nginx", "-g", "daemon off;"};
//   auto pulled = client->pull("nginx:latest", request);   // then: cd /srv/web && runc run web1
#pragma once

#include <optional>
#include <string>
#include <vector>

namespace imgpull {

struct BundleOptions {
  // Replaces the image's Cmd, its Entrypoint kept, as `docker run IMAGE CMD...`
  // does; empty: the image's Cmd.
  std::optional<std::vector<std::string>> cmd;
};

}  // namespace imgpull
