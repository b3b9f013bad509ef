#include "pull/pull.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <atomic>
#include <condition_variable>
#include <filesystem>
#include <map>
#include <memory>
#include <set>
#include <mutex>
#include <thread>
#include <vector>

#include "unpack/rootfs.h"
#include "base/thread_name.h"
#include "base/unique_fd.h"
#include "pull/write_behind.h"

namespace imgpull {
namespace {

// Progress events are throttled to one per this many bytes per layer: enough
// for a smooth bar, few enough to cost nothing.
constexpr uint64_t kProgressEveryBytes = 512 * 1024;

// libcurl hands a body over in small pieces; they are gathered into writes of
// this size, so a 1 GB layer costs four thousand write(2)s and wake-ups of the
// rootfs applier instead of sixty thousand. Hashing and writing them runs in a
// thread of its own per download (WriteBehind), up to kIngestBuffers behind
// the receiving. Not more: what is held is what a SIGKILL loses per running
// download (an orderly stop writes it out), and the crash test bounds that loss.
constexpr size_t kIngestWriteBytes = 256 * 1024;
constexpr size_t kIngestBuffers = 3;

// Serialises events from the download threads.
class EventSink {
 public:
  explicit EventSink(const std::function<void(const PullEvent&)>& fn) : fn_(fn) {}
  void emit(PullEvent event) {
    if (!fn_) return;
    std::lock_guard lock(mutex_);
    fn_(event);
  }
  void layer(PullEvent::Kind kind, const Descriptor& d, uint64_t current = 0) {
    emit(PullEvent{kind, d.digest, current, static_cast<uint64_t>(d.size), {}});
  }

 private:
  const std::function<void(const PullEvent&)>& fn_;
  std::mutex mutex_;
};

// What the rootfs applier has read of a layer (compressed bytes, as the
// download counts them), reported as kLayerExtracting events.
class ExtractProgress : public ByteSource {
 public:
  ExtractProgress(ByteSource& inner, EventSink& events, const Descriptor& layer)
      : inner_(inner), events_(events), layer_(layer) {}
  Result<size_t> read(void* buf, size_t n) override {
    IMGPULL_ASSIGN_OR_RETURN(size_t got, inner_.read(buf, n));
    read_ += got;
    if (got > 0 && read_ >= next_report_) {
      events_.layer(PullEvent::Kind::kLayerExtracting, layer_, read_);
      next_report_ = read_ + kProgressEveryBytes;
    }
    return got;
  }
  // An applier that stops early must wake a read waiting on the download.
  void cancel() override { inner_.cancel(); }

 private:
  ByteSource& inner_;
  EventSink& events_;
  const Descriptor& layer_;
  uint64_t read_ = 0;
  uint64_t next_report_ = kProgressEveryBytes;
};

struct ResolvedImage {
  ImageManifest manifest;
  FetchedManifest fetched;               // the manifest as the registry (or store) has it
  std::optional<FetchedManifest> index;  // the index it was chosen from, if any
  Digest repo_digest() const { return index ? index->digest : fetched.digest; }
};

bool is_config_type(std::string_view t) {
  return t == media_type::kDockerConfig || t == media_type::kOciConfig;
}

bool is_foreign_layer(std::string_view t) {
  return t.find(".nondistributable.") != std::string_view::npos ||
         t.find(".foreign.") != std::string_view::npos;
}

Status check_foreign_layer(const Descriptor& layer, bool allowed) {
  if (allowed && !layer.urls.empty()) return {};
  std::string urls;
  for (const auto& u : layer.urls) urls += (urls.empty() ? "" : ", ") + u;
  return Error(ErrorCode::kUnsupported,
               fmt::format("layer {} is non-distributable ({}); its content is at {}; pass "
                           "--fetch-foreign-layers to download it from there (without registry credentials)",
                           layer.digest.str(), layer.media_type, urls.empty() ? "no URL" : urls));
}

bool is_layer_type(std::string_view t) {
  return t.starts_with("application/vnd.oci.image.layer.") ||
         t.starts_with("application/vnd.docker.image.rootfs.");
}

Status check_image_manifest(const ImageManifest& m) {
  if (!is_config_type(m.config.media_type)) {
    return Error(ErrorCode::kUnsupported,
                 fmt::format("not a container image: its config has media type \"{}\"",
                             m.config.media_type));
  }
  for (const auto& layer : m.layers) {
    if (!is_layer_type(layer.media_type)) {
      return Error(ErrorCode::kUnsupported, fmt::format("layer {} has unsupported media type \"{}\"",
                                                        layer.digest.str(), layer.media_type));
    }
  }
  return {};
}

Result<ResolvedImage> resolve_remote(RegistryClient& registry, const Reference& ref,
                                     const Platform& platform) {
  IMGPULL_ASSIGN_OR_RETURN(FetchedManifest top, registry.get_manifest(ref.manifest_selector()));
  auto parsed = parse_manifest(top.bytes, top.content_type);
  if (!parsed) return std::move(parsed).error().wrap("manifest " + top.digest.str());
  if (auto* manifest = std::get_if<ImageManifest>(&*parsed)) {
    return ResolvedImage{std::move(*manifest), std::move(top), std::nullopt};
  }
  auto& index = std::get<ImageIndex>(*parsed);
  IMGPULL_ASSIGN_OR_RETURN(Descriptor chosen, select_platform(index, platform));
  IMGPULL_ASSIGN_OR_RETURN(FetchedManifest child, registry.get_manifest(chosen.digest.str()));
  if (child.bytes.size() != static_cast<size_t>(chosen.size)) {
    return Error(ErrorCode::kCorrupt, fmt::format("manifest {}: the index declares {} bytes, got {}",
                                                  chosen.digest.str(), chosen.size, child.bytes.size()));
  }
  auto child_parsed = parse_manifest(child.bytes, child.content_type);
  if (!child_parsed) return std::move(child_parsed).error().wrap("manifest " + child.digest.str());
  auto* manifest = std::get_if<ImageManifest>(&*child_parsed);
  if (manifest == nullptr) {
    return Error(ErrorCode::kUnsupported,
                 fmt::format("index {} points at another index for {}; nested indexes are not followed",
                             top.digest.str(), platform.str()));
  }
  return ResolvedImage{std::move(*manifest), std::move(child), std::move(top)};
}

// A pull by digest whose every blob is already in the store needs no network.
std::optional<ResolvedImage> resolve_local(const Store& store, const Reference& ref,
                                           const Platform& platform) {
  if (!ref.digest || !store.has_blob(*ref.digest)) return std::nullopt;
  auto read = [&](const Digest& d) -> std::optional<FetchedManifest> {
    auto bytes = store.read_blob(d, kMaxManifestBytes);
    if (!bytes) return std::nullopt;
    return FetchedManifest{std::move(bytes).value(), "", d};
  };
  auto top = read(*ref.digest);
  if (!top) return std::nullopt;
  auto parsed = parse_manifest(top->bytes, "");
  if (!parsed) return std::nullopt;
  std::optional<FetchedManifest> index;
  if (auto* idx = std::get_if<ImageIndex>(&*parsed)) {
    auto chosen = select_platform(*idx, platform);
    if (!chosen || !store.has_blob(chosen->digest)) return std::nullopt;
    auto child = read(chosen->digest);
    if (!child) return std::nullopt;
    parsed = parse_manifest(child->bytes, "");
    if (!parsed || !std::holds_alternative<ImageManifest>(*parsed)) return std::nullopt;
    index = std::move(top);
    top = std::move(child);
  }
  ResolvedImage image{std::get<ImageManifest>(std::move(*parsed)), std::move(*top), std::move(index)};
  if (!store.has_blob(image.manifest.config.digest)) return std::nullopt;
  for (const auto& layer : image.manifest.layers) {
    if (!store.has_blob(layer.digest)) return std::nullopt;
  }
  return image;
}

// A layer blob being downloaded, read by the rootfs applier while it grows:
// the download writes the ingest file, the applier reads the same file
// (from the page cache) up to what has been written, and waits for more.
// The applier so never waits for a whole blob, and a download never waits
// for the applier.
//
// Descriptors: the ingest file's is shared (shared_ptr) between the download
// and a reader that started on it, and closed when both are done with it; a
// blob whose download finished before its reader started is opened from the
// store by the reader. So however far the downloads run ahead of the applier
// (120 layers...), a pull holds one descriptor per download in flight plus
// one for the layer being applied.
class FollowedBlob {
 public:
  void opened(int fd) {
    std::lock_guard lock(mutex_);
    fd_ = std::make_shared<UniqueFd>(fd);
    changed_.notify_all();
  }
  void grew(uint64_t written) {
    std::lock_guard lock(mutex_);
    written_ = std::max(written_, written);  // a restarted download rewrites the same bytes
    changed_.notify_all();
  }
  // All `written_` bytes are in the store at `committed`.
  void finished(std::filesystem::path committed) {
    std::lock_guard lock(mutex_);
    done_ = true;
    committed_ = std::move(committed);
    fd_.reset();  // a reader that took it keeps it open
    changed_.notify_all();
  }
  void failed(const Error& error) {
    std::lock_guard lock(mutex_);
    if (!error_) error_ = error;
    changed_.notify_all();
  }
  // Forgets what was written, for a download that starts over in a new
  // ingest file (opened() follows). Refused once a reader was handed a byte:
  // bytes applied to a rootfs cannot be taken back.
  bool rewind() {
    std::lock_guard lock(mutex_);
    if (handed_out_) return false;
    written_ = 0;
    done_ = false;
    return true;
  }

  // One reader per application of the layer (an image may list a blob twice).
  class Reader : public ByteSource {
   public:
    explicit Reader(FollowedBlob& blob) : blob_(blob) {}
    Result<size_t> read(void* buf, size_t n) override {
      size_t chunk;
      std::filesystem::path committed;
      {
        std::unique_lock lock(blob_.mutex_);
        blob_.changed_.wait(lock, [&] {
          return cancelled_ || blob_.error_ || blob_.done_ || (blob_.fd_ && blob_.written_ > offset_);
        });
        if (blob_.error_) return *blob_.error_;
        if (cancelled_) return Error(ErrorCode::kUnavailable, "cancelled: the layer's applier stopped");
        if (blob_.written_ <= offset_) return size_t{0};  // done and all read
        chunk = static_cast<size_t>(std::min<uint64_t>(n, blob_.written_ - offset_));
        blob_.handed_out_ = true;
        if (!fd_) {
          fd_ = blob_.fd_;
          if (!fd_) committed = blob_.committed_;
        }
      }
      if (!fd_) {  // downloaded before we got here: read it from the store
        int fd = ::open(committed.c_str(), O_RDONLY | O_CLOEXEC);
        if (fd < 0) return Error(ErrorCode::kIo, fmt::format("cannot open {}: {}", committed.string(), std::strerror(errno)));
        fd_ = std::make_shared<UniqueFd>(fd);
      }
      ssize_t got = ::pread(fd_->get(), buf, chunk, static_cast<off_t>(offset_));
      if (got < 0) return Error(ErrorCode::kIo, std::string("reading a downloading layer: ") + std::strerror(errno));
      offset_ += static_cast<uint64_t>(got);
      return static_cast<size_t>(got);
    }
    void cancel() override {
      std::lock_guard lock(blob_.mutex_);
      cancelled_ = true;
      blob_.changed_.notify_all();
    }

   private:
    FollowedBlob& blob_;
    std::shared_ptr<UniqueFd> fd_;
    uint64_t offset_ = 0;
    bool cancelled_ = false;  // guarded by blob_.mutex_
  };

 private:
  std::mutex mutex_;
  std::condition_variable changed_;
  std::shared_ptr<UniqueFd> fd_;  // the ingest file, while it is being written
  std::filesystem::path committed_;
  uint64_t written_ = 0;
  bool done_ = false;
  bool handed_out_ = false;  // a reader got bytes: see rewind()
  std::optional<Error> error_;
};

using FollowedBlobs = std::map<Digest, std::unique_ptr<FollowedBlob>>;

class LayerDownloader {
 public:
  // `followed`: blobs a rootfs applier reads while they download (may be
  // empty); they are told of every byte written, and of failures.
  LayerDownloader(RegistryClient& registry, Store& store, EventSink& events, FollowedBlobs& followed,
                  const std::function<bool()>& interrupted)
      : registry_(registry), store_(store), events_(events), followed_(followed), interrupted_(interrupted) {}

  // Fetches `layers` with at most `concurrency` at once; the first failure
  // stops the others and is returned.
  Status run(const std::vector<Descriptor>& layers, int concurrency) {
    std::atomic<size_t> next{0};
    auto work = [&] {
      name_this_thread("imgpull-fetch");
      while (!failed_.load()) {
        if (interrupted()) {
          fail(Error(ErrorCode::kCancelled, "interrupted"));
          return;
        }
        size_t i = next.fetch_add(1);
        if (i >= layers.size()) return;
        Status st = download(layers[i]);
        if (!st.ok()) fail(std::move(st).error().wrap("layer " + layers[i].digest.str()));
      }
    };
    std::vector<std::thread> threads;
    int n = std::max(1, std::min<int>(concurrency, static_cast<int>(layers.size())));
    for (int t = 0; t < n; ++t) threads.emplace_back(work);
    for (auto& t : threads) t.join();
    std::lock_guard lock(error_mutex_);  // the applier may cancel at any time
    if (first_error_) return *first_error_;
    return {};
  }

  uint64_t bytes_downloaded() const { return bytes_.load(); }
  uint64_t bytes_resumed() const { return resumed_.load(); }
  bool interrupted() const { return interrupted_ && interrupted_(); }

  // Where one layer's bytes go: the store's ingest file, a following rootfs
  // applier, and progress events.
  class IngestSink : public BlobSink {
   public:
    IngestSink(LayerDownloader& owner, const Descriptor& layer, BlobWriter& writer, FollowedBlob* follower)
        : owner_(owner), layer_(layer), writer_(writer), follower_(follower),
          held_before_(writer.bytes_written()),
          behind_([this](std::span<const char> bytes) { return write_through(bytes); },
                  kIngestBuffers, kIngestWriteBytes) {}

    // Received bytes, whether written to the ingest file yet or not.
    uint64_t bytes_held() const override { return held_before_ + behind_.appended(); }
    bool cancelled() const override { return owner_.failed_.load() || owner_.interrupted(); }
    Status restart() override {
      behind_.discard();
      next_report_ = 0;
      held_before_ = 0;
      return writer_.restart();
    }
    Status write(const char* data, size_t size) override {
      if (owner_.interrupted()) return Error(ErrorCode::kCancelled, "interrupted");
      if (cancelled()) return Error(ErrorCode::kUnavailable, "cancelled: another step of the pull failed");
      owner_.bytes_ += size;
      return behind_.append(std::span<const char>(data, size));
    }
    // Writes everything received; call before the blob is committed.
    Status flush() { return behind_.drain(); }
    // Forgets what is not written yet, once no write runs: the bytes are wrong.
    void abandon() { behind_.discard(); }

   private:
    // In behind_'s thread (or in flush's): hash, write, tell the follower.
    Status write_through(std::span<const char> bytes) {
      IMGPULL_TRY(writer_.write(bytes.data(), bytes.size()));
      if (follower_ != nullptr) follower_->grew(writer_.bytes_written());
      if (writer_.bytes_written() >= next_report_) {
        owner_.events_.layer(PullEvent::Kind::kLayerDownloading, layer_, writer_.bytes_written());
        next_report_ = writer_.bytes_written() + kProgressEveryBytes;
      }
      return {};
    }

    LayerDownloader& owner_;
    const Descriptor& layer_;
    BlobWriter& writer_;
    FollowedBlob* follower_;
    uint64_t next_report_ = 0;
    uint64_t held_before_;  // what the ingest file held when this sink began
    WriteBehind behind_;    // last: its thread stops before the rest goes
  };

  // Stops every download (the applier failed).
  void cancel(Error error) { fail(std::move(error)); }

 private:
  Status download(const Descriptor& layer) {
    FollowedBlob* follower = nullptr;
    if (auto it = followed_.find(layer.digest); it != followed_.end()) follower = it->second.get();
    // A blob whose bytes are wrong is fetched once more from its first byte
    // (a flipped bit on the way, a partial file a crash mangled); wrong
    // twice, the registry itself serves it wrong and the pull fails.
    for (int attempt = 0;; ++attempt) {
      IMGPULL_ASSIGN_OR_RETURN(auto writer, store_.begin_ingest(layer.digest, layer.size));
      if (!writer) {
        // Another process committed it while we waited for its lock.
        if (follower != nullptr) follower->grew(static_cast<uint64_t>(layer.size));
        break;
      }
      if (writer->resumed_bytes() > 0) {
        resumed_ += writer->resumed_bytes();
        events_.layer(PullEvent::Kind::kLayerResumed, layer, writer->resumed_bytes());
      }
      if (follower != nullptr) {
        IMGPULL_ASSIGN_OR_RETURN(int fd, writer->open_reader());
        follower->opened(fd);
        follower->grew(writer->bytes_written());  // what a resumed file already holds
      }
      IngestSink sink(*this, layer, *writer, follower);
      Status fetched = is_foreign_layer(layer.media_type) ? registry_.fetch_foreign_blob(layer, sink)
                                                          : registry_.fetch_blob(layer, sink);
      if (fetched.ok()) fetched = sink.flush();  // the gathered tail, before the digest is checked
      if (fetched.ok()) {
        events_.layer(PullEvent::Kind::kLayerVerifying, layer, writer->bytes_written());
        fetched = writer->commit();
      }
      if (fetched.ok()) {
        events_.layer(PullEvent::Kind::kLayerDownloaded, layer, static_cast<uint64_t>(layer.size));
        break;
      }
      Error error = std::move(fetched).error();
      // Anything but wrong bytes (the network, the disk, an interrupt) keeps
      // the partial file for the next pull: the writer goes, the file stays,
      // with what was gathered but not yet written (best effort: the disk may
      // be what failed).
      if (error.code() != ErrorCode::kCorrupt) {
        (void)sink.flush();
        return error;
      }
      sink.abandon();
      writer->discard();  // wrong bytes are never resumed from
      if (attempt > 0) {
        return Error(ErrorCode::kCorrupt,
                     error.message() + " (fetched twice from the first byte, wrong both times)");
      }
      if (follower != nullptr && !follower->rewind()) {
        return Error(ErrorCode::kCorrupt,
                     error.message() + " (not fetched again: its bytes were already applied to the "
                                       "rootfs; pull again into a fresh rootfs directory)");
      }
      events_.layer(PullEvent::Kind::kLayerRefetching, layer);
    }
    if (follower != nullptr) {
      follower->finished(store_.blob_path(layer.digest));
    } else {
      events_.layer(PullEvent::Kind::kLayerComplete, layer, static_cast<uint64_t>(layer.size));
    }
    return {};
  }

  void fail(Error error) {
    std::lock_guard lock(error_mutex_);
    for (auto& [digest, follower] : followed_) follower->failed(error);
    if (!first_error_) first_error_ = std::move(error);
    failed_ = true;
  }

  RegistryClient& registry_;
  Store& store_;
  EventSink& events_;
  FollowedBlobs& followed_;
  std::atomic<bool> failed_{false};
  std::atomic<uint64_t> bytes_{0};
  std::atomic<uint64_t> resumed_{0};
  const std::function<bool()>& interrupted_;
  std::mutex error_mutex_;
  std::optional<Error> first_error_;
};

// Puts the manifests into the store and returns the OCI manifest to name.
Result<Descriptor> store_manifests(Store& store, const ResolvedImage& image, const ImageConfig& config) {
  if (image.index) IMGPULL_TRY(store.write_blob(image.index->digest, image.index->bytes));
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

Result<PullResult> pull(http::Client& client, Store& store, const Reference& ref,
                        const PullOptions& options) {
  EventSink events(options.on_event);
  std::optional<ResolvedImage> image = resolve_local(store, ref, options.platform);
  bool fetched_anything = false;
  std::unique_ptr<RegistryClient> registry;
  if (!image) {
    RegistryOptions registry_options = options.registry;
    if (!registry_options.cancelled) registry_options.cancelled = options.cancelled;
    IMGPULL_ASSIGN_OR_RETURN(registry, RegistryClient::connect(client, ref, registry_options));
    IMGPULL_ASSIGN_OR_RETURN(image, resolve_remote(*registry, ref, options.platform));
  }
  const ImageManifest& manifest = image->manifest;
  IMGPULL_TRY(check_image_manifest(manifest));
  events.emit(PullEvent{PullEvent::Kind::kResolved, std::nullopt, 0, 0, manifest.layers});

  std::string config_bytes;
  // The config's ingest lock is taken before any layer's and held until the
  // config is committed, after the layers: a second process pulling the same
  // image waits here, then finds every blob in place and downloads nothing.
  // (One order of locks everywhere, config first, so no two pulls deadlock.)
  std::unique_ptr<BlobWriter> config_writer;
  if (!store.has_blob(manifest.config.digest)) {
    IMGPULL_ASSIGN_OR_RETURN(config_writer, store.begin_ingest(manifest.config.digest, manifest.config.size));
  }
  if (!config_writer) {
    IMGPULL_ASSIGN_OR_RETURN(config_bytes, store.read_blob(manifest.config.digest, kMaxConfigBytes));
  } else {
    auto fetched = registry->get_blob(manifest.config, kMaxConfigBytes);
    if (!fetched && fetched.error().code() == ErrorCode::kCorrupt) {
      fetched = registry->get_blob(manifest.config, kMaxConfigBytes);  // once more, as for layers
    }
    if (!fetched) return std::move(fetched).error().wrap("config");
    config_bytes = std::move(fetched).value();
    fetched_anything = true;
  }
  auto config = parse_config(config_bytes);
  if (!config) return std::move(config).error().wrap("config " + manifest.config.digest.str());
  if (config->diff_ids.size() != manifest.layers.size()) {
    return Error(ErrorCode::kCorrupt,
                 fmt::format("config {} lists {} diff_ids but the manifest has {} layers",
                             manifest.config.digest.str(), config->diff_ids.size(), manifest.layers.size()));
  }

  std::vector<Descriptor> missing;  // each blob once, even if the image lists it twice
  std::set<Digest> seen;
  for (const auto& layer : manifest.layers) {
    if (store.has_blob(layer.digest)) {
      events.layer(PullEvent::Kind::kLayerExists, layer);
    } else if (seen.insert(layer.digest).second) {
      if (is_foreign_layer(layer.media_type)) IMGPULL_TRY(check_foreign_layer(layer, options.fetch_foreign_layers));
      missing.push_back(layer);
      events.layer(PullEvent::Kind::kLayerWaiting, layer);
    }
  }
  FollowedBlobs followed;
  if (options.rootfs_fd >= 0) {
    for (const auto& layer : missing) followed.emplace(layer.digest, std::make_unique<FollowedBlob>());
  }
  uint64_t bytes_downloaded = 0;
  uint64_t bytes_resumed = 0;
  std::optional<LayerDownloader> downloader;
  if (!missing.empty()) {
    downloader.emplace(*registry, store, events, followed, options.cancelled);  // registry is set: see resolve_local
  }

  // The applier makes the rootfs layer by layer while the downloads run.
  std::optional<Error> apply_error;
  std::thread applier;
  if (options.rootfs_fd >= 0) {
    applier = std::thread([&] {
      name_this_thread("imgpull-apply");
      for (size_t i = 0; i < manifest.layers.size(); ++i) {
        const Descriptor& layer = manifest.layers[i];
        std::unique_ptr<ByteSource> source;
        auto it = followed.find(layer.digest);
        if (it != followed.end()) {
          source = std::make_unique<FollowedBlob::Reader>(*it->second);
        } else {
          auto file = FileSource::open(store.blob_path(layer.digest));
          if (!file) {
            apply_error = std::move(file).error().wrap("layer " + layer.digest.str());
            break;
          }
          source = std::move(file).value();
        }
        events.layer(PullEvent::Kind::kLayerExtracting, layer);
        ExtractProgress counted(*source, events, layer);
        auto applied = apply_verified_layer(options.rootfs_fd, manifest, *config, i, counted, options.apply);
        if (!applied) {
          apply_error = std::move(applied).error();
          break;
        }
        events.layer(PullEvent::Kind::kLayerExtracting, layer, layer.size);  // all of it applied
        if (it != followed.end()) events.layer(PullEvent::Kind::kLayerComplete, layer, layer.size);
      }
      if (apply_error && downloader) downloader->cancel(*apply_error);
    });
  }
  Status downloaded;
  if (downloader) {
    downloaded = downloader->run(missing, options.max_concurrent_downloads);
    bytes_downloaded = downloader->bytes_downloaded();
    bytes_resumed = downloader->bytes_resumed();
    fetched_anything = true;
  }
  if (applier.joinable()) applier.join();
  // The applier's error explains a cancelled download better than the other way round.
  if (apply_error) return *apply_error;
  IMGPULL_TRY(std::move(downloaded));
  // The config is committed after the layers, so that an image whose config
  // is present is one whose pull got at least that far.
  if (config_writer) {
    if (config_writer->bytes_written() > 0) IMGPULL_TRY(config_writer->restart());  // a crash's leftover
    IMGPULL_TRY(config_writer->write(config_bytes.data(), config_bytes.size()));
    IMGPULL_TRY(config_writer->commit());
  }
  IMGPULL_ASSIGN_OR_RETURN(Descriptor named, store_manifests(store, *image, *config));

  std::string name = store_name_for(ref);
  IMGPULL_ASSIGN_OR_RETURN(auto previous, store.find_image(name));
  bool up_to_date = !fetched_anything && previous && previous->manifest.digest == named.digest;
  IMGPULL_TRY(store.record_image(ImageRecord{name, named, image->repo_digest(), now_rfc3339()}));
  return PullResult{name,           named.digest,         image->repo_digest(),
                    manifest.config.digest, up_to_date, bytes_downloaded,
                    bytes_resumed,  manifest.layers};
}

}  // namespace

std::string store_name_for(const Reference& ref) {
  if (ref.digest) return ref.name() + "@" + ref.digest->str();
  return ref.name() + ":" + ref.tag.value_or("latest");
}

Result<PullResult> pull_image(http::Client& client, Store& store, const Reference& ref,
                              const PullOptions& options) {
  auto result = pull(client, store, ref, options);
  if (!result) return std::move(result).error().wrap("pulling " + ref.str());
  return result;
}

}  // namespace imgpull
