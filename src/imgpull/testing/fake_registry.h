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
    manifests_[tag] = manifest;
    manifests_[Digest::of(manifest).str()] = manifest;
    return docs;
  }

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
    auto it = manifests_.find(selector);
    if (it == manifests_.end()) return Error(ErrorCode::kNotFound, "manifest " + selector + ": manifest unknown");
    return FetchedManifest{it->second, std::string(media_type::kOciManifest), Digest::of(it->second)};
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
    Result<std::string> get_blob(const Descriptor& b, size_t m) override { return r_.get_blob(b, m); }
    Status fetch_blob(const Descriptor& b, BlobSink& s) override { return r_.fetch_blob(b, s); }
    Status fetch_foreign_blob(const Descriptor& b, BlobSink& s) override { return r_.fetch_foreign_blob(b, s); }

   private:
    FakeRegistry& r_;
  };

  mutable std::mutex mutex_;
  std::map<std::string, std::string> manifests_;
  std::map<Digest, std::string> blobs_;
  std::map<Digest, BlobScript> scripts_;
  std::map<Digest, int> fetches_;
  std::atomic<int> connects_{0};
  std::atomic<int> in_flight_{0};
  std::atomic<int> max_in_flight_{0};
};

}  // namespace imgpull::testing
