#include "imgpull/store.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <ctime>
#include <vector>

#include "base/atomic_file.h"
#include "base/file_io.h"
#include "base/sys_error.h"

namespace imgpull {
namespace fs = std::filesystem;
namespace {

// index.json grows by one small entry per image; 64 MiB is far beyond any
// real store and keeps a corrupt file from exhausting memory.
constexpr size_t kMaxIndexBytes = 64 * 1024 * 1024;

// Opens (creating) `path` and takes an flock on it (`operation` is LOCK_EX or
// LOCK_SH), waiting as long as another process holds a conflicting one.
// Returns the descriptor that holds it.
Result<int> open_locked(const fs::path& path, int flags, int operation = LOCK_EX) {
  int fd = ::open(path.c_str(), O_CREAT | flags | O_CLOEXEC, 0644);
  if (fd < 0) return sys_error("cannot open", path);
  while (::flock(fd, operation) != 0) {
    if (errno != EINTR) {
      int err = errno;
      ::close(fd);
      return sys_error("cannot lock", path, err);
    }
  }
  return fd;
}

int flock_operation(FileLock::Mode mode) { return mode == FileLock::Mode::kShared ? LOCK_SH : LOCK_EX; }

}  // namespace

// ---- FileLock ----

Result<FileLock> FileLock::acquire(const fs::path& path, Mode mode) {
  IMGPULL_ASSIGN_OR_RETURN(int fd, open_locked(path, O_RDWR, flock_operation(mode)));
  return FileLock(fd, path);
}

FileLock::FileLock(FileLock&& other) noexcept
    : fd_(std::exchange(other.fd_, -1)), path_(std::move(other.path_)) {}

FileLock::~FileLock() {
  if (fd_ >= 0) ::close(fd_);
}

Status FileLock::change_mode(Mode mode, const std::function<void()>& on_wait) {
  if (::flock(fd_, flock_operation(mode) | LOCK_NB) == 0) return {};
  if (errno != EWOULDBLOCK) return sys_error("cannot lock", path_);
  if (on_wait) on_wait();
  while (::flock(fd_, flock_operation(mode)) != 0) {
    if (errno != EINTR) return sys_error("cannot lock", path_);
  }
  return {};
}

std::string now_rfc3339() {
  std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

// ---- BlobWriter ----

namespace {

// Re-hashing what an interrupted pull left reads the file in pieces this big:
// large enough that the hash, not the syscalls, sets the pace.
constexpr size_t kRehashChunkBytes = 1024 * 1024;

}  // namespace

BlobWriter::BlobWriter(int fd, fs::path ingest_path, fs::path blob_path, Digest expected,
                       int64_t expected_size)
    : fd_(fd),
      ingest_path_(std::move(ingest_path)),
      blob_path_(std::move(blob_path)),
      expected_(std::move(expected)),
      expected_size_(expected_size),
      hasher_(expected_.algorithm()) {}

BlobWriter::~BlobWriter() {
  if (done_) return;
  // A non-empty partial is the start of the blob: the next pull continues
  // it. An empty one is worth nothing and would only litter ingest/.
  struct stat st {};
  if (::fstat(fd_, &st) == 0 && st.st_size == 0) {
    discard();
    return;
  }
  ::close(fd_);  // releases the ingest lock; the file stays for resume
  fd_ = -1;
}

void BlobWriter::discard() {
  if (fd_ >= 0) ::unlink(ranges_path().c_str());
  if (fd_ >= 0) ::unlink(ingest_path_.c_str());  // before the lock goes, so no waiter takes a dead file
  done_ = true;
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
}

Status BlobWriter::adopt_existing() {
  struct stat st {};
  if (::fstat(fd_, &st) != 0) return sys_error("cannot stat ingest file", ingest_path_);
  auto start_over = [&]() -> Status {
    IMGPULL_TRY(forget_ranges());
    hasher_ = Hasher(expected_.algorithm());
    if (::ftruncate(fd_, 0) != 0) return sys_error("cannot truncate ingest file", ingest_path_);
    if (::lseek(fd_, 0, SEEK_SET) != 0) return sys_error("cannot rewind", ingest_path_);
    resumed_ = 0;
    return {};
  };
  uint64_t size = static_cast<uint64_t>(st.st_size);
  IMGPULL_ASSIGN_OR_RETURN(bool ranged, adopt_recorded_ranges(size));
  if (ranged) size = recorded_.empty() || recorded_[0].first != 0 ? 0 : recorded_[0].second;
  if (size == 0) return {};
  if (expected_size_ >= 0 && size > static_cast<uint64_t>(expected_size_)) return start_over();
  // Re-hash rather than trust a saved hash state: the file's bytes are the
  // truth (after a power cut its tail may not be what was written), and
  // SHA-256 at a GB/s or more makes this cheap next to fetching them again.
  // Whatever the bytes are, the digest check at commit has the last word.
  std::vector<char> buf(kRehashChunkBytes);
  uint64_t offset = 0;
  while (offset < size) {
    ssize_t n = ::pread(fd_, buf.data(), std::min<uint64_t>(buf.size(), size - offset), static_cast<off_t>(offset));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return start_over();  // unreadable or shrunk under us: fetch it all
    hasher_.update(buf.data(), static_cast<size_t>(n));
    offset += static_cast<uint64_t>(n);
  }
  if (::lseek(fd_, static_cast<off_t>(size), SEEK_SET) < 0) return sys_error("cannot seek in", ingest_path_);
  resumed_ = size;
  for (const auto& [start, end] : recorded_) resumed_ += start >= size ? end - start : 0;
  return {};
}

Status BlobWriter::write(const void* data, size_t size) {
  if (done_ || broken_) return Error(ErrorCode::kInternal, "write to a finished or failed blob writer");
  if (expected_size_ >= 0 && hasher_.bytes_hashed() + size > static_cast<uint64_t>(expected_size_)) {
    uint64_t received = hasher_.bytes_hashed() + size;
    discard();
    return Error(ErrorCode::kCorrupt,
                 fmt::format("blob {}: size mismatch: received at least {} bytes, more than the {} its "
                             "descriptor declares",
                             expected_.str(), received, expected_size_));
  }
  if (!recorded_.empty()) IMGPULL_TRY(forget_ranges());
  // The file first, the hash after: the hash then never covers bytes the
  // file lacks. A failed write leaves the file a clean prefix of the blob
  // (resumable), and this writer unusable.
  const char* p = static_cast<const char*>(data);
  size_t left = size;
  while (left > 0) {
    ssize_t n = ::write(fd_, p, left);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      int err = errno;
      broken_ = true;
      if (err == ENOSPC || err == EDQUOT) {
        struct stat st {};
        uint64_t on_disk = ::fstat(fd_, &st) == 0 ? static_cast<uint64_t>(st.st_size) : 0;
        return Error(ErrorCode::kIo,
                     fmt::format("no space left on device writing blob {} to {} ({} of {} bytes written; "
                                 "the partial file is kept and the next pull continues it)",
                                 expected_.str(), ingest_path_.string(), on_disk,
                                 expected_size_ >= 0 ? std::to_string(expected_size_) : std::string("?")));
      }
      return sys_error(fmt::format("cannot write blob {} to", expected_.str()), ingest_path_, err);
    }
    p += n;
    left -= static_cast<size_t>(n);
  }
  hasher_.update(data, size);
  return {};
}

Status BlobWriter::restart() {
  if (done_ || broken_) return Error(ErrorCode::kInternal, "restart of a finished or failed blob writer");
  if (::lseek(fd_, 0, SEEK_SET) != 0) return sys_error("cannot rewind", ingest_path_);
  IMGPULL_TRY(forget_ranges());
  hasher_ = Hasher(expected_.algorithm());
  resumed_ = 0;
  return {};
}

Result<int> BlobWriter::open_reader() const {
  int fd = ::open(ingest_path_.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return sys_error("cannot open for reading", ingest_path_);
  return fd;
}

Status BlobWriter::commit() {
  if (done_ || broken_) return Error(ErrorCode::kInternal, "commit of a finished or failed blob writer");
  uint64_t got = hasher_.bytes_hashed();
  if (expected_size_ >= 0 && got != static_cast<uint64_t>(expected_size_)) {
    discard();
    return Error(ErrorCode::kCorrupt, fmt::format("blob {}: size mismatch: expected {} bytes, got {}",
                                                  expected_.str(), expected_size_, got));
  }
  Digest actual = hasher_.finish();
  if (actual != expected_) {
    discard();
    return Error(ErrorCode::kCorrupt, fmt::format("blob digest mismatch: expected {}, got {}",
                                                  expected_.str(), actual.str()));
  }
  // A restarted download rewrites the file in place; never let a longer
  // tail from before survive into the blob.
  struct stat st {};
  if (::fstat(fd_, &st) == 0 && static_cast<uint64_t>(st.st_size) > got &&
      ::ftruncate(fd_, static_cast<off_t>(got)) != 0) {
    int err = errno;
    discard();
    return sys_error("cannot trim ingest file", ingest_path_, err);
  }
  if (::rename(ingest_path_.c_str(), blob_path_.c_str()) != 0) {
    int err = errno;
    discard();
    return sys_error("cannot commit blob to", blob_path_, err);
  }
  ::unlink(ranges_path().c_str());
  done_ = true;
  ::close(fd_);  // releases the ingest lock: waiters now find the blob
  fd_ = -1;
  return {};
}

// ---- Store ----

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
  if (has_blob(digest)) return std::unique_ptr<BlobWriter>();
  fs::path ingest = ingest_path(digest);
  // Two processes may want the same blob: the first to lock its ingest file
  // downloads it, the other waits and then finds it committed.
  for (int attempt = 0; attempt < 3; ++attempt) {
    IMGPULL_ASSIGN_OR_RETURN(int fd, open_locked(ingest, O_RDWR));
    if (has_blob(digest)) {
      ::close(fd);
      return std::unique_ptr<BlobWriter>();
    }
    // The file we locked may have been renamed into blobs/ or removed by its
    // previous owner while we waited: only write if it is still the ingest file.
    struct stat held {}, current {};
    if (::fstat(fd, &held) == 0 && ::stat(ingest.c_str(), &current) == 0 &&
        held.st_ino == current.st_ino && held.st_dev == current.st_dev) {
      // What is in the file was written by an earlier pull that is gone (we
      // hold the lock): continue from it.
      std::unique_ptr<BlobWriter> writer(new BlobWriter(fd, ingest, blob_path(digest), digest, size));
      IMGPULL_TRY(writer->adopt_existing());
      return writer;
    }
    ::close(fd);
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
