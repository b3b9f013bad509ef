#include "pull/pull.h"

#include <fmt/format.h>

#include <condition_variable>
#include <mutex>
#include <optional>
#include <set>
#include <thread>
#include <vector>

#include "base/thread_name.h"
#include "pull/download_scheduler.h"
#include "pull/events.h"
#include "pull/followed_blob.h"
#include "pull/resolve.h"
#include "pull/stop_signal.h"
#include "unpack/rootfs.h"

namespace imgpull {
namespace {

// The image config, read from the store or fetched beside the layers. A
// fetched config's ingest lock is held from before the first layer until it
// is committed after the last, so a second process pulling the same image
// waits for it, then finds every blob in place and downloads nothing. (Locks
// are always taken config first, and the config's is the only one a pull waits
// for: a layer another process is writing is set aside and tried again, so no
// two pulls deadlock.)
// Committed after the layers, an image whose config is in the store got at
// least that far.
class ConfigBlob {
 public:
  ConfigBlob(Store& store, const ImageManifest& manifest) : store_(store), manifest_(manifest) {}

  // Takes the config from the store, or its ingest lock: no network.
  Status begin() {
    const Descriptor& blob = manifest_.config;
    if (!store_.has_blob(blob.digest)) {
      IMGPULL_ASSIGN_OR_RETURN(writer_, store_.begin_ingest(blob.digest, blob.size));
    }
    if (writer_) return {};
    IMGPULL_ASSIGN_OR_RETURN(std::string bytes, store_.read_blob(blob.digest, kMaxConfigBytes));
    return parsed(std::move(bytes));
  }
  bool needs_fetch() const { return writer_ && !ready_; }

  // Fetches it (in a thread of its own, beside the layers).
  Status fetch(Registry& registry) {
    const Descriptor& blob = manifest_.config;
    auto fetched = registry.get_blob(blob, kMaxConfigBytes);
    if (!fetched && fetched.error().code() == ErrorCode::kCorrupt) {
      fetched = registry.get_blob(blob, kMaxConfigBytes);  // once more, as for layers
    }
    if (!fetched) return set_failed(std::move(fetched).error().wrap("config"));
    return parsed(std::move(fetched).value());
  }

  // Waits until the config is known (the rootfs applier needs its diffIDs).
  Result<const ImageConfig*> wait() const {
    std::unique_lock lock(mutex_);
    known_.wait(lock, [&] { return ready_ || error_; });
    if (error_) return *error_;
    return &config_;
  }
  const ImageConfig& config() const { return config_; }

  Status commit() {
    if (!writer_) return {};
    if (writer_->bytes_written() > 0) IMGPULL_TRY(writer_->restart());  // a crash's leftover
    IMGPULL_TRY(writer_->write(bytes_.data(), bytes_.size()));
    return writer_->commit();
  }

 private:
  Status parsed(std::string bytes) {
    auto config = parse_config(bytes);
    if (!config) return set_failed(std::move(config).error().wrap("config " + manifest_.config.digest.str()));
    Status counted = check_diff_id_count(manifest_, *config);
    if (!counted.ok()) return set_failed(std::move(counted).error());
    std::lock_guard lock(mutex_);
    bytes_ = std::move(bytes);
    config_ = std::move(config).value();
    ready_ = true;
    known_.notify_all();
    return {};
  }
  Status set_failed(Error error) {
    std::lock_guard lock(mutex_);
    error_ = error;
    known_.notify_all();
    return error;
  }

  Store& store_;
  const ImageManifest& manifest_;
  std::unique_ptr<BlobWriter> writer_;  // while the config is still to be committed
  mutable std::mutex mutex_;
  mutable std::condition_variable known_;
  std::string bytes_;
  ImageConfig config_;
  bool ready_ = false;
  std::optional<Error> error_;
};

// What the rootfs applier has read of a layer (compressed bytes, as the
// download counts them), reported as kLayerExtracting events.
class ExtractProgress : public ByteSource {
 public:
  ExtractProgress(std::unique_ptr<ByteSource> inner, PullEvents& events, const Descriptor& layer)
      : inner_(std::move(inner)), events_(events), layer_(layer) {}
  Result<size_t> read(void* buf, size_t n) override {
    IMGPULL_ASSIGN_OR_RETURN(size_t got, inner_->read(buf, n));
    read_ += got;
    if (got > 0 && read_ >= next_report_) {
      events_.layer(PullEvent::Kind::kLayerExtracting, layer_, read_);
      next_report_ = read_ + kProgressEveryBytes;
    }
    return got;
  }
  // An applier that stops early must wake a read waiting on the download.
  void cancel() override { inner_->cancel(); }

 private:
  std::unique_ptr<ByteSource> inner_;
  PullEvents& events_;
  const Descriptor& layer_;
  uint64_t read_ = 0;
  uint64_t next_report_ = kProgressEveryBytes;
};

Status check_foreign_layer(const Descriptor& layer, bool allowed) {
  if (allowed && !layer.urls.empty()) return {};
  std::string urls;
  for (const auto& u : layer.urls) urls += (urls.empty() ? "" : ", ") + u;
  return Error(ErrorCode::kUnsupported,
               fmt::format("layer {} is non-distributable ({}); its content is at {}; pass "
                           "--fetch-foreign-layers to download it from there (without registry credentials)",
                           layer.digest.str(), layer.media_type, urls.empty() ? "no URL" : urls));
}

// Puts the manifests into the store (every index level too, so that the
// repo digest leads to the image in the store: the next pull of the tag,
// prune and save walk down from it) and returns the OCI manifest to name.
Result<Descriptor> store_manifests(Store& store, const ResolvedImage& image, const ImageConfig& config) {
  for (const auto& index : image.indexes) IMGPULL_TRY(store.write_blob(index.digest, index.bytes));
  IMGPULL_TRY(store.write_blob(image.fetched.digest, image.fetched.bytes));
  Descriptor named{std::string(media_type::kOciManifest), image.fetched.digest,
                   static_cast<int64_t>(image.fetched.bytes.size()), {}, {}, config.platform};
  if (image.manifest.media_type == media_type::kDockerManifest) {
    // OCI tools read only OCI manifests from a layout: store one that points
    // at the same blobs, and keep the registry's own for digests.
    std::string oci = to_oci_manifest(image.manifest);
    named.digest = Digest::of(oci);
    named.size = static_cast<int64_t>(oci.size());
    IMGPULL_TRY(store.write_blob(named.digest, oci));
  }
  return named;
}

class Pull {
 public:
  Pull(Store& store, const Reference& ref, const PullOptions& options, const ConnectRegistry& connect)
      : store_(store), ref_(ref), options_(options), connect_(connect), events_(options.on_event),
        stop_(options.cancelled) {}

  Result<PullResult> run() {
    IMGPULL_ASSIGN_OR_RETURN(ResolvedImage image, resolve());
    IMGPULL_TRY(check_image_manifest(image.manifest));
    events_.resolved(image.manifest.layers);
    ConfigBlob config(store_, image.manifest);
    IMGPULL_TRY(config.begin());
    IMGPULL_ASSIGN_OR_RETURN(std::vector<Descriptor> missing, missing_layers(image.manifest));
    IMGPULL_TRY(download_and_apply(image.manifest, config, missing));
    IMGPULL_TRY(config.commit());
    return record(image, config.config());
  }

 private:
  // The registry, reached (and its authentication learnt) at the first need.
  Result<Registry*> registry() {
    if (!registry_) {
      IMGPULL_ASSIGN_OR_RETURN(registry_, connect_());
    }
    return registry_.get();
  }

  // A pull by digest whose every blob is in the store needs no network.
  Result<ResolvedImage> resolve() {
    if (ref_.digest) {
      if (auto local = resolve_local(store_, *ref_.digest, options_.platform)) return std::move(*local);
    }
    IMGPULL_ASSIGN_OR_RETURN(Registry * registry, this->registry());
    return resolve_remote(*registry, store_, ref_, options_.platform);
  }

  // The layers to download: each blob once, even if the image lists it twice.
  Result<std::vector<Descriptor>> missing_layers(const ImageManifest& manifest) {
    std::vector<Descriptor> missing;
    std::set<Digest> seen;
    for (const auto& layer : manifest.layers) {
      if (store_.has_blob(layer.digest)) {
        events_.layer(PullEvent::Kind::kLayerExists, layer);
      } else if (seen.insert(layer.digest).second) {
        if (is_foreign_layer(layer.media_type)) IMGPULL_TRY(check_foreign_layer(layer, options_.fetch_foreign_layers));
        missing.push_back(layer);
        events_.layer(PullEvent::Kind::kLayerWaiting, layer);
      }
    }
    return missing;
  }

  // Downloads `missing` and the config beside them and, with a rootfs,
  // applies every layer in order in a thread of its own, each as its bytes
  // arrive. Whichever fails first stops the others.
  Status download_and_apply(const ImageManifest& manifest, ConfigBlob& config, const std::vector<Descriptor>& missing) {
    FollowedBlobs followed;
    if (options_.rootfs_fd >= 0) {
      for (const auto& layer : missing) followed.emplace(layer.digest, std::make_unique<FollowedBlob>());
    }
    std::optional<DownloadScheduler> downloads;
    if (!missing.empty() || config.needs_fetch()) {
      IMGPULL_ASSIGN_OR_RETURN(Registry * registry, this->registry());
      downloads.emplace(*registry, store_, events_, followed, stop_);
      fetched_anything_ = true;
    }
    std::thread config_fetch;
    if (config.needs_fetch()) {
      config_fetch = std::thread([&] {
        name_this_thread("imgpull-config");
        Status fetched = config.fetch(*registry_);
        if (!fetched.ok()) downloads->cancel(std::move(fetched).error());
      });
    }
    std::optional<Error> apply_error;
    std::thread applier;
    if (options_.rootfs_fd >= 0) {
      applier = std::thread([&] {
        name_this_thread("imgpull-apply");
        Status applied = apply_while_downloading(manifest, config, followed);
        if (applied.ok()) return;
        apply_error = std::move(applied).error();
        if (downloads) downloads->cancel(*apply_error);
      });
    }
    Status downloaded;
    if (!missing.empty()) {
      downloaded = downloads->run(missing, options_.downloads);
      bytes_downloaded_ = downloads->bytes_downloaded();
      bytes_resumed_ = downloads->bytes_resumed();
    }
    if (config_fetch.joinable()) config_fetch.join();
    if (applier.joinable()) applier.join();
    // The applier's error explains a cancelled download better than the other way round.
    if (apply_error) return *apply_error;
    IMGPULL_TRY(std::move(downloaded));
    IMGPULL_TRY(config.wait());
    return {};
  }

  // Layers being downloaded are read as they grow; the others from the store.
  Status apply_while_downloading(const ImageManifest& manifest, const ConfigBlob& config_blob,
                                 FollowedBlobs& followed) {
    IMGPULL_ASSIGN_OR_RETURN(const ImageConfig* config, config_blob.wait());
    auto source_for = [&](size_t i) -> Result<std::unique_ptr<ByteSource>> {
      const Descriptor& layer = manifest.layers[i];
      std::unique_ptr<ByteSource> source;
      if (auto it = followed.find(layer.digest); it != followed.end()) {
        source = std::make_unique<FollowedBlob::Reader>(*it->second);
      } else {
        IMGPULL_ASSIGN_OR_RETURN(source, open_layer_from_store(store_, layer));
      }
      events_.layer(PullEvent::Kind::kLayerExtracting, layer);
      return std::unique_ptr<ByteSource>(std::make_unique<ExtractProgress>(std::move(source), events_, layer));
    };
    auto on_applied = [&](size_t i) {
      const Descriptor& layer = manifest.layers[i];
      events_.layer(PullEvent::Kind::kLayerExtracting, layer, layer.size);  // all of it applied
      if (followed.contains(layer.digest)) events_.layer(PullEvent::Kind::kLayerComplete, layer, layer.size);
    };
    return apply_layers(options_.rootfs_fd, manifest, *config, source_for, options_.apply, on_applied);
  }

  Result<PullResult> record(const ResolvedImage& image, const ImageConfig& config) {
    IMGPULL_ASSIGN_OR_RETURN(Descriptor named, store_manifests(store_, image, config));
    std::string name = store_name_for(ref_);
    IMGPULL_ASSIGN_OR_RETURN(auto previous, store_.find_image(name));
    bool up_to_date = !fetched_anything_ && previous && previous->manifest.digest == named.digest;
    IMGPULL_TRY(store_.record_image(ImageRecord{name, named, image.repo_digest(), now_rfc3339()}));
    return PullResult{name,       named.digest,      image.repo_digest(), image.manifest.config.digest,
                      up_to_date, bytes_downloaded_, bytes_resumed_,      image.manifest.layers};
  }

  Store& store_;
  const Reference& ref_;
  const PullOptions& options_;
  const ConnectRegistry& connect_;
  PullEvents events_;
  StopSignal stop_;
  std::unique_ptr<Registry> registry_;
  bool fetched_anything_ = false;  // a blob came from the registry
  uint64_t bytes_downloaded_ = 0;
  uint64_t bytes_resumed_ = 0;
};

}  // namespace

std::string store_name_for(const Reference& ref) {
  if (ref.digest) return ref.name() + "@" + ref.digest->str();
  return ref.name() + ":" + ref.tag.value_or("latest");
}

Result<PullResult> pull_image(Store& store, const Reference& ref, const PullOptions& options,
                              const ConnectRegistry& connect) {
  auto result = Pull(store, ref, options, connect).run();
  if (!result) return std::move(result).error().wrap("pulling " + ref.str());
  return result;
}

}  // namespace imgpull
