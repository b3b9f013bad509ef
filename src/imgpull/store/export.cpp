// Both export formats in one file (~480 lines): they share the tar writer and
// the checked blob and layer streams below, and differ only in their layout.
#include "imgpull/export.h"

#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <ctime>
#include <map>
#include <set>

#include <nlohmann/json.hpp>

#include "imgpull/reference.h"
#include "base/byte_source.h"
#include "unpack/compression.h"
#include "unpack/decompress.h"
#include "unpack/hashing_source.h"
#include "unpack/layer_applier.h"
#include "base/atomic_file.h"
#include "base/file_io.h"
#include "base/sys_error.h"
#include "base/unique_fd.h"

namespace imgpull {
namespace fs = std::filesystem;
namespace {

// Bytes moved per read and write while streaming blobs and layers: large
// enough that syscalls cost nothing, small enough that a 1 GiB layer needs
// no more memory than a small one.
constexpr size_t kCopyBufferBytes = 256 * 1024;

// The annotation containerd (and docker 25+, which loads through it) names
// an image by when importing an OCI layout.
constexpr const char* kContainerdNameAnnotation = "io.containerd.image.name";

// Seconds since the epoch for an RFC 3339 time ("" or unparsable: 0), for
// the mtimes of archive entries: the image's own time keeps saves of one
// image byte-identical.
time_t epoch_seconds(const std::string& rfc3339) {
  std::tm tm{};
  if (rfc3339.empty() || ::strptime(rfc3339.c_str(), "%Y-%m-%dT%H:%M:%S", &tm) == nullptr) return 0;
  return ::timegm(&tm);
}

// A tar written through libarchive (pax where ustar cannot say it, as
// docker's and GNU tar's output is read by everything).
class TarWriter {
 public:
  TarWriter() : archive_(archive_write_new()) {}
  ~TarWriter() { archive_write_free(archive_); }
  TarWriter(const TarWriter&) = delete;
  TarWriter& operator=(const TarWriter&) = delete;

  Status open(int fd) {
    if (archive_write_set_format_pax_restricted(archive_) != ARCHIVE_OK ||
        archive_write_open_fd(archive_, fd) != ARCHIVE_OK) {
      return failure("cannot start the tar");
    }
    return {};
  }

  Status add_directory(const std::string& path, time_t mtime) {
    return header(path, AE_IFDIR, 0755, 0, mtime);
  }

  Status add_bytes(const std::string& path, std::string_view bytes, time_t mtime) {
    IMGPULL_TRY(header(path, AE_IFREG, 0644, bytes.size(), mtime));
    IMGPULL_TRY(data(path, bytes.data(), bytes.size()));
    return {};
  }

  // Streams exactly `size` bytes from `source` as the file `path`.
  Status add_stream(const std::string& path, uint64_t size, ByteSource& source, time_t mtime) {
    IMGPULL_TRY(header(path, AE_IFREG, 0644, size, mtime));
    std::vector<char> buf(kCopyBufferBytes);
    uint64_t left = size;
    for (;;) {
      IMGPULL_ASSIGN_OR_RETURN(size_t n, source.read(buf.data(), buf.size()));
      if (n == 0) break;
      if (n > left) {
        return Error(ErrorCode::kCorrupt, fmt::format("{}: more than the {} bytes measured before", path, size));
      }
      IMGPULL_TRY(data(path, buf.data(), n));
      left -= n;
    }
    if (left != 0) {
      return Error(ErrorCode::kCorrupt,
                   fmt::format("{}: {} bytes, not the {} measured before", path, size - left, size));
    }
    return {};
  }

  Status close() {
    if (archive_write_close(archive_) != ARCHIVE_OK) return failure("cannot finish the tar");
    return {};
  }

 private:
  Status header(const std::string& path, unsigned type, mode_t perm, uint64_t size, time_t mtime) {
    archive_entry* entry = archive_entry_new();
    archive_entry_set_pathname(entry, path.c_str());
    archive_entry_set_filetype(entry, type);
    archive_entry_set_perm(entry, perm);
    archive_entry_set_size(entry, static_cast<la_int64_t>(size));
    archive_entry_set_mtime(entry, mtime, 0);
    archive_entry_set_uid(entry, 0);
    archive_entry_set_gid(entry, 0);
    int rc = archive_write_header(archive_, entry);
    archive_entry_free(entry);
    if (rc < ARCHIVE_WARN) return failure("cannot write the tar header of " + path);
    return {};
  }

  Status data(const std::string& path, const char* bytes, size_t size) {
    la_ssize_t written = archive_write_data(archive_, bytes, size);
    if (written < 0 || static_cast<size_t>(written) != size) return failure("cannot write " + path + " to the tar");
    return {};
  }

  Error failure(const std::string& what) {
    const char* why = archive_error_string(archive_);
    return Error(ErrorCode::kIo, fmt::format("{}: {}", what, why != nullptr ? why : "unknown libarchive error"));
  }

  archive* archive_;
};

// A blob read from the store through a hasher, so that whoever streams it
// can check, at its end, that the store gave the bytes its name promises.
class CheckedBlob {
 public:
  static Result<CheckedBlob> open(const Store& store, const Digest& digest) {
    auto file = FileSource::open(store.blob_path(digest));
    if (!file) return std::move(file).error().wrap("blob " + digest.str());
    return CheckedBlob(digest, std::move(file).value());
  }
  ByteSource& source() { return *hashed_; }
  Status check() {
    Digest actual = hashed_->finish();
    if (actual != expected_) {
      return Error(ErrorCode::kCorrupt,
                   fmt::format("stored blob {} is corrupt: its content hashes to {}", expected_.str(), actual.str()));
    }
    return {};
  }

 private:
  CheckedBlob(Digest expected, std::unique_ptr<FileSource> file)
      : expected_(std::move(expected)),
        file_(std::move(file)),
        hashed_(std::make_unique<unpack::HashingSource>(*file_, expected_.algorithm())) {}

  Digest expected_;
  std::unique_ptr<FileSource> file_;
  std::unique_ptr<unpack::HashingSource> hashed_;
};

uint64_t blob_size(const Store& store, const Digest& digest) {
  struct stat st {};
  return ::stat(store.blob_path(digest).c_str(), &st) == 0 ? static_cast<uint64_t>(st.st_size) : 0;
}

// A layer's uncompressed tar stream, hashed as it passes: its diffID.
class LayerStream {
 public:
  static Result<LayerStream> open(const Store& store, const Descriptor& layer) {
    IMGPULL_ASSIGN_OR_RETURN(unpack::Compression compression, unpack::compression_for_media_type(layer.media_type));
    IMGPULL_ASSIGN_OR_RETURN(auto file, FileSource::open(store.blob_path(layer.digest)));
    LayerStream s;
    s.compression_ = compression;
    s.file_ = std::move(file);
    s.tar_ = unpack::make_decompressor(compression, *s.file_, unpack::kDefaultMaxUncompressedLayerBytes);
    s.hashed_ = std::make_unique<unpack::HashingSource>(*s.tar_);
    return s;
  }
  unpack::Compression compression() const { return compression_; }
  ByteSource& source() { return *hashed_; }
  uint64_t bytes() const { return hashed_->bytes(); }
  Digest finish() { return hashed_->finish(); }

 private:
  LayerStream() = default;
  unpack::Compression compression_ = unpack::Compression::kNone;
  std::unique_ptr<FileSource> file_;
  std::unique_ptr<ByteSource> tar_;
  std::unique_ptr<unpack::HashingSource> hashed_;
};

Status check_diff_id(LayerStream& stream, const Digest& expected, const std::string& which) {
  Digest actual = stream.finish();
  if (actual != expected) {
    return Error(ErrorCode::kCorrupt,
                 fmt::format("{}: uncompressed content does not match the config: expected diff_id {}, got {}",
                             which, expected.str(), actual.str()));
  }
  return {};
}

// The uncompressed size of a layer, which a tar header needs before the
// first byte: a compressed layer is read through once to learn it (and to
// check its diffID before anything is written).
Result<uint64_t> uncompressed_size(const Store& store, const Descriptor& layer, const Digest& diff_id,
                                   const std::string& which) {
  IMGPULL_ASSIGN_OR_RETURN(LayerStream stream, LayerStream::open(store, layer));
  if (stream.compression() == unpack::Compression::kNone) return blob_size(store, layer.digest);
  std::vector<char> buf(kCopyBufferBytes);
  for (;;) {
    auto n = stream.source().read(buf.data(), buf.size());
    if (!n) return std::move(n).error().wrap(which);
    if (*n == 0) break;
  }
  uint64_t size = stream.bytes();
  IMGPULL_TRY(check_diff_id(stream, diff_id, which));
  return size;
}

std::string image_label(const ExportImage& image) {
  if (!image.records.empty()) return image.records.front().name;
  return image.image.manifest.config.digest.str();
}

// ---- docker-archive ----

class DockerArchive {
 public:
  DockerArchive(const Store& store, TarWriter& tar) : store_(store), tar_(tar) {}

  Status add(const ExportImage& image) {
    std::string label = image_label(image);
    auto added = add_image(image);
    if (!added) return std::move(added).error().wrap("saving " + label);
    return {};
  }

  Status finish() {
    IMGPULL_TRY(tar_.add_bytes("manifest.json", manifest_.dump() + "\n", 0));
    if (!repositories_.empty()) IMGPULL_TRY(tar_.add_bytes("repositories", repositories_.dump() + "\n", 0));
    return {};
  }

 private:
  Status add_image(const ExportImage& image) {
    const ImageManifest& manifest = image.image.manifest;
    const ImageConfig& config = image.image.config;
    if (config.diff_ids.size() != manifest.layers.size()) {
      return Error(ErrorCode::kCorrupt, fmt::format("the config lists {} diff_ids but the manifest has {} layers",
                                                    config.diff_ids.size(), manifest.layers.size()));
    }
    time_t mtime = epoch_seconds(config.created);
    std::vector<Digest> chains = chain_ids(config.diff_ids);
    nlohmann::json layers = nlohmann::json::array();
    for (size_t i = 0; i < chains.size(); ++i) {
      std::string dir = chains[i].hex();
      if (written_.insert(dir).second) {
        IMGPULL_TRY(add_layer(image, i, dir, i > 0 ? chains[i - 1].hex() : "", mtime));
      }
      layers.push_back(dir + "/layer.tar");
    }
    const Digest& id = manifest.config.digest;
    std::string config_path = id.hex() + ".json";
    if (written_.insert(config_path).second) {
      IMGPULL_ASSIGN_OR_RETURN(std::string bytes, store_.read_blob(id, kMaxConfigBytes));
      IMGPULL_TRY(tar_.add_bytes(config_path, bytes, mtime));
    }
    nlohmann::json tags = repo_tags(image, chains.empty() ? "" : chains.back().hex());
    manifest_.push_back({{"Config", config_path}, {"RepoTags", tags}, {"Layers", layers}});
    return {};
  }

  // Docker's RepoTags (familiar "repo:tag"; null when saved by ID), filling
  // `repositories` on the way.
  nlohmann::json repo_tags(const ExportImage& image, const std::string& top_layer) {
    nlohmann::json tags = nullptr;
    for (const auto& record : image.records) {
      auto ref = Reference::parse(record.name);
      if (!ref || ref->digest || !ref->tag) continue;  // a digest is not a tag
      tags.push_back(ref->familiar());
      repositories_[ref->familiar_name()][*ref->tag] = top_layer;
    }
    return tags;
  }

  Status add_layer(const ExportImage& image, size_t index, const std::string& dir, const std::string& parent,
                   time_t mtime) {
    const Descriptor& layer = image.image.manifest.layers[index];
    const Digest& diff_id = image.image.config.diff_ids[index];
    std::string which = fmt::format("layer {} ({} of {})", layer.digest.str(), index + 1,
                                    image.image.manifest.layers.size());
    if (!store_.has_blob(layer.digest)) {
      return Error(ErrorCode::kNotFound, which + ": not in the store (imgpull verify; pull the image again)");
    }
    IMGPULL_ASSIGN_OR_RETURN(uint64_t size, uncompressed_size(store_, layer, diff_id, which));
    IMGPULL_TRY(tar_.add_directory(dir + "/", mtime));
    IMGPULL_TRY(tar_.add_bytes(dir + "/VERSION", "1.0", mtime));
    nlohmann::json legacy = {{"id", dir}, {"created", "1970-01-01T00:00:00Z"}};
    if (!parent.empty()) legacy["parent"] = parent;
    IMGPULL_TRY(tar_.add_bytes(dir + "/json", legacy.dump(), mtime));
    IMGPULL_ASSIGN_OR_RETURN(LayerStream stream, LayerStream::open(store_, layer));
    auto streamed = tar_.add_stream(dir + "/layer.tar", size, stream.source(), mtime);
    if (!streamed) return std::move(streamed).error().wrap(which);
    return check_diff_id(stream, diff_id, which);
  }

  const Store& store_;
  TarWriter& tar_;
  std::set<std::string> written_;  // paths already in the tar
  nlohmann::json manifest_ = nlohmann::json::array();
  nlohmann::json repositories_ = nlohmann::json::object();
};

// ---- OCI layout ----

// The records the exported index.json names, with only the annotations the
// store writes plus containerd's name.
std::vector<ImageRecord> export_records(const std::vector<ExportImage>& images) {
  std::vector<ImageRecord> out;
  for (const auto& image : images) {
    std::vector<ImageRecord> records = image.records;
    if (records.empty()) records.push_back(ImageRecord{"", image.image.record.manifest, std::nullopt, ""});
    for (auto& record : records) {
      record.manifest.annotations.clear();
      if (!record.name.empty()) record.manifest.annotations[kContainerdNameAnnotation] = record.name;
      out.push_back(std::move(record));
    }
  }
  return out;
}

struct OciContent {
  std::vector<ImageRecord> records;
  std::vector<Digest> blobs;  // present in the store, in digest order
};

// The blobs of an OCI export: everything the records reach. A blob the
// images need (manifest, config, layer) must be present; the registry's
// manifests named by repo digests are taken when present (an index's other
// platforms never are).
Result<OciContent> oci_content(const Store& store, const std::vector<ExportImage>& images) {
  OciContent content{export_records(images), {}};
  std::map<Digest, std::string> required;
  for (const auto& image : images) {
    std::string label = image_label(image);
    required.emplace(image.image.record.manifest.digest, "manifest of " + label);
    required.emplace(image.image.manifest.config.digest, "config of " + label);
    for (const auto& layer : image.image.manifest.layers) required.emplace(layer.digest, "layer of " + label);
  }
  IMGPULL_ASSIGN_OR_RETURN(auto reachable, reachable_blobs(store, content.records));
  for (const auto& digest : reachable) {
    if (store.has_blob(digest)) {
      content.blobs.push_back(digest);
    } else if (auto it = required.find(digest); it != required.end()) {
      return Error(ErrorCode::kNotFound, fmt::format("blob {} ({}) is not in the store", digest.str(), it->second));
    }
  }
  return content;
}

std::string blob_entry(const Digest& digest) {
  return fmt::format("blobs/{}/{}", digest.algorithm_name(), digest.hex());
}

constexpr std::string_view kOciLayoutFile = R"({"imageLayoutVersion":"1.0.0"})";

Status write_oci_archive(const Store& store, const std::vector<ExportImage>& images, TarWriter& tar) {
  IMGPULL_ASSIGN_OR_RETURN(OciContent content, oci_content(store, images));
  IMGPULL_TRY(tar.add_bytes("oci-layout", kOciLayoutFile, 0));
  IMGPULL_TRY(tar.add_directory("blobs/", 0));
  std::set<std::string> algorithm_dirs;
  for (const auto& digest : content.blobs) {
    std::string dir = fmt::format("blobs/{}/", digest.algorithm_name());
    if (algorithm_dirs.insert(dir).second) IMGPULL_TRY(tar.add_directory(dir, 0));
    IMGPULL_ASSIGN_OR_RETURN(CheckedBlob blob, CheckedBlob::open(store, digest));
    IMGPULL_TRY(tar.add_stream(blob_entry(digest), blob_size(store, digest), blob.source(), 0));
    IMGPULL_TRY(blob.check());
  }
  return tar.add_bytes("index.json", oci_index_json(content.records), 0);
}

Status write_file(const fs::path& path, std::string_view bytes) {
  UniqueFd fd(::open(path.c_str(), O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0644));
  if (!fd) return sys_error("cannot create", path);
  return write_all(fd.get(), bytes.data(), bytes.size(), path);
}

// Copies a blob, checking its digest on the way.
Status copy_blob(const Store& store, const Digest& digest, const fs::path& dest) {
  IMGPULL_ASSIGN_OR_RETURN(CheckedBlob blob, CheckedBlob::open(store, digest));
  UniqueFd fd(::open(dest.c_str(), O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0644));
  if (!fd) return sys_error("cannot create", dest);
  std::vector<char> buf(kCopyBufferBytes);
  for (;;) {
    IMGPULL_ASSIGN_OR_RETURN(size_t n, blob.source().read(buf.data(), buf.size()));
    if (n == 0) break;
    IMGPULL_TRY(write_all(fd.get(), buf.data(), n, dest));
  }
  return blob.check();
}

Status write_oci_directory(const Store& store, const std::vector<ExportImage>& images, const fs::path& dir) {
  IMGPULL_ASSIGN_OR_RETURN(OciContent content, oci_content(store, images));
  for (const auto& digest : content.blobs) {
    fs::path dest = dir / blob_entry(digest);
    std::error_code ec;
    fs::create_directories(dest.parent_path(), ec);
    if (ec) return sys_error("cannot create", dest.parent_path(), ec.value());
    IMGPULL_TRY(copy_blob(store, digest, dest));
  }
  IMGPULL_TRY(write_file(dir / "oci-layout", kOciLayoutFile));
  return write_file(dir / "index.json", oci_index_json(content.records));
}

}  // namespace

std::vector<Digest> chain_ids(const std::vector<Digest>& diff_ids) {
  std::vector<Digest> chains;
  for (const auto& diff_id : diff_ids) {
    chains.push_back(chains.empty() ? diff_id : Digest::of(chains.back().str() + " " + diff_id.str()));
  }
  return chains;
}

std::vector<ExportImage> group_for_export(const std::vector<FoundImage>& found) {
  std::vector<ExportImage> out;
  for (const auto& f : found) {
    const Digest& id = f.image.manifest.config.digest;
    auto same = std::find_if(out.begin(), out.end(),
                             [&](const ExportImage& e) { return e.image.manifest.config.digest == id; });
    if (same == out.end()) same = out.insert(out.end(), ExportImage{f.image, {}});
    if (!f.by_name) continue;
    bool listed = std::any_of(same->records.begin(), same->records.end(),
                              [&](const ImageRecord& r) { return r.name == f.image.record.name; });
    if (!listed) same->records.push_back(f.image.record);
  }
  return out;
}

Status write_archive(const Store& store, const std::vector<ExportImage>& images, ArchiveFormat format,
                     int out_fd) {
  TarWriter tar;
  IMGPULL_TRY(tar.open(out_fd));
  if (format == ArchiveFormat::kDocker) {
    DockerArchive archive(store, tar);
    for (const auto& image : images) IMGPULL_TRY(archive.add(image));
    IMGPULL_TRY(archive.finish());
  } else {
    IMGPULL_TRY(write_oci_archive(store, images, tar));
  }
  return tar.close();
}

Status save_archive(const Store& store, const std::vector<ExportImage>& images, ArchiveFormat format,
                    const fs::path& file) {
  IMGPULL_ASSIGN_OR_RETURN(AtomicFile out, AtomicFile::create(file, {.sync = true}));
  IMGPULL_TRY(write_archive(store, images, format, out.fd()));
  return out.commit();
}

Status save_oci_layout(const Store& store, const std::vector<ExportImage>& images, const fs::path& dir) {
  std::error_code ec;
  if (fs::exists(dir, ec) && !(fs::is_directory(dir, ec) && fs::is_empty(dir, ec))) {
    return Error(ErrorCode::kInvalidArgument,
                 fmt::format("{} exists and is not an empty directory; name a new one", dir.string()));
  }
  fs::path tmp = dir;
  tmp += fmt::format(".tmp-{}", ::getpid());
  fs::remove_all(tmp, ec);
  if (!fs::create_directories(tmp, ec) || ec) return sys_error("cannot create", tmp, ec.value());
  Status written = write_oci_directory(store, images, tmp);
  // rename(2) replaces an empty directory, so an existing empty DIR is fine.
  if (written.ok() && ::rename(tmp.c_str(), dir.c_str()) != 0) written = sys_error("cannot rename into", dir);
  if (!written.ok()) fs::remove_all(tmp, ec);
  return written;
}

}  // namespace imgpull
