// The commands of images.h in one file (~520 lines): lookups, inspect, tag and
// rmi, then prune and verify, which read records and manifests as the lookups do.
#include "imgpull/images.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <fnmatch.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <filesystem>
#include <map>

#include "base/sys_error.h"
#include "base/unique_fd.h"
#include "imgpull/client.h"  // store_name_for
#include "imgpull/reference.h"
#include "store/file_lock.h"
#include "unpack/staged_dir.h"

namespace imgpull {
namespace fs = std::filesystem;
namespace {

Error no_such_image(std::string_view text) {
  return Error(ErrorCode::kNotFound, fmt::format("No such image: {}", text));
}

// The image manifest a record names (index.json only ever names image
// manifests, but a hand-edited one might name an index).
Result<ImageManifest> read_image_manifest(const Store& store, const Descriptor& descriptor) {
  IMGPULL_ASSIGN_OR_RETURN(std::string bytes, store.read_blob(descriptor.digest, kMaxManifestBytes));
  IMGPULL_ASSIGN_OR_RETURN(ParsedManifest parsed, parse_manifest(bytes, descriptor.media_type));
  auto* manifest = std::get_if<ImageManifest>(&parsed);
  if (manifest == nullptr) {
    return Error(ErrorCode::kUnsupported,
                 fmt::format("{} is an index, not an image manifest", descriptor.digest.str()));
  }
  return std::move(*manifest);
}

// The image ID of each record whose manifest can be read; the others cannot
// be found by ID (verify reports them).
std::vector<std::pair<ImageRecord, Digest>> ids_of(const Store& store, const std::vector<ImageRecord>& records) {
  std::vector<std::pair<ImageRecord, Digest>> out;
  for (const auto& record : records) {
    auto manifest = read_image_manifest(store, record.manifest);
    if (manifest) out.emplace_back(record, manifest->config.digest);
  }
  return out;
}

// "sha256:abc", "abc123": the hex prefix of an image ID, or nullopt when the
// text cannot be one.
std::optional<std::string> id_prefix(std::string_view text) {
  if (text.starts_with("sha256:")) text.remove_prefix(7);
  if (text.empty() || text.size() > 64) return std::nullopt;
  for (char c : text) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return std::nullopt;
  }
  return std::string(text);
}

std::optional<ImageRecord> find_by_name(const std::vector<ImageRecord>& records, std::string_view text) {
  auto ref = Reference::parse(text);
  if (!ref) return std::nullopt;
  std::string name = store_name_for(*ref);
  for (const auto& record : records) {
    if (record.name == name) return record;
  }
  if (!ref->digest) return std::nullopt;
  // repository@digest names every record of that repository pulled with
  // that repo digest: they are one image, so the first will do.
  for (const auto& record : records) {
    auto named = Reference::parse(record.name);
    if (named && named->name() == ref->name() && record.repo_digest == ref->digest) return record;
  }
  return std::nullopt;
}

Result<std::optional<ImageRecord>> find_by_id(const Store& store, const std::vector<ImageRecord>& records,
                                              std::string_view text) {
  auto prefix = id_prefix(text);
  if (!prefix) return std::optional<ImageRecord>();
  std::optional<ImageRecord> found;
  std::optional<Digest> found_id;
  for (auto& [record, id] : ids_of(store, records)) {
    if (!id.hex().starts_with(*prefix)) continue;
    if (found_id && *found_id != id) {
      return Error(ErrorCode::kInvalidArgument,
                   fmt::format("{} is ambiguous: it starts both image {} and image {}", text,
                               found_id->short_hex(), id.short_hex()));
    }
    if (!found) found = record;
    found_id = id;
  }
  return found;
}

// A full "sha256:<64 hex>" is an ID before it is anything else (as a
// reference it would be a tag of docker.io/library/sha256).
bool is_full_id(std::string_view text) {
  return text.starts_with("sha256:") && text.size() == 7 + 64 && id_prefix(text).has_value();
}

Result<std::optional<ImageRecord>> find_record(const Store& store, const std::vector<ImageRecord>& records,
                                               std::string_view text, bool& by_name) {
  by_name = false;
  if (!is_full_id(text)) {
    if (auto named = find_by_name(records, text)) {
      by_name = true;
      return named;
    }
  }
  return find_by_id(store, records, text);
}

std::string familiar_or_raw(const std::string& record_name) {
  auto ref = Reference::parse(record_name);
  return ref ? ref->familiar() : record_name;
}

std::string json_string(const nlohmann::json& doc, const char* key) {
  auto it = doc.find(key);
  return it != doc.end() && it->is_string() ? it->get<std::string>() : "";
}

// RepoTags and RepoDigests of `inspect`: every name of the image, familiar.
void add_repo_names(const std::vector<ImageRecord>& records, nlohmann::ordered_json& tags,
                    nlohmann::ordered_json& digests) {
  std::set<std::string> seen_digests;
  auto add_digest = [&](const std::string& s) {
    if (seen_digests.insert(s).second) digests.push_back(s);
  };
  for (const auto& record : records) {
    auto ref = Reference::parse(record.name);
    if (!ref) continue;
    if (ref->digest) {
      add_digest(ref->familiar_name() + "@" + ref->digest->str());
    } else {
      tags.push_back(ref->familiar());
    }
    if (record.repo_digest) add_digest(ref->familiar_name() + "@" + record.repo_digest->str());
  }
}

}  // namespace

// ---- finding ----

Result<FoundImage> find_local_image(const Store& store, std::string_view text) {
  IMGPULL_ASSIGN_OR_RETURN(auto records, store.list_images());
  bool by_name = false;
  IMGPULL_ASSIGN_OR_RETURN(auto record, find_record(store, records, text, by_name));
  if (!record) return no_such_image(text);
  auto image = store.load_image(*record);
  if (!image) return std::move(image).error().wrap(record->name);
  return FoundImage{std::move(image).value(), by_name};
}

Result<std::vector<ImageRecord>> records_for_id(const Store& store, const Digest& id) {
  IMGPULL_ASSIGN_OR_RETURN(auto records, store.list_images());
  std::vector<ImageRecord> out;
  for (auto& [record, record_id] : ids_of(store, records)) {
    if (record_id == id) out.push_back(std::move(record));
  }
  return out;
}

bool matches_image_pattern(std::string_view pattern, const std::string& record_name) {
  auto ref = Reference::parse(record_name);
  if (!ref) return false;
  std::string glob(pattern);
  // FNM_PATHNAME: "*" does not cross "/", as Go's path.Match that docker uses.
  auto match = [&](const std::string& candidate) {
    return ::fnmatch(glob.c_str(), candidate.c_str(), FNM_PATHNAME) == 0;
  };
  return match(ref->familiar_name()) || match(ref->familiar()) || match(ref->name()) || match(ref->str());
}

int64_t content_size(const ImageManifest& manifest) {
  int64_t size = manifest.config.size;
  for (const auto& layer : manifest.layers) size += layer.size;
  return size;
}

// ---- inspect, history ----

Result<nlohmann::ordered_json> inspect_image(const Store& store, const StoredImage& image) {
  using ojson = nlohmann::ordered_json;
  const Digest& id = image.manifest.config.digest;
  IMGPULL_ASSIGN_OR_RETURN(auto names, records_for_id(store, id));
  if (names.empty()) names.push_back(image.record);  // removed meanwhile: still describe what was found
  const nlohmann::json& raw = image.config.raw;
  ojson doc;
  doc["Id"] = id.str();
  doc["RepoTags"] = ojson::array();
  doc["RepoDigests"] = ojson::array();
  add_repo_names(names, doc["RepoTags"], doc["RepoDigests"]);
  doc["Parent"] = "";
  doc["Comment"] = json_string(raw, "comment");
  doc["Created"] = image.config.created;
  doc["DockerVersion"] = json_string(raw, "docker_version");
  doc["Author"] = json_string(raw, "author");
  auto config = raw.find("config");
  doc["Config"] = config != raw.end() && config->is_object() ? ojson::parse(config->dump()) : ojson(nullptr);
  doc["Architecture"] = image.config.platform.architecture;
  if (!image.config.platform.variant.empty()) doc["Variant"] = image.config.platform.variant;
  doc["Os"] = image.config.platform.os;
  if (!image.config.platform.os_version.empty()) doc["OsVersion"] = image.config.platform.os_version;
  doc["Size"] = content_size(image.manifest);
  ojson layers = ojson::array();
  for (const auto& diff_id : image.config.diff_ids) layers.push_back(diff_id.str());
  std::string rootfs_type = raw.contains("rootfs") ? json_string(raw["rootfs"], "type") : "";
  doc["RootFS"] = {{"Type", rootfs_type.empty() ? "layers" : rootfs_type}, {"Layers", layers}};
  // Docker's zero time when the image was never tagged locally.
  doc["Metadata"] = {{"LastTagTime", image.record.pulled_at.empty() ? "0001-01-01T00:00:00Z"
                                                                     : image.record.pulled_at}};
  doc["Descriptor"] = {{"mediaType", image.record.manifest.media_type},
                       {"digest", image.record.manifest.digest.str()},
                       {"size", image.record.manifest.size}};
  return doc;
}

std::vector<HistoryRow> image_history(const StoredImage& image) {
  const auto& layers = image.manifest.layers;
  std::vector<HistoryRow> rows;
  size_t layer = 0;
  for (const auto& entry : image.config.history) {
    HistoryRow row{std::nullopt, entry.created, entry.created_by, 0, entry.comment};
    if (!entry.empty_layer) {
      if (layer < layers.size()) row.size = layers[layer].size;
      ++layer;
    }
    rows.push_back(std::move(row));
  }
  if (image.config.history.empty()) {
    for (const auto& l : layers) rows.push_back(HistoryRow{std::nullopt, image.config.created, "", l.size, ""});
  }
  std::reverse(rows.begin(), rows.end());
  if (!rows.empty()) rows.front().id = image.manifest.config.digest;
  return rows;
}

// ---- tag, rmi ----

Result<std::string> tag_image(Store& store, const StoredImage& image, std::string_view target) {
  IMGPULL_ASSIGN_OR_RETURN(Reference ref, Reference::parse(target));
  if (ref.digest) {
    return Error(ErrorCode::kInvalidArgument,
                 fmt::format("refusing to create a tag with a digest reference: {}", target));
  }
  ImageRecord record = image.record;
  record.name = store_name_for(ref);
  auto source = Reference::parse(image.record.name);
  if (!source || source->name() != ref.name()) record.repo_digest.reset();
  IMGPULL_TRY(store.record_image(record));
  return record.name;
}

Result<RemovedImage> remove_local_image(Store& store, std::string_view text) {
  IMGPULL_ASSIGN_OR_RETURN(FoundImage found, find_local_image(store, text));
  const Digest& id = found.image.manifest.config.digest;
  IMGPULL_ASSIGN_OR_RETURN(auto names, records_for_id(store, id));
  if (!found.by_name && names.size() > 1) {
    std::string list;
    for (const auto& r : names) list += (list.empty() ? "" : ", ") + familiar_or_raw(r.name);
    return Error(ErrorCode::kInvalidArgument,
                 fmt::format("conflict: unable to delete {} - image is referenced by several names ({}); "
                             "remove them by name",
                             id.short_hex(), list));
  }
  const ImageRecord& record = found.image.record;
  IMGPULL_TRY(store.remove_image(record.name));
  RemovedImage removed;
  removed.untagged.push_back(familiar_or_raw(record.name));
  IMGPULL_ASSIGN_OR_RETURN(auto left, records_for_id(store, id));
  if (left.empty()) {
    // As docker: the digest reference goes with the image's last name.
    auto ref = Reference::parse(record.name);
    if (ref && record.repo_digest && ref->digest != record.repo_digest) {
      removed.untagged.push_back(ref->familiar_name() + "@" + record.repo_digest->str());
    }
    removed.deleted = id;
  }
  return removed;
}

// ---- prune, verify ----

namespace {

// Walks manifests and indexes from the records down, marking every blob met.
class ReachabilityWalk {
 public:
  explicit ReachabilityWalk(const Store& store) : store_(store) {}

  // `media_type` "" when unknown (a repo digest): the document says.
  Status visit_manifest(const Digest& digest, const std::string& media_type, const std::string& why) {
    if (!keep_.insert(digest).second || !store_.has_blob(digest)) return {};
    auto bytes = store_.read_blob(digest, kMaxManifestBytes);
    if (!bytes) return std::move(bytes).error().wrap(why);
    auto parsed = parse_manifest(*bytes, media_type);
    if (!parsed) return std::move(parsed).error().wrap(fmt::format("{}: manifest {}", why, digest.str()));
    if (auto* manifest = std::get_if<ImageManifest>(&*parsed)) {
      keep_.insert(manifest->config.digest);
      for (const auto& layer : manifest->layers) keep_.insert(layer.digest);
      return {};
    }
    for (const auto& child : std::get<ImageIndex>(*parsed).manifests) {
      IMGPULL_TRY(visit_manifest(child.digest, child.media_type, why));
    }
    return {};
  }

  std::set<Digest> take() { return std::move(keep_); }

 private:
  const Store& store_;
  std::set<Digest> keep_;
};

// Holds the store to itself for as long as it lives (see prune_store).
class SoleUse {
 public:
  static Result<SoleUse> take(Store& store, const std::function<void()>& on_wait) {
    IMGPULL_TRY(store.take_sole_use(on_wait));
    return SoleUse(store);
  }
  SoleUse(SoleUse&& other) noexcept : store_(std::exchange(other.store_, nullptr)) {}
  ~SoleUse() {
    if (store_ != nullptr) (void)store_->end_sole_use();
  }

 private:
  explicit SoleUse(Store& store) : store_(&store) {}
  Store* store_;
};

uint64_t size_on_disk(const fs::path& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 ? static_cast<uint64_t>(st.st_size) : 0;
}

Result<PruneReport> delete_unreachable_blobs(Store& store, const std::set<Digest>& keep,
                                             const PruneOptions& options) {
  PruneReport report;
  IMGPULL_ASSIGN_OR_RETURN(auto blobs, store.list_blobs());
  for (const auto& blob : blobs) {
    if (keep.contains(blob)) continue;
    uint64_t size = size_on_disk(store.blob_path(blob));
    IMGPULL_TRY(store.remove_blob(blob));
    ++report.blobs_deleted;
    report.bytes_reclaimed += size;
    if (options.on_deleted) options.on_deleted(PrunedItem{blob.str(), size});
  }
  return report;
}

Status delete_stale_ingest_files(const Store& store, const PruneOptions& options, PruneReport& report) {
  fs::path dir = store.root() / "ingest";
  auto now = fs::file_time_type::clock::now();
  std::error_code ec;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    std::error_code stat_ec;
    auto written = fs::last_write_time(it->path(), stat_ec);
    if (stat_ec || !it->is_regular_file(stat_ec) || now - written < options.ingest_max_age) continue;
    uint64_t size = size_on_disk(it->path());
    if (::unlink(it->path().c_str()) != 0 && errno != ENOENT) {
      return sys_error("cannot remove", it->path());
    }
    ++report.ingest_files_deleted;
    report.bytes_reclaimed += size;
    if (options.on_deleted) options.on_deleted(PrunedItem{"ingest/" + it->path().filename().string(), size});
  }
  if (ec && ec != std::errc::no_such_file_or_directory) {
    return sys_error("cannot list", dir, ec.value());
  }
  return {};
}

Status delete_dead_staging_dirs(const Store& store, const PruneOptions& options, PruneReport& report) {
  IMGPULL_ASSIGN_OR_RETURN(auto removed, remove_dead_staged_dirs(store.staging_records_dir()));
  for (const auto& dir : removed) {
    ++report.staging_dirs_deleted;
    report.bytes_reclaimed += dir.bytes;
    if (options.on_deleted) options.on_deleted(PrunedItem{dir.path.string(), dir.bytes});
  }
  return {};
}

// Streams a file through the hasher; `bytes` gets its length.
Result<Digest> hash_file(const fs::path& path, DigestAlgorithm algorithm, uint64_t& bytes) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) return sys_error("cannot open", path);
  Hasher hasher(algorithm);
  std::vector<char> buf(1 << 20);
  for (;;) {
    ssize_t n = ::read(fd.get(), buf.data(), buf.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return sys_error("cannot read", path);
    if (n == 0) break;
    hasher.update(buf.data(), static_cast<size_t>(n));
  }
  bytes = hasher.bytes_hashed();
  return hasher.finish();
}

class Verifier {
 public:
  Verifier(const Store& store, const std::function<void(const VerifyProblem&)>& on_problem)
      : store_(store), on_problem_(on_problem) {}

  Status check_blobs() {
    IMGPULL_ASSIGN_OR_RETURN(auto blobs, store_.list_blobs());
    for (const auto& blob : blobs) {
      uint64_t bytes = 0;
      auto actual = hash_file(store_.blob_path(blob), blob.algorithm(), bytes);
      ++report_.blobs_checked;
      report_.bytes_checked += bytes;
      if (!actual) {
        problem(VerifyProblem::Kind::kUnreadable, blob, "unreadable: " + actual.error().message());
      } else if (*actual != blob) {
        corrupt_.insert(blob);
        problem(VerifyProblem::Kind::kCorrupt, blob, fmt::format("corrupt: {} hashes to {}", blob.str(), actual->str()));
      }
    }
    return {};
  }

  Status check_records() {
    IMGPULL_ASSIGN_OR_RETURN(auto records, store_.list_images());
    for (const auto& record : records) {
      ++report_.images_checked;
      check_record(record);
    }
    return {};
  }

  VerifyReport take() { return std::move(report_); }

 private:
  void check_record(const ImageRecord& record) {
    const Digest& digest = record.manifest.digest;
    if (!present(digest, "manifest of " + record.name) || corrupt_.contains(digest)) return;
    auto manifest = read_image_manifest(store_, record.manifest);
    if (!manifest) {
      problem(VerifyProblem::Kind::kUnreadable, digest,
              fmt::format("unreadable: manifest {} of {}: {}", digest.str(), record.name, manifest.error().message()));
      return;
    }
    present(manifest->config.digest, "config of " + record.name);
    const auto& layers = manifest->layers;
    for (size_t i = 0; i < layers.size(); ++i) {
      present(layers[i].digest, fmt::format("layer {} of {} of {}", i + 1, layers.size(), record.name));
    }
  }

  bool present(const Digest& digest, const std::string& what) {
    if (store_.has_blob(digest)) return true;
    problem(VerifyProblem::Kind::kMissing, digest, fmt::format("missing: {} ({})", digest.str(), what));
    return false;
  }

  void problem(VerifyProblem::Kind kind, const Digest& digest, std::string message) {
    VerifyProblem p{kind, digest, std::move(message)};
    if (on_problem_) on_problem_(p);
    report_.problems.push_back(std::move(p));
  }

  const Store& store_;
  const std::function<void(const VerifyProblem&)>& on_problem_;
  std::set<Digest> corrupt_;
  VerifyReport report_;
};

}  // namespace

Result<std::set<Digest>> reachable_blobs(const Store& store, const std::vector<ImageRecord>& records) {
  ReachabilityWalk walk(store);
  for (const auto& record : records) {
    IMGPULL_TRY(walk.visit_manifest(record.manifest.digest, record.manifest.media_type, record.name));
    if (record.repo_digest) IMGPULL_TRY(walk.visit_manifest(*record.repo_digest, "", record.name));
  }
  return walk.take();
}

// Why prune coordinates through a lock and not through blob ages:
//
// A pull commits layers, then the config, then the manifests to blobs/, and
// only then names the image in index.json, so that a named image never
// lacks a blob. Between the first commit and the record its blobs are
// unreachable, for as long as the other layers take to download. And a pull
// reuses blobs it finds present without fetching them: a layer left
// unreachable by an rmi is "Already exists" to a pull of an image sharing
// it, decided at the start of the pull and named at its end.
//
// An age limit ("keep blobs younger than N minutes") protects the first
// case only for pulls shorter than N, and the second not at all (the reused
// blob is old). Checking under the index lock that a record's blobs exist
// would keep index.json honest but fail the pull.
//
// So every open Store holds a shared lock on ROOT/.in-use.lock for its
// lifetime, and prune takes it exclusively: it runs only while no other
// process has the store open (it waits for running pulls), and no pull can
// open the store until it is done. It also holds the index lock, so that
// nothing changes index.json between the walk and the sweep. A prune stats
// and unlinks, it hashes nothing, so pulls wait for it only briefly.
Result<PruneReport> prune_store(Store& store, const PruneOptions& options) {
  IMGPULL_ASSIGN_OR_RETURN(SoleUse sole_use, SoleUse::take(store, options.on_wait));
  IMGPULL_ASSIGN_OR_RETURN(FileLock index_lock, store.lock_index());
  IMGPULL_ASSIGN_OR_RETURN(auto records, store.list_images());
  auto keep = reachable_blobs(store, records);
  if (!keep) {
    return std::move(keep).error().wrap(
        "cannot tell which blobs are in use, so nothing was deleted (imgpull verify lists damaged blobs)");
  }
  IMGPULL_ASSIGN_OR_RETURN(PruneReport report, delete_unreachable_blobs(store, *keep, options));
  IMGPULL_TRY(delete_stale_ingest_files(store, options, report));
  IMGPULL_TRY(delete_dead_staging_dirs(store, options, report));
  return report;
}

Result<VerifyReport> verify_store(const Store& store,
                                  const std::function<void(const VerifyProblem&)>& on_problem) {
  Verifier verifier(store, on_problem);
  IMGPULL_TRY(verifier.check_blobs());
  IMGPULL_TRY(verifier.check_records());
  return verifier.take();
}

}  // namespace imgpull
