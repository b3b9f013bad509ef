// A registry in memory for the pull pipeline's unit tests (header-only: only
// *_test.cpp include it). It serves manifests and blobs as RegistryClient
// does — blobs in pieces to a BlobSink, resuming from what the sink holds —
// and lets a test script a blob's download: wrong bytes the first N times,
// a pause part-way until the test opens a gate, or a stall that lasts until
// the pull cancels it.
//
//   FakeRegistry registry;
//   TestLayer base = TestLayer::gzipped(tar_of({{"etc/os-release", "ID=test\n"}}));
//   registry.push("1", {base});            // served as <any repo>:1
//   registry.script(base.digest()).corrupt_times = 1;
//   auto connect = registry.connector();   // a ConnectRegistry for pull_image
//   // ... pull_image(..., connect, ...) ...
//   registry.manifest_requests();          // {"HEAD 1", "GET sha256:..."}
#pragma once

#include <chrono>
#include <atomic>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "remote/registry.h"
#include "testing/images.h"

namespace imgpull::testing {

// Opened once by a test thread; a download waiting on it also wakes when its
// pull is cancelled.
class Gate {
 public:
  void open() {
    std::lock_guard lock(mutex_);
    open_ = true;
    changed_.notify_all();
  }
  // True once open; false when `sink` was cancelled or `limit` passed first.
  bool wait(const BlobSink& sink, std::chrono::seconds limit = std::chrono::seconds(30)) {
    auto deadline = std::chrono::steady_clock::now() + limit;
    std::unique_lock lock(mutex_);
    while (!open_) {
      if (sink.cancelled() || std::chrono::steady_clock::now() > deadline) return false;
      changed_.wait_for(lock, std::chrono::milliseconds(5));
    }
    return true;
  }

 private:
  std::mutex mutex_;
  std::condition_variable changed_;
  bool open_ = false;
};

// How a blob's downloads go.
struct BlobScript {
  int corrupt_times = 0;  // the first N downloads serve the blob with its last byte flipped
  // Pause once `pause_after` bytes were sent, until `gate` opens (or the pull
  // cancels: the download then fails as a dropped connection would).
  std::shared_ptr<Gate> gate;
  uint64_t pause_after = 0;
  std::shared_ptr<Gate> reached;  // opened when the pause begins, for the test to wait on
};

class FakeRegistry : public Registry {
 public:
  static constexpr size_t kPieceBytes = 16 * 1024;

  // Serves the image under the tag `tag` of any repository (and its manifest
  // by digest), with its blobs.
  ImageDocuments push(const std::string& tag, const std::vector<TestLayer>& layers,
                      const ImageOptions& options = {}) {
    ImageDocuments docs = image_documents(layers, options);
    std::lock_guard lock(mutex_);
    blobs_[docs.manifest.config.digest] = docs.config;
    for (const auto& l : layers) blobs_[l.digest()] = l.blob;
    std::string manifest = to_oci_manifest(docs.manifest);
    manifests_[tag] = Document{manifest, std::string(media_type::kOciManifest)};
    manifests_[Digest::of(manifest).str()] = manifests_[tag];
    return docs;
  }

  // Serves `bytes` (an index, say) as `media_type` by its digest and, unless
  // `tag` is empty, under `tag`. Returns a descriptor of it.
  Descriptor push_document(const std::string& tag, const std::string& bytes, std::string_view media_type) {
    std::lock_guard lock(mutex_);
    Document document{bytes, std::string(media_type)};
    if (!tag.empty()) manifests_[tag] = document;
    manifests_[Digest::of(bytes).str()] = document;
    return Descriptor{std::string(media_type), Digest::of(bytes), static_cast<int64_t>(bytes.size()), {}, {}, {}};
  }

  // Every manifest request, in order: "HEAD 1", "GET sha256:...".
  std::vector<std::string> manifest_requests() const {
    std::lock_guard lock(mutex_);
    return manifest_requests_;
  }
  void clear_manifest_requests() {
    std::lock_guard lock(mutex_);
    manifest_requests_.clear();
  }
  // How HEAD is answered: like a registry that sends no Docker-Content-Digest,
  // or refuses HEAD with this error.
  void head_without_digest() { head_without_digest_ = true; }
  void refuse_head(Error error) { head_refusal_ = std::move(error); }

  BlobScript& script(const Digest& blob) {
    std::lock_guard lock(mutex_);
    return scripts_[blob];
  }
  int fetches(const Digest& blob) const {
    std::lock_guard lock(mutex_);
    auto it = fetches_.find(blob);
    return it == fetches_.end() ? 0 : it->second;
  }
  int connects() const { return connects_; }
  // The most blob downloads that ran at once.
  int max_in_flight() const { return max_in_flight_; }

  // A ConnectRegistry (pull/pull.h) handing out this registry; it stays the
  // test's.
  auto connector() {
    return [this]() -> Result<std::unique_ptr<Registry>> {
      ++connects_;
      return std::unique_ptr<Registry>(std::make_unique<Borrowed>(*this));
    };
  }

  Result<FetchedManifest> get_manifest(const std::string& selector) override {
    std::lock_guard lock(mutex_);
    manifest_requests_.push_back("GET " + selector);
    auto it = manifests_.find(selector);
    if (it == manifests_.end()) return Error(ErrorCode::kNotFound, "manifest " + selector + ": manifest unknown");
    return FetchedManifest{it->second.bytes, it->second.media_type, Digest::of(it->second.bytes)};
  }

  Result<ManifestHead> head_manifest(const std::string& selector) override {
    std::lock_guard lock(mutex_);
    manifest_requests_.push_back("HEAD " + selector);
    if (head_refusal_) return *head_refusal_;
    auto it = manifests_.find(selector);
    if (it == manifests_.end()) return Error(ErrorCode::kNotFound, "HEAD manifest " + selector + ": not found");
    ManifestHead head{Digest::of(it->second.bytes), it->second.media_type, it->second.bytes.size()};
    if (head_without_digest_) head.digest.reset();
    return head;
  }

  Result<std::string> get_blob(const Descriptor& blob, size_t max_bytes) override {
    std::lock_guard lock(mutex_);
    ++fetches_[blob.digest];
    auto it = blobs_.find(blob.digest);
    if (it == blobs_.end() || it->second.size() > max_bytes) {
      return Error(ErrorCode::kNotFound, "blob " + blob.digest.str() + ": blob unknown");
    }
    return it->second;
  }

  Status fetch_blob(const Descriptor& blob, BlobSink& sink) override {
    std::string bytes;
    BlobScript script;
    {
      std::lock_guard lock(mutex_);
      auto it = blobs_.find(blob.digest);
      if (it == blobs_.end()) return Error(ErrorCode::kNotFound, "blob " + blob.digest.str() + ": blob unknown");
      bytes = it->second;
      int attempt = ++fetches_[blob.digest];
      script = scripts_[blob.digest];
      if (attempt <= script.corrupt_times && !bytes.empty()) bytes.back() = static_cast<char>(bytes.back() ^ 1);
    }
    InFlight counted(*this);
    bool paused = false;
    for (uint64_t at = sink.bytes_held(); at < bytes.size();) {
      if (script.gate && !paused && at >= script.pause_after) {
        paused = true;
        if (script.reached) script.reached->open();
        if (!script.gate->wait(sink)) {
          // As RegistryClient's transfers end: cancelled, or stalled for too long.
          if (sink.cancelled()) return Error(ErrorCode::kCancelled, "cancelled");
          return Error(ErrorCode::kUnavailable, "blob " + blob.digest.str() + ": stalled, gate never opened");
        }
      }
      size_t n = std::min<uint64_t>(kPieceBytes, bytes.size() - at);
      if (script.gate && !paused && at < script.pause_after) n = std::min<uint64_t>(n, script.pause_after - at);
      IMGPULL_TRY(sink.write(bytes.data() + at, n));
      at += n;
    }
    return {};
  }

  Status fetch_foreign_blob(const Descriptor& blob, BlobSink&) override {
    return Error(ErrorCode::kUnsupported, "the fake registry serves no foreign layer " + blob.digest.str());
  }

 private:
  struct InFlight {
    explicit InFlight(FakeRegistry& r) : r_(r) {
      int now = ++r_.in_flight_;
      int seen = r_.max_in_flight_.load();
      while (now > seen && !r_.max_in_flight_.compare_exchange_weak(seen, now)) {
      }
    }
    ~InFlight() { --r_.in_flight_; }
    FakeRegistry& r_;
  };

  // What connector() hands out: forwards to the registry, owning nothing.
  class Borrowed : public Registry {
   public:
    explicit Borrowed(FakeRegistry& r) : r_(r) {}
    Result<FetchedManifest> get_manifest(const std::string& s) override { return r_.get_manifest(s); }
    Result<ManifestHead> head_manifest(const std::string& s) override { return r_.head_manifest(s); }
    Result<std::string> get_blob(const Descriptor& b, size_t m) override { return r_.get_blob(b, m); }
    Status fetch_blob(const Descriptor& b, BlobSink& s) override { return r_.fetch_blob(b, s); }
    Status fetch_foreign_blob(const Descriptor& b, BlobSink& s) override { return r_.fetch_foreign_blob(b, s); }

   private:
    FakeRegistry& r_;
  };

  struct Document {
    std::string bytes;
    std::string media_type;  // served as its Content-Type
  };

  mutable std::mutex mutex_;
  std::map<std::string, Document> manifests_;  // by tag and by digest
  std::vector<std::string> manifest_requests_;
  bool head_without_digest_ = false;
  std::optional<Error> head_refusal_;
  std::map<Digest, std::string> blobs_;
  std::map<Digest, BlobScript> scripts_;
  std::map<Digest, int> fetches_;
  std::atomic<int> connects_{0};
  std::atomic<int> in_flight_{0};
  std::atomic<int> max_in_flight_{0};
};

}  // namespace imgpull::testing
