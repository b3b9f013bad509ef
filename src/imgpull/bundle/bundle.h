// Making an OCI runtime bundle (include/imgpull/bundle.h): the directory and,
// once its rootfs is made by the pull or the unpack, config.json.
//
//   IMGPULL_ASSIGN_OR_RETURN(fs::path rootfs, prepare_bundle_dir(dir, force));
//   ... make the rootfs in `rootfs` ...
//   IMGPULL_TRY(write_bundle_config(dir, image.config, options, warn));
//
// pull_bundle and unpack_bundle do all of it for the Client.
#pragma once

#include <filesystem>
#include <functional>
#include <string_view>

#include "imgpull/bundle.h"
#include "imgpull/client.h"
#include "imgpull/error.h"
#include "imgpull/manifest.h"
#include "imgpull/reference.h"

namespace imgpull::bundle {

// /etc/passwd and /etc/group of an image are read whole; big directories dumped
// into them stay well under this.
inline constexpr size_t kMaxAccountFileBytes = 16 * 1024 * 1024;

inline constexpr const char* kRootfsName = "rootfs";
inline constexpr const char* kConfigName = "config.json";

// Creates `dir` if missing and refuses one with anything in it unless `force`
// (with it, the pull replaces rootfs/ and config.json). Returns where the rootfs goes:
// dir/rootfs, itself made beside its place and renamed there when complete.
Result<std::filesystem::path> prepare_bundle_dir(const std::filesystem::path& dir, bool force);

// Writes dir/config.json (replacing it atomically) for the image whose rootfs is in
// dir/rootfs: rootless when not run as root. `warn` hears what may keep the
// container from starting (a user the rootless namespace does not map).
Status write_bundle_config(const std::filesystem::path& dir, const ImageConfig& image,
                           const BundleOptions& options, const std::function<void(std::string_view)>& warn);

// Client::pull and Client::unpack into a bundle: the rootfs made as a pull or
// unpack into dir/rootfs makes it, then config.json from the image's config in
// the store. Through the public API only.
Result<PullResult> pull_bundle(Client& client, const Reference& ref, const PullRequest& request);
Status unpack_bundle(Client& client, const Reference& ref, const std::filesystem::path& dir,
                     const UnpackRequest& request);

}  // namespace imgpull::bundle
