// The local content store: an OCI image layout on disk that skopeo, umoci and
// podman read as it is.
//
//  ROOT/oci-layout            {"imageLayoutVersion":"1.0.0"}
//  ROOT/index.json            one entry per image name (annotation
//                             org.opencontainers.image.ref.name = the full
//                             reference, "docker.io/library/x:latest")
//  ROOT/blobs/sha256/<hex>    manifests, indexes, configs, layers
//  ROOT/ingest/<hex>.partial  downloads in flight or interrupted; never read as
//                             content, continued by the next ingest of that blob
//  ROOT/staging/<id>          the path of a root filesystem being made beside
//                             its directory (pull --rootfs, unpack), so prune
//                             finds one a killed process left half-made
//  ROOT/.lock                 taken around every change to index.json
//  ROOT/.in-use.lock          shared by every open Store, exclusive for prune
//
// A blob only ever appears under blobs/ by rename(2) after its size and
// digest were checked, so a reader never sees a half-written or wrong blob,
// whatever happened to the writer. index.json is replaced the same way, under
// a lock, so two processes can record images at once.
//
//   IMGPULL_ASSIGN_OR_RETURN(Store store, Store::open("/var/lib/imgpull"));
//   IMGPULL_ASSIGN_OR_RETURN(auto writer, store.begin_ingest(digest, size));
//   if (writer) { IMGPULL_TRY(writer->write(data, n)); IMGPULL_TRY(writer->commit()); }
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "imgpull/digest.h"
#include "imgpull/error.h"
#include "imgpull/manifest.h"

namespace imgpull {

// The annotation OCI tools look an image up by.
inline constexpr const char* kRefNameAnnotation = "org.opencontainers.image.ref.name";
// The digest the registry knows the image by (its manifest, or the index it
// came from), which is what `docker images --digests` shows.
inline constexpr const char* kRepoDigestAnnotation = "io.imgpull.repo-digest";
// When the pulled image's manifest was stored.
inline constexpr const char* kPulledAtAnnotation = "io.imgpull.pulled-at";

struct ImageRecord {
  std::string name;               // full reference: "docker.io/library/x:latest" or "...@sha256:..."
  Descriptor manifest;            // an OCI image manifest in the store
  std::optional<Digest> repo_digest;
  std::string pulled_at;          // RFC 3339
};

// An image in the store with its manifest and config read and checked.
struct StoredImage {
  ImageRecord record;
  ImageManifest manifest;
  ImageConfig config;
};

class FileLock;  // an flock held on a file of the store (private: store/file_lock.h)
struct PruneOptions;
struct PruneReport;

// Writes one blob into ingest/, hashing as it goes; commit() checks size and
// digest and only then moves it into blobs/.
//
// The writer holds an flock on its ingest file for its whole life, so two
// processes never write one file. A writer may start from bytes an earlier,
// interrupted writer (a killed process, a failed pull) left in the file: it
// re-hashes them (resumed_bytes()) and appends. Destroying an uncommitted
// writer therefore keeps a non-empty partial file for the next pull; bytes
// known to be bad (a size or digest mismatch) are removed by commit() and
// discard().
class BlobWriter {
 public:
  ~BlobWriter();
  BlobWriter(const BlobWriter&) = delete;
  BlobWriter& operator=(const BlobWriter&) = delete;

  // Appends bytes. A full disk is reported as "no space left on device
  // writing blob <digest> to <path>"; what was written stays resumable.
  Status write(const void* data, size_t size);
  // Starts the blob over from its first byte (a server that ignored a Range
  // request sends everything again). Bytes are overwritten in place, so a
  // reader following the file never sees it shrink.
  Status restart();
  // Checks size and digest; on a mismatch the partial file is removed (a
  // retry starts from the first byte) and the error names the blob, the
  // expected and the actual digest (or sizes).
  Status commit();
  // Removes the partial file and ends the writer (its bytes are not wanted).
  void discard();
  uint64_t bytes_written() const { return hasher_.bytes_hashed(); }
  // How many of bytes_written() were already in the ingest file when the
  // writer was made (left by an interrupted pull), rather than written by it.
  uint64_t resumed_bytes() const { return resumed_; }
  // A read-only descriptor of the blob being written, for a reader that
  // follows the download (it stays valid after commit renames the file).
  // The caller owns it.
  Result<int> open_reader() const;
  const Digest& expected() const { return expected_; }

  // ---- A blob written by several connections at once, each its own range ----
  // Byte ranges [start, end) of the blob.
  using Ranges = std::vector<std::pair<uint64_t, uint64_t>>;
  // Writes bytes at `offset`, unhashed; safe from several threads at once.
  // The hash follows the contiguous prefix: hash_if_next, hash_file_until.
  Status write_at(uint64_t offset, const void* data, size_t size);
  // Hashes `data` (just written at `offset`) when it continues the hashed
  // prefix; false when it does not. One thread at a time, as the next two.
  bool hash_if_next(uint64_t offset, const void* data, size_t size);
  // Hashes the file's bytes from the end of the hashed prefix up to `end`.
  Status hash_file_until(uint64_t end);
  // Writes which ranges the file holds to `<hex>.ranges` beside it, so that
  // a later pull fetches only the holes; call only for bytes already
  // written. The record goes with the file (commit, discard).
  Status record_ranges(const Ranges& held);
  // The ranges the file held when this writer was made, from the record an
  // interrupted ranged download left (empty without one: then the
  // resumed_bytes() prefix is all there is).
  const Ranges& recorded_ranges() const { return recorded_; }

 private:
  friend class Store;
  BlobWriter(int fd, std::filesystem::path ingest_path, std::filesystem::path blob_path,
             Digest expected, int64_t expected_size);
  // Takes over what the ingest file holds: hashes it and positions the
  // writer after it. A file longer than the blob can be, or one that cannot
  // be read, is emptied instead.
  Status adopt_existing();

  int fd_;
  std::filesystem::path ingest_path_;
  std::filesystem::path blob_path_;
  Digest expected_;
  int64_t expected_size_;  // -1: unknown
  Hasher hasher_;
  uint64_t resumed_ = 0;
  Ranges recorded_;
  // Takes over a ranges record: the prefix it covers is re-hashed, the rest
  // listed in recorded_. False when there is none (or it is unusable).
  Result<bool> adopt_recorded_ranges(uint64_t file_size);
  // Drops the record once the file is written as one stream again.
  Status forget_ranges();
  std::filesystem::path ranges_path() const;
  bool done_ = false;
  bool broken_ = false;  // a write failed: the file holds less than the hash covers
};

class Store {
 public:
  // Opens (and, when missing, creates) the layout at `root`.
  static Result<Store> open(const std::filesystem::path& root);
  // $XDG_DATA_HOME/imgpull (or ~/.local/share/imgpull); /var/lib/imgpull for root.
  static std::filesystem::path default_root();

  const std::filesystem::path& root() const { return root_; }
  std::filesystem::path blob_path(const Digest& digest) const;
  bool has_blob(const Digest& digest) const;
  // ROOT/staging: where output directories being made are recorded.
  std::filesystem::path staging_records_dir() const { return root_ / "staging"; }

  // Reads a whole small blob and checks it against its digest.
  Result<std::string> read_blob(const Digest& digest, size_t max_bytes) const;
  // Stores `bytes` as the blob `digest` (checked) unless it is already there.
  Status write_blob(const Digest& digest, std::string_view bytes);
  // A writer for the blob, or nullptr when the blob is already in the store
  // (perhaps because another process finished it while we waited for its
  // lock). `size` < 0 when unknown. Bytes an interrupted pull left in the
  // ingest file are kept and continued (see BlobWriter).
  Result<std::unique_ptr<BlobWriter>> begin_ingest(const Digest& digest, int64_t size);
  // The same without waiting for another process: `busy` (and no writer)
  // while another process holds the blob's ingest file. A pull that holds
  // some blobs' files must not wait for another's, or two pulls sharing
  // layers could each wait for the other.
  struct IngestAttempt {
    std::unique_ptr<BlobWriter> writer;  // nullptr: in the store already, or busy
    bool busy = false;
  };
  Result<IngestAttempt> try_begin_ingest(const Digest& digest, int64_t size);

  // Every blob under blobs/ (files whose names are not digests are skipped).
  Result<std::vector<Digest>> list_blobs() const;
  // Unlinks a blob; only prune, under take_sole_use, may call this.
  Status remove_blob(const Digest& digest);

  Result<std::vector<ImageRecord>> list_images() const;
  Result<std::optional<ImageRecord>> find_image(const std::string& name) const;
  // Reads (and verifies) the manifest and config a record names.
  Result<StoredImage> load_image(const ImageRecord& record) const;

  // Adds the record, replacing any with the same name.
  Status record_image(const ImageRecord& record);
  // Removes the record with this name; kNotFound when there is none.
  Status remove_image(const std::string& name);

  // Every open Store holds a shared lock on ROOT/.in-use.lock for its
  // lifetime. This turns it exclusive, waiting (`on_wait` is called first)
  // until no other process has the store open, and keeps it so until
  // end_sole_use. A pull commits blobs before index.json names them, and
  // reuses blobs already present: only this lock lets a garbage collector
  // tell "unreachable" from "about to be named" (see prune_store).
  Status take_sole_use(const std::function<void()>& on_wait);
  Status end_sole_use();

 private:
  Store(std::filesystem::path root, std::shared_ptr<FileLock> in_use)
      : root_(std::move(root)), in_use_(std::move(in_use)) {}
  // prune holds the index lock from its walk of the records to its sweep.
  friend Result<PruneReport> prune_store(Store& store, const PruneOptions& options);
  // The lock record_image and remove_image take around their
  // read-modify-write of index.json.
  Result<FileLock> lock_index() const;
  std::filesystem::path ingest_path(const Digest& digest) const;
  Result<IngestAttempt> take_ingest(const Digest& digest, int64_t size, bool wait);
  Result<std::vector<ImageRecord>> read_index() const;
  Status write_index(const std::vector<ImageRecord>& records);

  std::filesystem::path root_;
  std::shared_ptr<FileLock> in_use_;  // shared by copies of this Store
};

// The index.json document naming `records`, as the store writes it (an
// exported OCI layout gets the same).
std::string oci_index_json(const std::vector<ImageRecord>& records);

// An internal helper that lives in base/clock.h; declared here only until
// src/imgpull/pull/pull.cpp includes base/clock.h (issue 11), then removed.
std::string now_rfc3339();

}  // namespace imgpull
