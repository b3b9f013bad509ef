#include "unpack/layer_applier.h"

#include <gtest/gtest.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>

#include "testing/layers.h"

namespace imgpull::unpack {
namespace {

using testing::exists_nofollow;
using testing::kTestMtime;
using testing::lstat_of;
using testing::slurp;
using testing::TarBuilder;
using testing::TempDir;
namespace fs = std::filesystem;

bool is_root() { return geteuid() == 0; }

std::string get_xattr(const fs::path& path, const char* name) {
  char buf[256];
  ssize_t n = lgetxattr(path.c_str(), name, buf, sizeof buf);
  return n < 0 ? std::string("<") + std::strerror(errno) + ">" : std::string(buf, n);
}

class ApplyTest : public ::testing::Test {
 protected:
  void SetUp() override {
    options_.warn = [this](std::string_view w) { warnings_.emplace_back(w); };
  }

  Result<ApplyResult> apply(TarBuilder& tar) { return apply(tar.finish()); }
  Result<ApplyResult> apply(const std::string& tar) {
    return testing::apply_tar(root_fd_.get(), tar, options_);
  }
  void apply_ok(TarBuilder& tar) {
    auto r = apply(tar);
    ASSERT_TRUE(r.ok()) << r.error().message();
  }
  fs::path at(const std::string& path) const { return dir_.path() / path; }

  TempDir dir_{"apply"};
  UniqueFd root_fd_ = dir_.open();
  ApplyOptions options_;
  std::vector<std::string> warnings_;
};

TEST_F(ApplyTest, RegularFileWithContentModeAndTimes) {
  TarBuilder tar(TarBuilder::Format::kPaxAlways);
  tar.file("etc/hosts", "127.0.0.1 localhost\n", 0640,
           [](archive_entry* e) { archive_entry_set_mtime(e, 1600000000, 123456789); });
  apply_ok(tar);
  EXPECT_EQ(slurp(at("etc/hosts")), "127.0.0.1 localhost\n");
  struct stat st = lstat_of(at("etc/hosts"));
  EXPECT_TRUE(S_ISREG(st.st_mode));
  EXPECT_EQ(st.st_mode & 07777, 0640u);
  EXPECT_EQ(st.st_mtim.tv_sec, 1600000000);
  EXPECT_EQ(st.st_mtim.tv_nsec, 123456789);
  EXPECT_EQ(lstat_of(at("etc")).st_mode & 07777, 0755u) << "implied parent";
}

TEST_F(ApplyTest, OwnershipAndSetuidSurviveChown) {
  if (!is_root()) GTEST_SKIP() << "needs root";
  auto owner = [](uid_t uid, gid_t gid) {
    return [=](archive_entry* e) {
      archive_entry_set_uid(e, uid);
      archive_entry_set_gid(e, gid);
    };
  };
  TarBuilder tar;
  tar.dir("bin", 0755, owner(10, 20))
      .file("bin/su", "#!", 04755, owner(1000, 1000))
      .file("bin/wall", "#!", 02755, owner(0, 5))
      .symlink("bin/link", "su", owner(33, 44))
      .dir("tmp", 01777, owner(0, 0));
  apply_ok(tar);
  struct stat su = lstat_of(at("bin/su"));
  EXPECT_EQ(su.st_uid, 1000u);
  EXPECT_EQ(su.st_gid, 1000u);
  EXPECT_EQ(su.st_mode & 07777, 04755u);
  EXPECT_EQ(lstat_of(at("bin/wall")).st_mode & 07777, 02755u);
  EXPECT_EQ(lstat_of(at("bin/link")).st_uid, 33u) << "lchown, not chown";
  EXPECT_EQ(lstat_of(at("bin/su")).st_uid, 1000u);
  EXPECT_EQ(lstat_of(at("bin")).st_uid, 10u);
  EXPECT_EQ(lstat_of(at("bin")).st_gid, 20u);
  EXPECT_EQ(lstat_of(at("tmp")).st_mode & 07777, 01777u);
}

TEST_F(ApplyTest, DirectoryTimesAreSetAfterTheirContents) {
  TarBuilder tar;
  tar.dir("d", 0750, [](archive_entry* e) { archive_entry_set_mtime(e, 1500000000, 0); })
      .dir("d/sub", 0700, [](archive_entry* e) { archive_entry_set_mtime(e, 1400000000, 0); })
      .file("d/sub/f", "x")
      .file("d/g", "y");
  apply_ok(tar);
  EXPECT_EQ(lstat_of(at("d")).st_mtim.tv_sec, 1500000000);
  EXPECT_EQ(lstat_of(at("d/sub")).st_mtim.tv_sec, 1400000000);
  EXPECT_EQ(lstat_of(at("d")).st_mode & 07777, 0750u);
  EXPECT_EQ(lstat_of(at("d/sub")).st_mode & 07777, 0700u);
  EXPECT_EQ(lstat_of(at("d/sub/f")).st_mtim.tv_sec, kTestMtime);
}

TEST_F(ApplyTest, ExistingDirectoryIsKeptAndTakesTheNewMetadata) {
  TarBuilder lower;
  lower.dir("d", 0755).file("d/old", "lower");
  apply_ok(lower);
  TarBuilder upper;
  upper.dir("d", 0711, [](archive_entry* e) { archive_entry_set_mtime(e, 1234567890, 0); })
      .file("d/new", "upper");
  apply_ok(upper);
  EXPECT_EQ(slurp(at("d/old")), "lower");
  EXPECT_EQ(slurp(at("d/new")), "upper");
  EXPECT_EQ(lstat_of(at("d")).st_mode & 07777, 0711u);
  EXPECT_EQ(lstat_of(at("d")).st_mtim.tv_sec, 1234567890);
}

TEST_F(ApplyTest, SymlinksAreStoredVerbatimWithTheirTimes) {
  TarBuilder tar;
  tar.symlink("abs", "/etc/passwd", [](archive_entry* e) { archive_entry_set_mtime(e, 1111, 0); })
      .symlink("rel", "../../../outside")
      .symlink("dangling", "nowhere/at/all");
  apply_ok(tar);
  EXPECT_EQ(fs::read_symlink(at("abs")), "/etc/passwd");
  EXPECT_EQ(fs::read_symlink(at("rel")), "../../../outside");
  EXPECT_EQ(fs::read_symlink(at("dangling")), "nowhere/at/all");
  EXPECT_EQ(lstat_of(at("abs")).st_mtim.tv_sec, 1111);
}

TEST_F(ApplyTest, HardlinksInTheLayerAndToLowerLayers) {
  TarBuilder lower;
  lower.file("lib/libc.so", "ELF");
  apply_ok(lower);
  TarBuilder upper;
  upper.file("bin/a", "A").hardlink("bin/b", "bin/a").hardlink("lib/libc.so.6", "/lib/libc.so");
  apply_ok(upper);
  EXPECT_EQ(lstat_of(at("bin/a")).st_ino, lstat_of(at("bin/b")).st_ino);
  EXPECT_EQ(lstat_of(at("bin/a")).st_nlink, 2u);
  EXPECT_EQ(lstat_of(at("lib/libc.so")).st_ino, lstat_of(at("lib/libc.so.6")).st_ino);
}

TEST_F(ApplyTest, HardlinkReplacesWhatIsThereAndToleratesItself) {
  TarBuilder lower;
  lower.file("a", "A").file("b", "B").dir("c").file("c/x", "x");
  apply_ok(lower);
  TarBuilder upper;
  upper.hardlink("b", "a").hardlink("c", "a").hardlink("a", "a").hardlink("b", "a");
  apply_ok(upper);
  EXPECT_EQ(slurp(at("b")), "A");
  EXPECT_EQ(slurp(at("c")), "A");
  EXPECT_EQ(lstat_of(at("a")).st_nlink, 3u);
}

TEST_F(ApplyTest, HardlinkToASymlinkLinksTheSymlinkItself) {
  // containerd's HardlinkSymlinkBeforeCreateTarget.
  TarBuilder tar;
  tar.dir("etc", 0770)
      .symlink("localpasswd", "/etc/passwd")
      .hardlink("localpasswd-dup", "localpasswd")
      .file("etc/passwd", "after");
  apply_ok(tar);
  EXPECT_TRUE(S_ISLNK(lstat_of(at("localpasswd-dup")).st_mode));
  EXPECT_EQ(fs::read_symlink(at("localpasswd-dup")), "/etc/passwd");
  EXPECT_EQ(lstat_of(at("localpasswd-dup")).st_ino, lstat_of(at("localpasswd")).st_ino);
}

TEST_F(ApplyTest, HardlinkToAMissingTargetOrADirectoryFails) {
  for (const char* target : {"missing", "nodir/missing", "dir"}) {
    TarBuilder tar;
    tar.dir("dir").hardlink("link", target);
    auto r = apply(tar);
    ASSERT_FALSE(r.ok()) << target;
    EXPECT_EQ(r.error().code(), ErrorCode::kCorrupt) << r.error().message();
  }
}

TEST_F(ApplyTest, DevicesAndFifosAsRoot) {
  if (!is_root()) GTEST_SKIP() << "needs root";
  TarBuilder tar;
  tar.node("dev/null", AE_IFCHR, 0666, makedev(1, 3))
      .node("dev/loop0", AE_IFBLK, 0660, makedev(7, 0))
      .node("run/fifo", AE_IFIFO, 0620);
  apply_ok(tar);
  struct stat null = lstat_of(at("dev/null"));
  EXPECT_TRUE(S_ISCHR(null.st_mode));
  EXPECT_EQ(null.st_rdev, makedev(1, 3));
  EXPECT_EQ(null.st_mode & 07777, 0666u);
  EXPECT_TRUE(S_ISBLK(lstat_of(at("dev/loop0")).st_mode));
  EXPECT_TRUE(S_ISFIFO(lstat_of(at("run/fifo")).st_mode));
  EXPECT_EQ(lstat_of(at("run/fifo")).st_mode & 07777, 0620u);
  EXPECT_TRUE(warnings_.empty());
}

TEST_F(ApplyTest, WithoutOwnershipDevicesAreSkippedWithOneWarning) {
  options_.preserve_ownership = false;
  TarBuilder tar;
  tar.node("dev/null", AE_IFCHR, 0666, makedev(1, 3))
      .node("dev/zero", AE_IFCHR, 0666, makedev(1, 5))
      .node("dev/sda", AE_IFBLK, 0660, makedev(8, 0))
      .node("run/fifo", AE_IFIFO, 0600)
      .file("f", "x", 0644, [](archive_entry* e) { archive_entry_set_uid(e, 4321); });
  apply_ok(tar);
  EXPECT_FALSE(exists_nofollow(at("dev/null")));
  EXPECT_FALSE(exists_nofollow(at("dev/sda")));
  EXPECT_TRUE(S_ISFIFO(lstat_of(at("run/fifo")).st_mode));
  EXPECT_EQ(lstat_of(at("f")).st_uid, geteuid()) << "no chown";
  ASSERT_EQ(warnings_.size(), 1u);
  EXPECT_NE(warnings_[0].find("device"), std::string::npos) << warnings_[0];
}

TEST_F(ApplyTest, UserXattrsOnFilesAndDirectories) {
  TarBuilder tar;
  auto with = [](const char* name, const char* value) {
    return [=](archive_entry* e) { archive_entry_xattr_add_entry(e, name, value, strlen(value)); };
  };
  tar.dir("d", 0755, with("user.dir", "dv")).file("d/f", "x", 0644, with("user.file", "fv"));
  apply_ok(tar);
  EXPECT_EQ(get_xattr(at("d"), "user.dir"), "dv");
  EXPECT_EQ(get_xattr(at("d/f"), "user.file"), "fv");
}

TEST_F(ApplyTest, SecurityCapabilitySurvivesAsRoot) {
  if (!is_root()) GTEST_SKIP() << "needs root";
  // VFS_CAP_REVISION_2, cap_net_raw permitted+effective.
  static const char kCap[] = "\x01\x00\x00\x02\x00\x20\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00"
                             "\x00\x00\x00\x00";
  TarBuilder tar;
  tar.file("bin/ping", "ELF", 0755, [](archive_entry* e) {
    archive_entry_set_uid(e, 0);
    archive_entry_set_gid(e, 0);
    archive_entry_xattr_add_entry(e, "security.capability", kCap, sizeof kCap - 1);
  });
  apply_ok(tar);
  EXPECT_EQ(get_xattr(at("bin/ping"), "security.capability"), std::string(kCap, sizeof kCap - 1));
}

TEST_F(ApplyTest, RefusedXattrsAreSkippedWithOneWarningEach) {
  TarBuilder tar;
  auto bogus = [](archive_entry* e) { archive_entry_xattr_add_entry(e, "bogus.ns", "v", 1); };
  tar.file("a", "x", 0644, bogus).file("b", "y", 0644, bogus);
  tar.symlink("l", "a", [](archive_entry* e) {
    archive_entry_xattr_add_entry(e, "user.onlink", "v", 1);  // Linux refuses user.* on symlinks
  });
  apply_ok(tar);
  EXPECT_EQ(slurp(at("b")), "y");
  EXPECT_EQ(warnings_.size(), 2u);
}

TEST_F(ApplyTest, WhiteoutRemovesFilesAndDirectoriesRecursively) {
  TarBuilder lower;
  lower.file("etc/motd", "hi").file("usr/share/doc/a/README", "r").file("usr/share/keep", "k");
  apply_ok(lower);
  TarBuilder upper;
  upper.whiteout("etc/motd").whiteout("usr/share/doc").whiteout("not/there").whiteout("nope");
  apply_ok(upper);
  EXPECT_FALSE(exists_nofollow(at("etc/motd")));
  EXPECT_FALSE(exists_nofollow(at("usr/share/doc")));
  EXPECT_TRUE(exists_nofollow(at("usr/share/keep")));
  EXPECT_FALSE(exists_nofollow(at("not"))) << "whiteouts make no parents";
  EXPECT_FALSE(exists_nofollow(at(".wh.nope")));
}

TEST_F(ApplyTest, WhiteoutSparesWhatTheSameLayerAdds) {
  TarBuilder lower;
  lower.file("a/old", "lower").file("b", "lower");
  apply_ok(lower);
  TarBuilder upper;
  upper.file("a/new", "upper").whiteout("a").file("b", "upper").whiteout("b");
  apply_ok(upper);
  EXPECT_FALSE(exists_nofollow(at("a/old")));
  EXPECT_EQ(slurp(at("a/new")), "upper");
  EXPECT_EQ(slurp(at("b")), "upper");
}

void lower_for_opaque(TarBuilder& lower) {
  lower.file("d/old", "lower").file("d/sub/deep", "lower").file("d/sub/keep", "lower")
      .file("other", "lower");
}

TEST_F(ApplyTest, OpaqueDirectoryBeforeItsNewEntries) {
  TarBuilder lower;
  lower_for_opaque(lower);
  apply_ok(lower);
  TarBuilder upper;
  upper.dir("d").opaque("d").file("d/new", "upper").file("d/sub/keep", "upper");
  apply_ok(upper);
  EXPECT_FALSE(exists_nofollow(at("d/old")));
  EXPECT_FALSE(exists_nofollow(at("d/sub/deep")));
  EXPECT_EQ(slurp(at("d/new")), "upper");
  EXPECT_EQ(slurp(at("d/sub/keep")), "upper");
  EXPECT_EQ(slurp(at("other")), "lower");
  EXPECT_FALSE(exists_nofollow(at("d/.wh..wh..opq")));
}

TEST_F(ApplyTest, OpaqueDirectoryAfterItsNewEntries) {
  TarBuilder lower;
  lower_for_opaque(lower);
  apply_ok(lower);
  TarBuilder upper;
  upper.dir("d").file("d/new", "upper").dir("d/sub").file("d/sub/keep", "upper").opaque("d");
  apply_ok(upper);
  EXPECT_FALSE(exists_nofollow(at("d/old")));
  EXPECT_FALSE(exists_nofollow(at("d/sub/deep"))) << "lower content below a kept directory";
  EXPECT_EQ(slurp(at("d/new")), "upper");
  EXPECT_EQ(slurp(at("d/sub/keep")), "upper");
  EXPECT_EQ(slurp(at("other")), "lower");
}

TEST_F(ApplyTest, OpaqueRootAndMissingDirectory) {
  TarBuilder lower;
  lower.file("a", "lower").file("b/c", "lower");
  apply_ok(lower);
  TarBuilder upper;
  upper.file("n", "new").opaque(".").opaque("missing");
  apply_ok(upper);
  EXPECT_FALSE(exists_nofollow(at("a")));
  EXPECT_FALSE(exists_nofollow(at("b")));
  EXPECT_EQ(slurp(at("n")), "new");
  EXPECT_FALSE(exists_nofollow(at("missing")));
}

TEST_F(ApplyTest, FileAndDirectoryReplaceEachOther) {
  TarBuilder lower;
  lower.dir("was_dir").file("was_dir/x", "x").file("was_file", "f").symlink("was_link", "/etc");
  apply_ok(lower);
  TarBuilder upper;
  upper.file("was_dir", "now a file").dir("was_file").file("was_file/y", "y").dir("was_link");
  apply_ok(upper);
  EXPECT_EQ(slurp(at("was_dir")), "now a file");
  EXPECT_EQ(slurp(at("was_file/y")), "y");
  EXPECT_TRUE(S_ISDIR(lstat_of(at("was_link")).st_mode));
}

TEST_F(ApplyTest, NewFileBreaksTheHardlinkOfALowerFile) {
  TarBuilder lower;
  lower.file("a", "shared").hardlink("b", "a");
  apply_ok(lower);
  TarBuilder upper;
  upper.file("a", "replaced");
  apply_ok(upper);
  EXPECT_EQ(slurp(at("a")), "replaced");
  EXPECT_EQ(slurp(at("b")), "shared");
}

TEST_F(ApplyTest, SparseFileKeepsItsHoles) {
  std::string data(8 << 20, '\0');
  std::fill_n(data.begin() + (2 << 20), 4096, 'x');
  TarBuilder tar;
  tar.file("sparse", data, 0644,
           [](archive_entry* e) { archive_entry_sparse_add_entry(e, 2 << 20, 4096); });
  apply_ok(tar);
  EXPECT_EQ(slurp(at("sparse")), data);
  EXPECT_LT(lstat_of(at("sparse")).st_blocks * 512, 1 << 20) << "holes were written out";
}

TEST_F(ApplyTest, LongNamesFromPaxAndGnu) {
  std::string pax_name = std::string(120, 'p') + "/" + std::string(200, 'q');
  std::string gnu_name = std::string(130, 'g') + "/" + std::string(140, 'h');
  TarBuilder pax;
  pax.file(pax_name, "pax").symlink("plink", std::string(300, 't'));
  apply_ok(pax);
  TarBuilder gnu(TarBuilder::Format::kGnu);
  gnu.file(gnu_name, "gnu").hardlink("ghard", gnu_name);
  apply_ok(gnu);
  EXPECT_EQ(slurp(at(pax_name)), "pax");
  EXPECT_EQ(fs::read_symlink(at("plink")).string(), std::string(300, 't'));
  EXPECT_EQ(slurp(at("ghard")), "gnu");
}

TEST_F(ApplyTest, RootEntriesAreIgnored) {
  ::chmod(dir_.path().c_str(), 0751);
  TarBuilder tar;
  tar.dir("./", 0700).dir(".", 0777).symlink("", "/etc").file("f", "x");
  apply_ok(tar);
  EXPECT_EQ(lstat_of(dir_.path()).st_mode & 07777, 0751u);
  EXPECT_TRUE(S_ISDIR(lstat_of(dir_.path()).st_mode));
  EXPECT_EQ(slurp(at("f")), "x");
}

TEST_F(ApplyTest, DiffIdIsTheDigestOfTheUncompressedTar) {
  TarBuilder tar;
  tar.dir("etc").file("etc/a", std::string(100000, 'a')).whiteout("gone");
  std::string bytes = tar.finish() + std::string(4096, '\0');  // padding after the end marker
  struct Case {
    Compression compression;
    std::string blob;
  };
  for (const Case& c : {Case{Compression::kNone, bytes},
                        Case{Compression::kGzip, testing::gzip(bytes)},
                        Case{Compression::kZstd, testing::zstd(bytes)}}) {
    TempDir dir("diffid");
    MemorySource blob(c.blob);
    auto r = apply_layer(dir.open().get(), blob, c.compression, options_);
    ASSERT_TRUE(r.ok()) << to_string(c.compression) << ": " << r.error().message();
    EXPECT_EQ(r->diff_id, Digest::of(bytes)) << to_string(c.compression);
    EXPECT_EQ(r->uncompressed_bytes, bytes.size());
    EXPECT_EQ(r->entries, 3u);
    EXPECT_EQ(slurp(dir.path() / "etc/a"), std::string(100000, 'a'));
  }
}

TEST_F(ApplyTest, BombIsStoppedByTheLayerLimit) {
  TarBuilder tar;
  tar.file("big", std::string(2 << 20, 'z'));
  options_.max_uncompressed_bytes = 1 << 20;
  std::string blob = testing::gzip(tar.finish());
  MemorySource source(blob);
  auto r = apply_layer(root_fd_.get(), source, Compression::kGzip, options_);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code(), ErrorCode::kTooLarge) << r.error().message();
}

TEST_F(ApplyTest, TooManyEntriesIsTooLarge) {
  options_.max_entries = 3;
  TarBuilder ok;
  ok.file("a", "").file("b", "").whiteout("c");
  apply_ok(ok);
  TarBuilder tar;
  tar.file("a", "").file("b", "").file("c", "").file("d", "");
  auto r = apply(tar);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code(), ErrorCode::kTooLarge) << r.error().message();
}

TEST_F(ApplyTest, CorruptStreamsFail) {
  TarBuilder tar;
  tar.file("a", std::string(50000, 'a'));
  std::string bytes = tar.finish();
  std::string gz = testing::gzip(bytes);
  MemorySource truncated(std::string_view(gz).substr(0, gz.size() / 2));
  auto r = apply_layer(root_fd_.get(), truncated, Compression::kGzip, options_);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code(), ErrorCode::kCorrupt) << r.error().message();
  MemorySource wrong(bytes);  // a plain tar declared as gzip
  auto w = apply_layer(root_fd_.get(), wrong, Compression::kGzip, options_);
  ASSERT_FALSE(w.ok());
  EXPECT_EQ(w.error().code(), ErrorCode::kCorrupt) << w.error().message();
}

TEST_F(ApplyTest, RejectsARootThatIsNotADirectory) {
  MemorySource empty("");
  auto r = apply_layer(-1, empty, Compression::kNone, options_);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code(), ErrorCode::kInvalidArgument);
}

TEST_F(ApplyTest, ErrorsNameTheEntry) {
  TarBuilder tar;
  tar.file("file", "x").file("file/under", "y");
  auto r = apply(tar);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message().find("file/under"), std::string::npos) << r.error().message();
}

TEST_F(ApplyTest, ZeroByteLayersAreEmptyLayers) {
  // 0 bytes of tar, plain and compressed, as umoci and Go's archive/tar take them.
  std::vector<std::pair<std::string, Compression>> layers = {
      {"", Compression::kNone}, {testing::gzip(""), Compression::kGzip},
      {testing::zstd(""), Compression::kZstd}};
  for (const auto& [bytes, compression] : layers) {
    MemorySource source(bytes);
    auto r = apply_layer(root_fd_.get(), source, compression, options_);
    ASSERT_TRUE(r.ok()) << to_string(compression) << ": " << r.error().message();
    EXPECT_EQ(r->entries, 0u);
    EXPECT_EQ(r->uncompressed_bytes, 0u);
    EXPECT_EQ(r->diff_id, Digest::of(""));
  }
  EXPECT_TRUE(fs::is_empty(dir_.path()));
}

TEST_F(ApplyTest, EmptyValuedXattrIsNotSet) {
  TarBuilder tar(TarBuilder::Format::kPaxAlways);
  tar.file("f", "x", 0644, [](archive_entry* e) {
    archive_entry_xattr_add_entry(e, "user.empty", "", 0);
    archive_entry_xattr_add_entry(e, "user.full", "v", 1);
  });
  apply_ok(tar);
  EXPECT_EQ(get_xattr(at("f"), "user.full"), "v");
  EXPECT_EQ(get_xattr(at("f"), "user.empty"), std::string("<") + std::strerror(ENODATA) + ">");
}

}  // namespace
}  // namespace imgpull::unpack
