// Fuzzes applying a layer: decompression, libarchive's tar reader and the
// contained applier (src/imgpull/unpack), onto a real directory.
//
// Input: one selector byte, then the layer blob.
//   bits 0-1  compression: 0 none, 1 gzip, 2 zstd, 3 none
//   bit 2     force the O_NOFOLLOW walk resolver instead of openat2
//   bit 3     apply the layer a second time on top of the first
//   bit 4     preserve ownership (chown, device nodes; only when root)
//   bit 5     keep tar header checksums as they are; without it, every
//             512-byte block of an uncompressed layer that has the "ustar"
//             magic gets its checksum recomputed, so that mutations of
//             header fields reach the applier instead of stopping at
//             libarchive's checksum test
//
// Layout, made once: PARENT/canary/{file,dir/deep,hardlinked,link} and, per
// input, a fresh PARENT/rootfs removed afterwards. After each input the
// harness aborts (a finding) if
//  - PARENT holds anything but canary and rootfs, or rootfs is not a directory;
//  - anything under canary changed: names, types, modes, owners, sizes, link
//    counts, mtimes, ctimes (a chmod, chown, xattr, hardlink or write through
//    an escape changes the ctime), symlink targets, file contents;
//  - "/" gained or lost an entry, or /pwned, /tmp/pwned, /tmp/canary appeared.
// And on success, for an uncompressed layer: the diffID is the sha256 of the
// bytes and uncompressed_bytes their count; applying twice gives the same
// diffID and entry count.
#include <fcntl.h>
#include <ftw.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <string_view>

#include "fuzz/fuzz_check.h"
#include "imgpull/digest.h"
#include "base/byte_source.h"
#include "unpack/layer_applier.h"

namespace {

namespace fs = std::filesystem;
using namespace imgpull;
using namespace imgpull::unpack;

// Small limits keep each input fast; they are checks like any other.
constexpr uint64_t kFuzzMaxBytes = 16 << 20;
constexpr uint64_t kFuzzMaxEntries = 2000;
constexpr const char* kEscapeProbes[] = {"/pwned", "/tmp/pwned", "/tmp/canary", "/canary"};

std::string read_file(const char* path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

// Everything we compare about one node (never following a symlink).
std::string describe(const char* path, const struct stat& st) {
  std::ostringstream d;
  d << std::oct << st.st_mode << std::dec << " " << st.st_uid << ":" << st.st_gid
    << " ino=" << st.st_ino << " nlink=" << st.st_nlink << " size=" << st.st_size
    << " mtime=" << st.st_mtim.tv_sec << "." << st.st_mtim.tv_nsec
    << " ctime=" << st.st_ctim.tv_sec << "." << st.st_ctim.tv_nsec;
  if (S_ISREG(st.st_mode)) d << " data=" << read_file(path);
  if (S_ISLNK(st.st_mode)) {
    char target[4096];
    ssize_t n = readlink(path, target, sizeof target);
    d << " -> " << std::string_view(target, n < 0 ? 0 : static_cast<size_t>(n));
  }
  return d.str();
}

std::map<std::string, std::string>* g_snapshot_out;

int snapshot_one(const char* path, const struct stat* st, int, struct FTW*) {
  (*g_snapshot_out)[path] = describe(path, *st);
  return 0;
}

std::map<std::string, std::string> snapshot_tree(const std::string& root) {
  std::map<std::string, std::string> out;
  g_snapshot_out = &out;
  FUZZ_CHECK(nftw(root.c_str(), snapshot_one, 16, FTW_PHYS) == 0) << root;
  return out;
}

std::set<std::string> list(const std::string& dir) {
  std::set<std::string> names;
  for (const auto& e : fs::directory_iterator(dir)) names.insert(e.path().filename());
  return names;
}

bool exists_nofollow(const char* path) {
  struct stat st;
  return lstat(path, &st) == 0;
}

int remove_one(const char* path, const struct stat* st, int type, struct FTW*) {
  int rc = type == FTW_DP ? rmdir(path) : unlink(path);
  if (rc != 0) std::fprintf(stderr, "tar_apply_fuzz: cannot remove %s (mode %o)\n", path, st->st_mode);
  return rc;
}

int make_removable(const char* path, const struct stat* st, int type, struct FTW*) {
  if (type == FTW_D && (st->st_mode & 0700) != 0700) chmod(path, st->st_mode | 0700);
  return 0;
}

struct Harness {
  std::string parent, canary, rootfs;
  int parent_fd = -1;
  std::map<std::string, std::string> canary_before;
  std::set<std::string> slash_before;

  Harness() {
    std::string tmpl = (fs::temp_directory_path() / "imgpull-tar-fuzz-XXXXXX").string();
    FUZZ_CHECK(mkdtemp(tmpl.data()) != nullptr);
    parent = tmpl;
    canary = parent + "/canary";
    rootfs = parent + "/rootfs";
    fs::create_directories(canary + "/dir");
    std::ofstream(canary + "/file") << "canary";
    std::ofstream(canary + "/dir/deep") << "deep";
    FUZZ_CHECK(link((canary + "/file").c_str(), (canary + "/hardlinked").c_str()) == 0);
    FUZZ_CHECK(symlink("file", (canary + "/link").c_str()) == 0);
    chmod((canary + "/file").c_str(), 0640);
    chmod((canary + "/dir").c_str(), 0750);
    parent_fd = open(parent.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    FUZZ_CHECK(parent_fd >= 0);
    canary_before = snapshot_tree(canary);
    slash_before = list("/");
    for (const char* probe : kEscapeProbes) FUZZ_CHECK(!exists_nofollow(probe)) << probe;
  }

  void remove_rootfs() {
    struct stat st;
    if (fstatat(parent_fd, "rootfs", &st, AT_SYMLINK_NOFOLLOW) != 0) return;
    if (geteuid() != 0) nftw(rootfs.c_str(), make_removable, 16, FTW_PHYS);
    FUZZ_CHECK(nftw(rootfs.c_str(), remove_one, 16, FTW_PHYS | FTW_DEPTH | FTW_MOUNT) == 0)
        << "cannot clean up " << rootfs;
  }

  void check_nothing_escaped() {
    FUZZ_CHECK(list(parent) == (std::set<std::string>{"canary", "rootfs"}))
        << "something appeared beside the rootfs in " << parent;
    struct stat st;
    FUZZ_CHECK(lstat(rootfs.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) << "the rootfs was replaced";
    auto canary_after = snapshot_tree(canary);
    if (canary_after != canary_before) {
      for (const auto& [path, what] : canary_before) {
        auto it = canary_after.find(path);
        std::fprintf(stderr, "before %s: %s\n after: %s\n", path.c_str(), what.c_str(),
                     it == canary_after.end() ? "(gone)" : it->second.c_str());
      }
      for (const auto& [path, what] : canary_after) {
        if (!canary_before.contains(path)) std::fprintf(stderr, "new %s: %s\n", path.c_str(), what.c_str());
      }
      FUZZ_CHECK(false) << "the canary outside the rootfs changed";
    }
    FUZZ_CHECK(list("/") == slash_before) << "an entry appeared in or vanished from /";
    for (const char* probe : kEscapeProbes) FUZZ_CHECK(!exists_nofollow(probe)) << probe << " appeared";
  }
};

Harness* g_harness;

// Recomputes the checksum of every block that looks like a ustar/GNU header.
void fix_header_checksums(std::string& tar) {
  constexpr size_t kBlock = 512, kMagic = 257, kChecksum = 148, kChecksumSize = 8;
  for (size_t off = 0; off + kBlock <= tar.size(); off += kBlock) {
    char* block = tar.data() + off;
    if (std::string_view(block + kMagic, 5) != "ustar") continue;
    std::memset(block + kChecksum, ' ', kChecksumSize);
    unsigned sum = 0;
    for (size_t i = 0; i < kBlock; ++i) sum += static_cast<unsigned char>(block[i]);
    std::snprintf(block + kChecksum, 7, "%06o", sum & 0777777);  // 6 digits, NUL
    block[kChecksum + 7] = ' ';
  }
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  g_harness = new Harness();
  // On a normal exit the scratch tree goes; after a finding (abort) it stays.
  std::atexit([] {
    std::error_code ignored;
    fs::remove_all(g_harness->parent, ignored);
  });
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  Harness& h = *g_harness;
  const uint8_t selector = data[0];
  std::string owned(reinterpret_cast<const char*>(data + 1), size - 1);
  static constexpr Compression kCompressions[] = {Compression::kNone, Compression::kGzip,
                                                  Compression::kZstd, Compression::kNone};
  Compression compression = kCompressions[selector & 3];
  if (compression == Compression::kNone && (selector & 32) == 0) fix_header_checksums(owned);
  const std::string_view blob = owned;
  ApplyOptions options;
  options.force_walk_resolver = (selector & 4) != 0;
  options.preserve_ownership = (selector & 16) != 0 && geteuid() == 0;
  options.max_uncompressed_bytes = kFuzzMaxBytes;
  options.max_entries = kFuzzMaxEntries;
  options.warn = [](std::string_view) {};
  const int passes = (selector & 8) ? 2 : 1;

  FUZZ_CHECK(mkdirat(h.parent_fd, "rootfs", 0755) == 0) << "a previous rootfs was left behind";
  int rootfs_fd = openat(h.parent_fd, "rootfs", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  FUZZ_CHECK(rootfs_fd >= 0);
  std::optional<ApplyResult> first;
  for (int pass = 0; pass < passes; ++pass) {
    MemorySource source(blob);
    auto applied = apply_layer(rootfs_fd, source, compression, options);
    if (!applied) break;
    FUZZ_CHECK(applied->entries <= kFuzzMaxEntries);
    FUZZ_CHECK(applied->uncompressed_bytes <= kFuzzMaxBytes);
    if (compression == Compression::kNone) {
      FUZZ_CHECK(applied->uncompressed_bytes == blob.size());
      FUZZ_CHECK(applied->diff_id == Digest::of(blob)) << "diffID is not the sha256 of the tar";
    }
    if (first) {
      FUZZ_CHECK(applied->diff_id == first->diff_id && applied->entries == first->entries &&
                 applied->uncompressed_bytes == first->uncompressed_bytes);
    } else {
      first = *applied;
    }
  }
  close(rootfs_fd);
  h.check_nothing_escaped();
  h.remove_rootfs();
  return 0;
}
