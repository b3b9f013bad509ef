#include "unpack/rootfs.h"

#include <dirent.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <sys/stat.h>

#include <cerrno>

#include "base/sys_error.h"

namespace imgpull {

Result<UniqueFd> open_rootfs_dir(const std::filesystem::path& dir, bool force) {
  if (::mkdir(dir.c_str(), 0755) != 0 && errno != EEXIST) {
    return sys_error("cannot create", dir);
  }
  UniqueFd fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!fd) return sys_error("cannot open", dir);
  if (!force) {
    // fdopendir takes ownership of its descriptor: give it a duplicate.
    DIR* listing = ::fdopendir(::dup(fd.get()));
    if (listing == nullptr) return sys_error("cannot list", dir);
    bool empty = true;
    while (dirent* entry = ::readdir(listing)) {
      std::string_view name = entry->d_name;
      if (name != "." && name != "..") {
        empty = false;
        break;
      }
    }
    ::closedir(listing);
    if (!empty) {
      return Error(ErrorCode::kInvalidArgument,
                   fmt::format("{} is not empty; use --force to unpack into it anyway", dir.string()));
    }
  }
  return fd;
}

namespace {

Result<unpack::ApplyResult> apply_verified_layer(int rootfs_fd, const ImageManifest& manifest,
                                                 const ImageConfig& config, size_t index, ByteSource& source,
                                                 const unpack::ApplyOptions& options) {
  const Descriptor& layer = manifest.layers[index];
  std::string which = fmt::format("layer {} ({} of {})", layer.digest.str(), index + 1, manifest.layers.size());
  auto compression = unpack::compression_for_media_type(layer.media_type);
  if (!compression) return std::move(compression).error().wrap(which);
  auto applied = unpack::apply_layer(rootfs_fd, source, *compression, options);
  if (!applied) return std::move(applied).error().wrap(which);
  if (applied->diff_id != config.diff_ids[index]) {
    return Error(ErrorCode::kCorrupt,
                 fmt::format("{}: uncompressed content does not match the config: expected diff_id {}, "
                             "got {}",
                             which, config.diff_ids[index].str(), applied->diff_id.str()));
  }
  return applied;
}

}  // namespace

Status check_diff_id_count(const ImageManifest& manifest, const ImageConfig& config) {
  if (config.diff_ids.size() == manifest.layers.size()) return {};
  return Error(ErrorCode::kCorrupt,
               fmt::format("config {} lists {} diff_ids but the manifest has {} layers",
                           manifest.config.digest.str(), config.diff_ids.size(), manifest.layers.size()));
}

Result<std::unique_ptr<ByteSource>> open_layer_from_store(const Store& store, const Descriptor& layer) {
  auto file = FileSource::open(store.blob_path(layer.digest));
  if (!file) return std::move(file).error().wrap("layer " + layer.digest.str());
  return std::unique_ptr<ByteSource>(std::move(file).value());
}

Status apply_layers(int rootfs_fd, const ImageManifest& manifest, const ImageConfig& config,
                    const LayerSourceFor& source_for, const unpack::ApplyOptions& options,
                    const std::function<void(size_t index)>& on_applied) {
  IMGPULL_TRY(check_diff_id_count(manifest, config));
  for (size_t i = 0; i < manifest.layers.size(); ++i) {
    IMGPULL_ASSIGN_OR_RETURN(std::unique_ptr<ByteSource> source, source_for(i));
    IMGPULL_TRY(apply_verified_layer(rootfs_fd, manifest, config, i, *source, options));
    if (on_applied) on_applied(i);
  }
  return {};
}

}  // namespace imgpull
