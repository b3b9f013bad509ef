#include "unpack/tar_reader.h"


#include <archive.h>
#include <archive_entry.h>

#include <algorithm>
#include <cerrno>
#include <limits>

namespace imgpull::unpack {
namespace {

// What libarchive is handed per read callback.
constexpr size_t kTarReadBufferBytes = 128 * 1024;

// libarchive converts names to the current locale and may fail (non-UTF-8 bytes in a PAX
// path, a C locale); the UTF-8 form is the fallback, so no entry is silently nameless.
const char* name_of(const char* locale_form, const char* utf8_form) {
  return locale_form ? locale_form : utf8_form;
}

TarEntry::Type type_of(archive_entry* e) {
  switch (archive_entry_filetype(e)) {
    case AE_IFREG: return TarEntry::Type::kRegular;
    case AE_IFDIR: return TarEntry::Type::kDirectory;
    case AE_IFLNK: return TarEntry::Type::kSymlink;
    case AE_IFCHR: return TarEntry::Type::kCharDevice;
    case AE_IFBLK: return TarEntry::Type::kBlockDevice;
    case AE_IFIFO: return TarEntry::Type::kFifo;
    default: return TarEntry::Type::kOther;
  }
}

// (uid_t)-1 means "leave unchanged" to chown, so ids must stay below it.
bool valid_id(int64_t id) {
  return id >= 0 && id < static_cast<int64_t>(std::numeric_limits<uint32_t>::max());
}

// A PAX time "-5.25" is 5.25 s before the epoch for GNU tar and Go's archive/tar; libarchive
// reads it as -5 s plus 0.25 s. A negative time with a fraction comes only from such a record
// (the base-256 header fields hold whole seconds), so it is moved back by twice the fraction.
// ("-0.25" reads as +0.25 and cannot be told apart from "0.25".)
timespec pax_time(time_t sec, long nsec) {
  if (sec < 0 && nsec > 0) return timespec{sec - 1, 1'000'000'000L - nsec};
  return timespec{sec, nsec};
}

void copy_times(archive_entry* e, TarEntry& out) {
  if (archive_entry_mtime_is_set(e)) {
    out.mtime = pax_time(archive_entry_mtime(e), archive_entry_mtime_nsec(e));
  }
  if (archive_entry_atime_is_set(e)) {
    out.atime = pax_time(archive_entry_atime(e), archive_entry_atime_nsec(e));
  }
}

void copy_xattrs(archive_entry* e, TarEntry& out) {
  archive_entry_xattr_reset(e);
  const char* name = nullptr;
  const void* value = nullptr;
  size_t size = 0;
  while (archive_entry_xattr_next(e, &name, &value, &size) == ARCHIVE_OK) {
    // An empty PAX value deletes its keyword (POSIX pax), and Go's archive/tar leaves such a
    // record out of Header.Xattrs, which umoci applies; so "SCHILY.xattr.user.x=" sets nothing.
    if (size == 0) continue;
    std::string v(static_cast<const char*>(value), size);
    // libarchive's own PAX writer stores each attribute twice (SCHILY.xattr and
    // LIBARCHIVE.xattr); the last one read wins.
    auto same = std::find_if(out.xattrs.begin(), out.xattrs.end(),
                             [&](const auto& kv) { return kv.first == name; });
    if (same != out.xattrs.end()) {
      same->second = std::move(v);
    } else {
      out.xattrs.emplace_back(name, std::move(v));
    }
  }
}

Result<TarEntry> to_tar_entry(archive_entry* e) {
  TarEntry out;
  const char* path = name_of(archive_entry_pathname(e), archive_entry_pathname_utf8(e));
  if (!path) return Error(ErrorCode::kCorrupt, "layer tar: an entry has no readable name");
  out.path = path;
  if (const char* target = name_of(archive_entry_hardlink(e), archive_entry_hardlink_utf8(e))) {
    out.type = TarEntry::Type::kHardlink;
    out.link_target = target;
    // libarchive reads data after a PAX hardlink entry (POSIX allows it); Go's archive/tar,
    // like GNU tar, reads the next header there. Such a layer means different files to
    // different readers, so it is refused rather than read either way.
    if (archive_entry_size(e) > 0) {
      return Error(ErrorCode::kCorrupt, "layer tar: " + out.path +
                                            ": a hardlink entry that carries data");
    }
  } else {
    out.type = type_of(e);
    if (out.type == TarEntry::Type::kSymlink) {
      const char* target = name_of(archive_entry_symlink(e), archive_entry_symlink_utf8(e));
      out.link_target = target ? target : "";
    }
  }
  if (!valid_id(archive_entry_uid(e)) || !valid_id(archive_entry_gid(e))) {
    return Error(ErrorCode::kCorrupt, "layer tar: " + out.path + ": uid or gid out of range");
  }
  out.mode = archive_entry_perm(e) & 07777;
  out.uid = static_cast<uid_t>(archive_entry_uid(e));
  out.gid = static_cast<gid_t>(archive_entry_gid(e));
  out.rdev = archive_entry_rdev(e);
  out.size = archive_entry_size(e);
  copy_times(e, out);
  copy_xattrs(e, out);
  return out;
}

}  // namespace

TarReader::TarReader(ByteSource& source)
    : source_(source), blocks_(source.blocks()) {
  if (blocks_ == nullptr) buffer_ = std::make_unique<char[]>(kTarReadBufferBytes);
}

TarReader::~TarReader() {
  if (archive_) archive_read_free(archive_);
}

Result<std::unique_ptr<TarReader>> TarReader::open(ByteSource& source) {
  std::unique_ptr<TarReader> reader(new TarReader(source));
  reader->archive_ = archive_read_new();
  if (!reader->archive_) return Error(ErrorCode::kInternal, "libarchive: out of memory");
  // Tar formats only and no filters: the bytes were decompressed already.
  archive_read_support_format_tar(reader->archive_);
  archive_read_support_format_gnutar(reader->archive_);
  // A layer of 0 bytes is an empty layer to Go's archive/tar (io.EOF at the first header, not
  // an error), and umoci applies it as a layer without entries.
  archive_read_support_format_empty(reader->archive_);
  if (archive_read_open(reader->archive_, reader.get(), nullptr, &TarReader::read_callback,
                        nullptr) != ARCHIVE_OK) {
    return reader->archive_error("opening the layer tar");
  }
  return reader;
}

ssize_t TarReader::read_callback(struct archive* archive, void* self, const void** buffer) {
  auto* reader = static_cast<TarReader*>(self);
  if (reader->blocks_ != nullptr) {  // no copy: libarchive reads the source's own buffer
    auto block = reader->blocks_->next_block();
    if (!block) {
      reader->source_error_ = block.error();
      archive_set_error(archive, EIO, "%s", block.error().message().c_str());
      return -1;
    }
    *buffer = block->data();
    return static_cast<ssize_t>(block->size());
  }
  auto got = reader->source_.read(reader->buffer_.get(), kTarReadBufferBytes);
  if (!got) {
    reader->source_error_ = got.error();
    archive_set_error(archive, EIO, "%s", got.error().message().c_str());
    return -1;
  }
  *buffer = reader->buffer_.get();
  return static_cast<ssize_t>(*got);
}

Result<std::optional<TarEntry>> TarReader::next() {
  archive_entry* entry = nullptr;
  int rc = archive_read_next_header(archive_, &entry);
  if (rc == ARCHIVE_EOF) return std::optional<TarEntry>();
  if (rc != ARCHIVE_OK && rc != ARCHIVE_WARN) return archive_error("reading a tar header");
  IMGPULL_ASSIGN_OR_RETURN(TarEntry converted, to_tar_entry(entry));
  return std::optional<TarEntry>(std::move(converted));
}

Result<std::optional<TarReader::Block>> TarReader::read_block() {
  Block block;
  la_int64_t offset = 0;
  int rc = archive_read_data_block(archive_, &block.data, &block.size, &offset);
  if (rc == ARCHIVE_EOF) return std::optional<Block>();
  if (rc != ARCHIVE_OK && rc != ARCHIVE_WARN) return archive_error("reading file data");
  block.offset = offset;
  return std::optional<Block>(block);
}

Status TarReader::drain() {
  if (blocks_ != nullptr) {
    for (;;) {
      IMGPULL_ASSIGN_OR_RETURN(auto block, blocks_->next_block());
      if (block.empty()) return ok_status();
    }
  }
  for (;;) {
    IMGPULL_ASSIGN_OR_RETURN(size_t got, source_.read(buffer_.get(), kTarReadBufferBytes));
    if (got == 0) return ok_status();
  }
}

Error TarReader::archive_error(std::string_view doing) const {
  if (source_error_) return Error(*source_error_).wrap(doing);
  const char* text = archive_error_string(archive_);
  return Error(ErrorCode::kCorrupt, "layer tar: " + std::string(doing) + ": " +
                                        (text ? text : "unknown libarchive error"));
}

}  // namespace imgpull::unpack
