#include "imgpull/store.h"

#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <vector>

#include "base/atomic_file.h"
#include "base/file_io.h"
#include "base/sys_error.h"
#include "store/file_lock.h"

namespace imgpull {
namespace fs = std::filesystem;
namespace {

// index.json grows by one small entry per image; 64 MiB is far beyond any
// real store and keeps a corrupt file from exhausting memory.
constexpr size_t kMaxIndexBytes = 64 * 1024 * 1024;

}  // namespace

fs::path Store::default_root() {
  if (::geteuid() == 0) return "/var/lib/imgpull";
  if (const char* xdg = std::getenv("XDG_DATA_HOME"); xdg != nullptr && xdg[0] == '/') {
    return fs::path(xdg) / "imgpull";
  }
  const char* home = std::getenv("HOME");
  return fs::path(home != nullptr ? home : "/tmp") / ".local/share/imgpull";
}

Result<Store> Store::open(const fs::path& root) {
  std::error_code ec;
  for (const char* sub : {"blobs/sha256", "blobs/sha512", "ingest"}) {
    fs::create_directories(root / sub, ec);
    if (ec) return sys_error("cannot create store directory", root / sub, ec.value());
  }
  // Taken before the index lock, as take_sole_use holds it while it takes
  // the index lock: one order everywhere, so no deadlock.
  IMGPULL_ASSIGN_OR_RETURN(FileLock in_use, FileLock::acquire(root / ".in-use.lock", FileLock::Mode::kShared));
  if (!fs::exists(root / "oci-layout")) {
    IMGPULL_TRY(replace_file(root / "oci-layout", R"({"imageLayoutVersion":"1.0.0"})"));
  }
  if (!fs::exists(root / "index.json")) {
    auto lock = FileLock::acquire(root / ".lock");
    if (!lock) return std::move(lock).error();
    if (!fs::exists(root / "index.json")) {
      IMGPULL_TRY(replace_file(root / "index.json",
                               R"({"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[]})"));
    }
  }
  return Store(root, std::make_shared<FileLock>(std::move(in_use)));
}

Status Store::take_sole_use(const std::function<void()>& on_wait) {
  return in_use_->change_mode(FileLock::Mode::kExclusive, on_wait);
}

Status Store::end_sole_use() { return in_use_->change_mode(FileLock::Mode::kShared, nullptr); }

Result<FileLock> Store::lock_index() const { return FileLock::acquire(root_ / ".lock"); }

fs::path Store::blob_path(const Digest& digest) const {
  return root_ / "blobs" / std::string(digest.algorithm_name()) / digest.hex();
}

bool Store::has_blob(const Digest& digest) const {
  struct stat st {};
  return ::stat(blob_path(digest).c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

Result<std::string> Store::read_blob(const Digest& digest, size_t max_bytes) const {
  auto bytes = read_file(blob_path(digest), max_bytes);
  if (!bytes) return std::move(bytes).error().wrap("reading blob " + digest.str());
  Digest actual = Digest::of(*bytes, digest.algorithm());
  if (actual != digest) {
    return Error(ErrorCode::kCorrupt, fmt::format("stored blob {} is corrupt: its content hashes to {}",
                                                  digest.str(), actual.str()));
  }
  return bytes;
}

Status Store::write_blob(const Digest& digest, std::string_view bytes) {
  IMGPULL_ASSIGN_OR_RETURN(auto writer, begin_ingest(digest, static_cast<int64_t>(bytes.size())));
  if (!writer) return {};
  // All the bytes are at hand: whatever an interrupted write left is rewritten.
  if (writer->bytes_written() > 0) IMGPULL_TRY(writer->restart());
  IMGPULL_TRY(writer->write(bytes.data(), bytes.size()));
  return writer->commit();
}

Result<std::unique_ptr<BlobWriter>> Store::begin_ingest(const Digest& digest, int64_t size) {
  IMGPULL_ASSIGN_OR_RETURN(IngestAttempt attempt, take_ingest(digest, size, /*wait=*/true));
  return std::move(attempt.writer);
}

Result<Store::IngestAttempt> Store::try_begin_ingest(const Digest& digest, int64_t size) {
  return take_ingest(digest, size, /*wait=*/false);
}

Result<Store::IngestAttempt> Store::take_ingest(const Digest& digest, int64_t size, bool wait) {
  if (has_blob(digest)) return IngestAttempt{};
  fs::path ingest = ingest_path(digest);
  // Two processes may want the same blob: the first to lock its ingest file
  // downloads it, the other waits (or is told it is busy) and then finds it
  // committed.
  for (int attempt = 0; attempt < 3; ++attempt) {
    UniqueFd fd;
    if (wait) {
      IMGPULL_ASSIGN_OR_RETURN(fd, open_locked(ingest));
    } else {
      IMGPULL_ASSIGN_OR_RETURN(std::optional<UniqueFd> taken, try_open_locked(ingest));
      if (!taken) return IngestAttempt{nullptr, /*busy=*/true};
      fd = std::move(*taken);
    }
    if (has_blob(digest)) return IngestAttempt{};
    // The file we locked may have been renamed into blobs/ or removed by its
    // previous owner while we waited: only write if it is still the ingest file.
    struct stat held {}, current {};
    if (::fstat(fd.get(), &held) == 0 && ::stat(ingest.c_str(), &current) == 0 &&
        held.st_ino == current.st_ino && held.st_dev == current.st_dev) {
      // What is in the file was written by an earlier pull that is gone (we
      // hold the lock): continue from it.
      std::unique_ptr<BlobWriter> writer(new BlobWriter(fd.release(), ingest, blob_path(digest), digest, size));
      IMGPULL_TRY(writer->adopt_existing());
      return IngestAttempt{std::move(writer)};
    }
  }
  return Error(ErrorCode::kIo, fmt::format("could not take the ingest file {} for {}", ingest.string(),
                                           digest.str()));
}

fs::path Store::ingest_path(const Digest& digest) const {
  return root_ / "ingest" / (digest.hex() + ".partial");
}

Result<StoredImage> Store::load_image(const ImageRecord& record) const {
  IMGPULL_ASSIGN_OR_RETURN(std::string bytes, read_blob(record.manifest.digest, kMaxManifestBytes));
  IMGPULL_ASSIGN_OR_RETURN(ParsedManifest parsed, parse_manifest(bytes, record.manifest.media_type));
  auto* manifest = std::get_if<ImageManifest>(&parsed);
  if (manifest == nullptr) {
    return Error(ErrorCode::kUnsupported, fmt::format("{} names an index, not an image manifest", record.name));
  }
  IMGPULL_ASSIGN_OR_RETURN(std::string config_bytes, read_blob(manifest->config.digest, kMaxConfigBytes));
  IMGPULL_ASSIGN_OR_RETURN(ImageConfig config, parse_config(config_bytes));
  return StoredImage{record, std::move(*manifest), std::move(config)};
}

Result<std::vector<ImageRecord>> Store::read_index() const {
  auto bytes = read_file(root_ / "index.json", kMaxIndexBytes);
  if (!bytes) return std::move(bytes).error();
  auto doc = nlohmann::json::parse(*bytes, nullptr, false);
  if (doc.is_discarded() || !doc.is_object() || !doc.contains("manifests") ||
      !doc["manifests"].is_array()) {
    return Error(ErrorCode::kCorrupt, fmt::format("{} is not an OCI index", (root_ / "index.json").string()));
  }
  std::vector<ImageRecord> records;
  for (const auto& entry : doc["manifests"]) {
    auto d = descriptor_from_json(entry);
    if (!d) return std::move(d).error().wrap((root_ / "index.json").string());
    ImageRecord r{"", std::move(d).value(), std::nullopt, ""};
    const auto& ann = r.manifest.annotations;
    if (auto it = ann.find(kRefNameAnnotation); it != ann.end()) r.name = it->second;
    if (auto it = ann.find(kRepoDigestAnnotation); it != ann.end()) {
      if (auto rd = Digest::parse(it->second)) r.repo_digest = *rd;
    }
    if (auto it = ann.find(kPulledAtAnnotation); it != ann.end()) r.pulled_at = it->second;
    records.push_back(std::move(r));
  }
  return records;
}

std::string oci_index_json(const std::vector<ImageRecord>& records) {
  nlohmann::json doc = {{"schemaVersion", 2},
                        {"mediaType", media_type::kOciIndex},
                        {"manifests", nlohmann::json::array()}};
  for (const auto& r : records) {
    Descriptor d = r.manifest;
    // The record's fields are the truth: a copied record (a new tag) must not
    // keep the annotations of the one it was copied from.
    for (const char* key : {kRefNameAnnotation, kRepoDigestAnnotation, kPulledAtAnnotation}) d.annotations.erase(key);
    if (!r.name.empty()) d.annotations[kRefNameAnnotation] = r.name;
    if (r.repo_digest) d.annotations[kRepoDigestAnnotation] = r.repo_digest->str();
    if (!r.pulled_at.empty()) d.annotations[kPulledAtAnnotation] = r.pulled_at;
    doc["manifests"].push_back(descriptor_to_json(d));
  }
  return doc.dump(2) + "\n";
}

Status Store::write_index(const std::vector<ImageRecord>& records) {
  return replace_file(root_ / "index.json", oci_index_json(records));
}

Result<std::vector<ImageRecord>> Store::list_images() const { return read_index(); }

Result<std::vector<Digest>> Store::list_blobs() const {
  std::vector<Digest> blobs;
  for (const char* algorithm : {"sha256", "sha512"}) {
    fs::path dir = root_ / "blobs" / algorithm;
    std::error_code ec;
    for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
      if (auto d = Digest::parse(std::string(algorithm) + ":" + it->path().filename().string())) {
        blobs.push_back(*d);
      }
    }
    if (ec && ec != std::errc::no_such_file_or_directory) return sys_error("cannot list", dir, ec.value());
  }
  return blobs;
}

Status Store::remove_blob(const Digest& digest) {
  if (::unlink(blob_path(digest).c_str()) != 0 && errno != ENOENT) {
    return sys_error("cannot remove blob", blob_path(digest));
  }
  return {};
}

Result<std::optional<ImageRecord>> Store::find_image(const std::string& name) const {
  IMGPULL_ASSIGN_OR_RETURN(auto records, read_index());
  for (auto& r : records) {
    if (r.name == name) return std::optional<ImageRecord>(std::move(r));
  }
  return std::optional<ImageRecord>();
}

Status Store::record_image(const ImageRecord& record) {
  IMGPULL_ASSIGN_OR_RETURN(auto lock, lock_index());
  IMGPULL_ASSIGN_OR_RETURN(auto records, read_index());
  bool replaced = false;
  for (auto& r : records) {
    if (r.name == record.name) {
      r = record;
      replaced = true;
    }
  }
  if (!replaced) records.push_back(record);
  return write_index(records);
}

Status Store::remove_image(const std::string& name) {
  IMGPULL_ASSIGN_OR_RETURN(auto lock, lock_index());
  IMGPULL_ASSIGN_OR_RETURN(auto records, read_index());
  auto removed = std::erase_if(records, [&](const ImageRecord& r) { return r.name == name; });
  if (removed == 0) return Error(ErrorCode::kNotFound, fmt::format("no image named {} in the store", name));
  return write_index(records);
}

}  // namespace imgpull
