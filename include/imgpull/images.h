// Local image operations, as docker's image commands do them: finding an
// image by name or ID, inspect, history, tag, rmi, prune and verify. They
// read and write nothing but the OCI layout (store.h), so every command, and
// skopeo and umoci, see the same images.
//
//   IMGPULL_ASSIGN_OR_RETURN(FoundImage found, find_local_image(store, "alpine"));
//   IMGPULL_ASSIGN_OR_RETURN(auto doc, inspect_image(store, found.image));
//   IMGPULL_ASSIGN_OR_RETURN(PruneReport freed, prune_store(store, {}));
//
// An image's ID is its config digest, as docker's is: two names whose
// manifests differ (a Docker schema 2 manifest and its OCI conversion) but
// share a config are one image with two names.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "imgpull/digest.h"
#include "imgpull/error.h"
#include "imgpull/manifest.h"
#include "imgpull/store.h"

namespace imgpull {

// ---- finding ----

struct FoundImage {
  StoredImage image;
  // Whether the text named a record (or a repository@repo-digest) rather
  // than an image ID: `save` writes RepoTags only for what was named.
  bool by_name = false;
};

// What the user typed, found as docker finds it: a reference normalised like
// docker's ("alpine" is docker.io/library/alpine:latest), a
// repository@digest where the digest is a record's repo digest, or an image
// ID ("sha256:" optional, any unique prefix of the hex). Fails with
// kNotFound and the message "No such image: TEXT" when nothing matches.
Result<FoundImage> find_local_image(const Store& store, std::string_view text);

// The records naming the image with config `id`, in index.json order.
Result<std::vector<ImageRecord>> records_for_id(const Store& store, const Digest& id);

// docker images' REPOSITORY[:TAG] argument: a glob ("*" stops at "/", as
// Go's path.Match) matched against the familiar name ("alpine",
// "localhost:5000/x") and the familiar name with its tag, or the same with
// the full name ("docker.io/library/alpine").
bool matches_image_pattern(std::string_view pattern, const std::string& record_name);

// The bytes an image takes in the store: config plus (compressed) layers, as
// containerd counts it; the unpacked size is not known without a rootfs.
int64_t content_size(const ImageManifest& manifest);

// ---- inspect, history ----

// One element of `docker image inspect`'s array, keys in docker's order:
// Id, RepoTags, RepoDigests, Parent, Comment, Created, DockerVersion, Author,
// Config, Architecture, Variant, Os, OsVersion, Size, RootFS, Metadata,
// Descriptor (the stored manifest, as docker's containerd store shows it).
Result<nlohmann::ordered_json> inspect_image(const Store& store, const StoredImage& image);

struct HistoryRow {
  std::optional<Digest> id;  // the image ID on the newest row; docker shows <missing> elsewhere
  std::string created;       // RFC 3339, "" when unknown
  std::string created_by;
  int64_t size = 0;          // the layer's (compressed) size from the manifest; 0 for empty layers
  std::string comment;
};

// The config's history, newest first, each non-empty entry paired with its
// layer in order. An image without history gets one row per layer.
std::vector<HistoryRow> image_history(const StoredImage& image);

// ---- tag, rmi ----

// Names `image` also as `target`, normalised like docker ("x" is
// docker.io/library/x:latest), replacing what that name pointed at. Returns
// the new record's name. A target with a digest is refused, as docker
// refuses it. The repo digest is kept only within the same repository: it is
// a digest that repository's registry serves, not another's.
Result<std::string> tag_image(Store& store, const StoredImage& image, std::string_view target);

struct RemovedImage {
  std::vector<std::string> untagged;  // familiar references, docker's "Untagged: X" lines
  std::optional<Digest> deleted;      // the image ID, when no name is left for it
};

// Removes the name `text` finds (see find_local_image). By image ID it
// removes the one name the image has; an ID with several names is refused,
// as docker refuses it without -f. Blobs stay until prune_store.
Result<RemovedImage> remove_local_image(Store& store, std::string_view text);

// ---- prune, verify ----

// The blobs `records` need: each manifest, everything it points at (through
// indexes, to configs and layers), and the registry's own manifest or index
// named by the record's repo digest with what that points at. Only blobs in
// the store are walked into; one that is missing is simply not there to keep.
// Fails when a present manifest cannot be read or parsed, since then what it
// keeps is unknown.
Result<std::set<Digest>> reachable_blobs(const Store& store, const std::vector<ImageRecord>& records);

struct PrunedItem {
  // "sha256:..." for a blob, "ingest/<name>" for a partial download, the path
  // of a root filesystem a killed pull or unpack left half-made
  std::string what;
  uint64_t bytes = 0;
};

struct PruneOptions {
  // A partial download not written to for this long is left over from a
  // process that died; live ones are written to at least every stall
  // timeout (a minute by default).
  std::chrono::seconds ingest_max_age{3600};
  std::function<void()> on_wait;  // once, when another process has the store open
  std::function<void(const PrunedItem&)> on_deleted;
};

struct PruneReport {
  size_t blobs_deleted = 0;
  size_t ingest_files_deleted = 0;
  size_t staging_dirs_deleted = 0;  // half-made root filesystems (ROOT/staging records)
  uint64_t bytes_reclaimed = 0;
};

// Deletes every blob no record reaches (see reachable_blobs), stale ingest
// files, and the staging directories of root filesystems that killed pulls
// and unpacks left beside their DIRs (recorded in ROOT/staging). Waits until
// no other process has the store open (see Store::take_sole_use); other
// Store objects for the same root in this process count as other users, so
// close them first.
Result<PruneReport> prune_store(Store& store, const PruneOptions& options);

struct VerifyProblem {
  enum class Kind { kCorrupt, kMissing, kUnreadable };
  Kind kind;
  Digest digest;
  // "corrupt: sha256:X hashes to sha256:Y",
  // "missing: sha256:X (layer 2 of 3 of docker.io/library/a:1)".
  std::string message;
};

struct VerifyReport {
  size_t blobs_checked = 0;
  uint64_t bytes_checked = 0;
  size_t images_checked = 0;
  std::vector<VerifyProblem> problems;
  bool ok() const { return problems.empty(); }
};

// Re-hashes every blob and checks that every record's manifest, config and
// layers are present. `on_problem` (optional) hears each problem as it is
// found. Fails only when the store itself cannot be read.
Result<VerifyReport> verify_store(const Store& store,
                                  const std::function<void(const VerifyProblem&)>& on_problem);

}  // namespace imgpull
