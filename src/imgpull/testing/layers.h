// Test helpers for the unpack tests (header-only: only *_test.cpp include it).
//
//   TarBuilder tar;
//   tar.dir("etc").file("etc/hosts", "127.0.0.1 localhost\n").symlink("escape", "../..");
//   std::string layer = gzip(tar.finish());
//   TempDir root("apply");
//
// TarBuilder writes with libarchive's writer, which writes names and link
// targets as given ("../x", "/abs", "a/../.."), so any malicious shape can be
// built; raw_ustar_header() makes headers libarchive would refuse to write.
#pragma once

#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <isa-l/igzip_lib.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zstd.h>

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <span>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "base/byte_source.h"
#include "unpack/layer_applier.h"
#include "base/unique_fd.h"

namespace imgpull::unpack::testing {

namespace fs = std::filesystem;

inline constexpr time_t kTestMtime = 1700000000;  // 2023-11-14

// A fresh directory under /tmp, removed with everything in it.
class TempDir {
 public:
  explicit TempDir(const std::string& tag) {
    std::string tmpl = "/tmp/imgpull-" + tag + "-XXXXXX";
    if (!mkdtemp(tmpl.data())) throw std::runtime_error("mkdtemp failed");
    path_ = tmpl;
  }
  ~TempDir() {
    std::error_code ignored;
    fs::remove_all(path_, ignored);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const fs::path& path() const { return path_; }
  UniqueFd open() const {
    return UniqueFd(::open(path_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  }

 private:
  fs::path path_;
};

class TarBuilder {
 public:
  // kPax writes a PAX header only where ustar cannot say it; kPaxAlways before every entry
  // (so sub-second times are kept).
  enum class Format { kPax, kPaxAlways, kGnu };
  using Setup = std::function<void(archive_entry*)>;

  explicit TarBuilder(Format format = Format::kPax) : archive_(archive_write_new()) {
    switch (format) {
      case Format::kPax: archive_write_set_format_pax_restricted(archive_); break;
      case Format::kPaxAlways: archive_write_set_format_pax(archive_); break;
      case Format::kGnu: archive_write_set_format_gnutar(archive_); break;
    }
    archive_write_open2(archive_, this, nullptr, &TarBuilder::append, nullptr, nullptr);
  }
  ~TarBuilder() { archive_write_free(archive_); }
  TarBuilder(const TarBuilder&) = delete;
  TarBuilder& operator=(const TarBuilder&) = delete;

  // The general form: `setup` sets the type and anything else on a prepared entry.
  TarBuilder& entry(const std::string& name, const Setup& setup, const std::string& data = "") {
    archive_entry* e = archive_entry_new();
    archive_entry_set_pathname(e, name.c_str());
    archive_entry_set_mtime(e, kTestMtime, 0);
    archive_entry_set_uid(e, 0);
    archive_entry_set_gid(e, 0);
    archive_entry_set_size(e, static_cast<la_int64_t>(data.size()));
    setup(e);
    if (archive_write_header(archive_, e) < ARCHIVE_WARN) fail("header", name);
    if (!data.empty() && archive_write_data(archive_, data.data(), data.size()) < 0) {
      fail("data", name);
    }
    archive_entry_free(e);
    return *this;
  }
  TarBuilder& file(const std::string& name, const std::string& data, mode_t mode = 0644,
                   const Setup& more = nullptr) {
    return entry(name, [&](archive_entry* e) {
      archive_entry_set_filetype(e, AE_IFREG);
      archive_entry_set_perm(e, mode);
      if (more) more(e);
    }, data);
  }
  TarBuilder& dir(const std::string& name, mode_t mode = 0755, const Setup& more = nullptr) {
    return entry(name, [&](archive_entry* e) {
      archive_entry_set_filetype(e, AE_IFDIR);
      archive_entry_set_perm(e, mode);
      archive_entry_set_size(e, 0);
      if (more) more(e);
    });
  }
  TarBuilder& symlink(const std::string& name, const std::string& target,
                      const Setup& more = nullptr) {
    return entry(name, [&](archive_entry* e) {
      archive_entry_set_filetype(e, AE_IFLNK);
      archive_entry_set_perm(e, 0777);
      archive_entry_set_symlink(e, target.c_str());
      archive_entry_set_size(e, 0);
      if (more) more(e);
    });
  }
  TarBuilder& hardlink(const std::string& name, const std::string& target,
                       const Setup& more = nullptr) {
    return entry(name, [&](archive_entry* e) {
      archive_entry_set_filetype(e, AE_IFREG);
      archive_entry_set_perm(e, 0644);
      archive_entry_set_hardlink(e, target.c_str());
      archive_entry_set_size(e, 0);
      if (more) more(e);
    });
  }
  TarBuilder& node(const std::string& name, unsigned type, mode_t mode, dev_t rdev = 0,
                   const Setup& more = nullptr) {
    return entry(name, [&](archive_entry* e) {
      archive_entry_set_filetype(e, type);
      archive_entry_set_perm(e, mode);
      archive_entry_set_rdev(e, rdev);
      archive_entry_set_size(e, 0);
      if (more) more(e);
    });
  }
  // ".wh.NAME" in NAME's directory.
  TarBuilder& whiteout(const std::string& name) {
    auto slash = name.rfind('/');
    std::string dir = slash == std::string::npos ? "" : name.substr(0, slash + 1);
    std::string base = slash == std::string::npos ? name : name.substr(slash + 1);
    return file(dir + ".wh." + base, "");
  }
  TarBuilder& opaque(const std::string& dir) { return file(dir + "/.wh..wh..opq", ""); }

  // The archive's bytes, end-of-archive blocks and block padding included.
  std::string finish() {
    archive_write_close(archive_);
    return bytes_;
  }

 private:
  static la_ssize_t append(struct archive*, void* self, const void* data, size_t size) {
    static_cast<TarBuilder*>(self)->bytes_.append(static_cast<const char*>(data), size);
    return static_cast<la_ssize_t>(size);
  }
  void fail(const char* what, const std::string& name) {
    throw std::runtime_error(std::string("TarBuilder: writing ") + what + " of \"" + name +
                             "\": " + archive_error_string(archive_));
  }

  struct archive* archive_;
  std::string bytes_;
};

// A 512-byte ustar header with any name, type and size field, checksummed.
inline std::string raw_ustar_header(const std::string& name, char type, uint64_t size,
                                    const std::string& link = "") {
  std::string h(512, '\0');
  auto put = [&](size_t offset, size_t width, const std::string& value) {
    std::memcpy(&h[offset], value.data(), std::min(width, value.size()));
  };
  auto octal = [](uint64_t value, int digits) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%0*llo", digits, static_cast<unsigned long long>(value));
    return std::string(buf);
  };
  put(0, 100, name);
  put(100, 8, octal(0644, 7));
  put(108, 8, octal(0, 7));
  put(116, 8, octal(0, 7));
  put(124, 12, octal(size, 11));
  put(136, 12, octal(kTestMtime, 11));
  put(148, 8, std::string(8, ' '));
  h[156] = type;
  put(157, 100, link);
  put(257, 6, std::string("ustar\0", 6));
  put(263, 2, "00");
  unsigned sum = 0;
  for (unsigned char c : h) sum += c;
  put(148, 8, octal(sum, 6) + std::string("\0 ", 2));
  return h;
}

// One gzip member made with isa-l's deflate.
inline std::string gzip(std::string_view data) {
  isal_zstream s;
  isal_deflate_init(&s);
  std::vector<uint8_t> level_buf(ISAL_DEF_LVL1_DEFAULT);
  s.level = 1;
  s.level_buf = level_buf.data();
  s.level_buf_size = static_cast<uint32_t>(level_buf.size());
  s.gzip_flag = IGZIP_GZIP;
  s.end_of_stream = 1;
  s.flush = NO_FLUSH;
  s.next_in = reinterpret_cast<uint8_t*>(const_cast<char*>(data.data()));
  s.avail_in = static_cast<uint32_t>(data.size());
  std::string out;
  std::vector<uint8_t> buf(1 << 16);
  do {
    s.next_out = buf.data();
    s.avail_out = static_cast<uint32_t>(buf.size());
    if (isal_deflate(&s) != COMP_OK) throw std::runtime_error("isal_deflate failed");
    out.append(reinterpret_cast<char*>(buf.data()), buf.size() - s.avail_out);
  } while (s.internal_state.state != ZSTATE_END);
  return out;
}

// A gzip member of `n` zero bytes, deflated in pieces (no n-byte buffer).
inline std::string gzip_zeros(uint64_t n) {
  isal_zstream s;
  isal_deflate_init(&s);
  std::vector<uint8_t> level_buf(ISAL_DEF_LVL1_DEFAULT);
  s.level = 1;
  s.level_buf = level_buf.data();
  s.level_buf_size = static_cast<uint32_t>(level_buf.size());
  s.gzip_flag = IGZIP_GZIP;
  std::vector<uint8_t> zeros(1 << 20, 0);
  std::vector<uint8_t> buf(1 << 16);
  std::string out;
  uint64_t left = n;
  do {
    uint32_t chunk = static_cast<uint32_t>(std::min<uint64_t>(left, zeros.size()));
    left -= chunk;
    s.next_in = zeros.data();
    s.avail_in = chunk;
    s.end_of_stream = left == 0;
    do {
      s.next_out = buf.data();
      s.avail_out = static_cast<uint32_t>(buf.size());
      if (isal_deflate(&s) != COMP_OK) throw std::runtime_error("isal_deflate failed");
      out.append(reinterpret_cast<char*>(buf.data()), buf.size() - s.avail_out);
    } while (s.avail_in > 0 || (left == 0 && s.internal_state.state != ZSTATE_END));
  } while (left > 0);
  return out;
}

// One zstd frame, with a content checksum so corruption is always detected. With
// `window_log`, the frame is written without a known size so it keeps that window.
inline std::string zstd(std::string_view data, int window_log = 0) {
  ZSTD_CCtx* ctx = ZSTD_createCCtx();
  ZSTD_CCtx_setParameter(ctx, ZSTD_c_checksumFlag, 1);
  if (window_log) ZSTD_CCtx_setParameter(ctx, ZSTD_c_windowLog, window_log);
  std::string out(ZSTD_compressBound(data.size()) + 1024, '\0');
  ZSTD_outBuffer o{out.data(), out.size(), 0};
  ZSTD_inBuffer i{data.data(), data.size(), 0};
  if (window_log) {
    size_t rc = ZSTD_compressStream2(ctx, &o, &i, ZSTD_e_continue);
    if (ZSTD_isError(rc)) throw std::runtime_error("ZSTD_compressStream2 failed");
  }
  size_t left = ZSTD_compressStream2(ctx, &o, &i, ZSTD_e_end);
  ZSTD_freeCCtx(ctx);
  if (ZSTD_isError(left) || left != 0) throw std::runtime_error("ZSTD_compressStream2 failed");
  out.resize(o.pos);
  return out;
}

// A zstd frame of `n` zero bytes, compressed in pieces.
inline std::string zstd_zeros(uint64_t n) {
  ZSTD_CCtx* ctx = ZSTD_createCCtx();
  std::vector<char> zeros(1 << 20, 0);
  std::vector<char> buf(1 << 16);
  std::string out;
  uint64_t left = n;
  size_t pending = 1;
  while (left > 0 || pending != 0) {
    size_t chunk = static_cast<size_t>(std::min<uint64_t>(left, zeros.size()));
    left -= chunk;
    ZSTD_inBuffer i{zeros.data(), chunk, 0};
    ZSTD_EndDirective mode = left == 0 ? ZSTD_e_end : ZSTD_e_continue;
    do {
      ZSTD_outBuffer o{buf.data(), buf.size(), 0};
      pending = ZSTD_compressStream2(ctx, &o, &i, mode);
      if (ZSTD_isError(pending)) throw std::runtime_error("zstd failed");
      out.append(buf.data(), o.pos);
    } while (i.pos < i.size || (mode == ZSTD_e_end && pending != 0));
  }
  ZSTD_freeCCtx(ctx);
  return out;
}

inline Result<std::string> read_all(ByteSource& source, size_t chunk = 4096) {
  std::string out;
  std::vector<char> buf(chunk);
  for (;;) {
    IMGPULL_ASSIGN_OR_RETURN(size_t n, source.read(buf.data(), buf.size()));
    if (n == 0) return out;
    out.append(buf.data(), n);
  }
}

// Lends `bytes` in blocks of `block_bytes` and refuses read(): a reader of it
// works only if it asks ByteSource::blocks() and takes the blocks.
class LendingOnlySource : public ByteSource, public BlockSource {
 public:
  LendingOnlySource(std::string_view bytes, size_t block_bytes) : rest_(bytes), block_bytes_(block_bytes) {}
  Result<size_t> read(void*, size_t) override {
    return Error(ErrorCode::kInternal, "read() of a source that lends its blocks");
  }
  BlockSource* blocks() override { return this; }
  Result<std::span<const char>> next_block() override {
    std::span<const char> block(rest_.data(), std::min(block_bytes_, rest_.size()));
    rest_.remove_prefix(block.size());
    if (!block.empty()) ++blocks_lent_;
    return block;
  }
  size_t blocks_lent() const { return blocks_lent_; }

 private:
  std::string_view rest_;
  size_t block_bytes_;
  size_t blocks_lent_ = 0;
};

inline std::string slurp(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

inline void write_file(const fs::path& path, const std::string& data, mode_t mode = 0644) {
  std::ofstream(path, std::ios::binary) << data;
  ::chmod(path.c_str(), mode);
}

inline struct stat lstat_of(const fs::path& path) {
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0) st.st_mode = 0;
  return st;
}

inline bool exists_nofollow(const fs::path& path) {
  struct stat st;
  return ::lstat(path.c_str(), &st) == 0;
}

// Everything observable about a tree, without following symlinks: what must not change.
inline std::map<std::string, std::string> snapshot_tree(const fs::path& root) {
  std::map<std::string, std::string> out;
  auto describe = [](const fs::path& p) {
    struct stat st = lstat_of(p);
    std::ostringstream d;
    d << std::oct << st.st_mode << std::dec << " " << st.st_uid << ":" << st.st_gid
      << " nlink=" << st.st_nlink << " size=" << st.st_size << " mtime=" << st.st_mtim.tv_sec
      << "." << st.st_mtim.tv_nsec;
    if (S_ISREG(st.st_mode)) d << " data=" << slurp(p);
    if (S_ISLNK(st.st_mode)) d << " -> " << fs::read_symlink(p).string();
    return d.str();
  };
  out["."] = describe(root);
  for (const auto& e : fs::recursive_directory_iterator(root)) {
    out[fs::relative(e.path(), root).string()] = describe(e.path());
  }
  return out;
}

// Applies an uncompressed tar.
inline Result<ApplyResult> apply_tar(int root_fd, const std::string& tar,
                                     const ApplyOptions& options = {}) {
  MemorySource source(tar);
  return apply_layer(root_fd, source, Compression::kNone, options);
}

}  // namespace imgpull::unpack::testing
