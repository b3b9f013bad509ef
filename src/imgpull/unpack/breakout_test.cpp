// The breakout table: layers shaped to reach outside the rootfs (shapes from
// containerd's TestBreakouts, moby's TestUntarInvalid* and our own). Each test
// has a canary directory OUTSIDE the rootfs, a sibling of it, whose contents,
// modes, owners, link counts and times must not change and in which nothing
// may appear; TearDown checks it, and that nothing appeared beside it. Every
// test runs twice: with openat2 and with the O_NOFOLLOW walk forced.
#include <gtest/gtest.h>
#include <sys/sysmacros.h>

#include "unpack/layer_applier.h"
#include "unpack/path_resolver.h"
#include "testing/layers.h"

namespace imgpull::unpack {
namespace {

using testing::exists_nofollow;
using testing::lstat_of;
using testing::slurp;
using testing::TarBuilder;
using testing::TempDir;
namespace fs = std::filesystem;

class BreakoutTest : public ::testing::TestWithParam<ResolveMode> {
 protected:
  void SetUp() override {
    root_ = base_.path() / "rootfs";
    canary_ = base_.path() / "canary";
    fs::create_directories(root_);
    fs::create_directories(canary_ / "sub");
    testing::write_file(canary_ / "hello", "original", 0640);
    testing::write_file(canary_ / "sub/deep", "deep", 0600);
    testing::write_file(canary_ / "perm400", "...", 0400);
    ::chmod((canary_ / "sub").c_str(), 0750);
    root_fd_ = UniqueFd(::open(root_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    options_.force_walk_resolver = GetParam() == ResolveMode::kWalk;
    options_.warn = [](std::string_view) {};
    before_ = testing::snapshot_tree(canary_);
  }

  void TearDown() override {
    EXPECT_EQ(testing::snapshot_tree(canary_), before_) << "the canary outside the rootfs changed";
    std::set<std::string> siblings;
    for (const auto& e : fs::directory_iterator(base_.path())) {
      siblings.insert(e.path().filename());
    }
    EXPECT_EQ(siblings, (std::set<std::string>{"canary", "rootfs"})) << "something escaped";
    for (const char* escaped : {"/pwned", "/tmp/pwned", "/tmp/canary"}) {
      EXPECT_FALSE(exists_nofollow(escaped)) << escaped;
    }
    EXPECT_TRUE(S_ISDIR(lstat_of(root_).st_mode)) << "the rootfs itself was replaced";
  }

  Result<ApplyResult> apply(TarBuilder& tar) {
    return testing::apply_tar(root_fd_.get(), tar.finish(), options_);
  }
  void apply_ok(TarBuilder& tar) {
    auto r = apply(tar);
    ASSERT_TRUE(r.ok()) << r.error().message();
  }
  void apply_fails(TarBuilder& tar, ErrorCode code) {
    auto r = apply(tar);
    ASSERT_FALSE(r.ok()) << "applied a layer that should have been refused";
    EXPECT_EQ(r.error().code(), code) << r.error().message();
  }

  std::string canary_abs() const { return canary_.string(); }
  // Where an absolute host path lands when it is taken inside the rootfs.
  fs::path in_root(const std::string& path) const { return root_ / fs::path(path).relative_path(); }

  TempDir base_{"breakout"};
  fs::path root_, canary_;
  UniqueFd root_fd_;
  ApplyOptions options_;
  std::map<std::string, std::string> before_;
};

// containerd SymlinkAbsolute, moby "try writing victim/file".
TEST_P(BreakoutTest, AbsoluteSymlinkThenWriteThroughIt) {
  TarBuilder tar;
  tar.symlink("escape", canary_abs())
      .file("escape/pwned", "x")
      .file("escape/hello", "overwritten", 0777, [](archive_entry* e) {
        archive_entry_set_uid(e, 4242);
        archive_entry_set_mtime(e, 0, 0);
        archive_entry_xattr_add_entry(e, "user.evil", "1", 1);
      });
  apply_ok(tar);
  EXPECT_EQ(slurp(in_root(canary_abs()) / "hello"), "overwritten");
  EXPECT_TRUE(exists_nofollow(in_root(canary_abs()) / "pwned"));
}

TEST_P(BreakoutTest, RelativeDotDotSymlinkThenWriteThroughIt) {
  TarBuilder tar;
  tar.symlink("escape", "../canary")
      .dir("deep/er")
      .symlink("deep/er/escape", "../../../../../../../../canary")
      .symlink("updown", "deep/../../canary")  // containerd SymlinkUpAndOut
      .file("escape/hello", "x")
      .file("deep/er/escape/pwned", "x")
      .file("updown/sub/deep", "x");
  apply_ok(tar);
  EXPECT_EQ(slurp(root_ / "canary/hello"), "x");
  EXPECT_TRUE(exists_nofollow(root_ / "canary/pwned"));
  EXPECT_EQ(slurp(root_ / "canary/sub/deep"), "x");
}

TEST_P(BreakoutTest, TwoHopSymlinkChains) {
  TarBuilder tar;
  tar.dir("dummy")
      .symlink("hop2", "../..")
      .symlink("hop1", "hop2/canary")  // relative chain
      .symlink("dummy/abs2", canary_abs() + "/..")
      .symlink("abs1", "/dummy/abs2/canary")  // containerd SymlinkMultipleAbsolute
      .file("hop1/hello", "rel")
      .file("abs1/pwned", "abs");
  apply_ok(tar);
  EXPECT_EQ(slurp(root_ / "canary/hello"), "rel");
  EXPECT_EQ(slurp(in_root(canary_abs()) / "pwned"), "abs");
}

TEST_P(BreakoutTest, SymlinkPlantedByAnEarlierLayer) {
  TarBuilder layer1;
  layer1.symlink("escape", "../canary").symlink("abs", canary_abs()).file("etc/passwd", "p");
  apply_ok(layer1);
  TarBuilder layer2;
  layer2.file("escape/hello", "x")
      .dir("escape/sub", 0777)
      .file("abs/pwned", "x")
      .hardlink("abs/linked", "etc/passwd")
      .symlink("escape/sub/more", "/");
  apply_ok(layer2);
  EXPECT_EQ(slurp(root_ / "canary/hello"), "x");
  EXPECT_EQ(lstat_of(in_root(canary_abs()) / "linked").st_ino,
            lstat_of(root_ / "etc/passwd").st_ino);
}

// containerd SymlinkParentDirectory, SymlinkEmptyFilename, SymlinkParentRelative.
TEST_P(BreakoutTest, SymlinksNamedDotDotDotOrEmpty) {
  TarBuilder tar;
  tar.dir("etc")
      .symlink(".", canary_abs())
      .symlink("..", "../canary")
      .symlink("", canary_abs())
      .symlink("./", "/")
      .symlink("localetc/sub/..", canary_abs())
      .file("pwned", "x")
      .file("localetc/pwned", "y");
  apply_ok(tar);
  EXPECT_EQ(slurp(root_ / "pwned"), "x");
  EXPECT_TRUE(S_ISLNK(lstat_of(root_ / "localetc").st_mode));
  EXPECT_EQ(slurp(in_root(canary_abs()) / "pwned"), "y");
}

TEST_P(BreakoutTest, ImpliedParentDirectoriesThroughASymlink) {
  TarBuilder tar;
  tar.symlink("escape", "../canary")
      .symlink("abs", canary_abs() + "/sub")
      .file("escape/a/b/c/pwned", "x")
      .node("escape/fifo", AE_IFIFO, 0666)
      .dir("abs/newdir/deeper", 0777);
  apply_ok(tar);
  EXPECT_EQ(slurp(root_ / "canary/a/b/c/pwned"), "x");
  EXPECT_TRUE(S_ISFIFO(lstat_of(root_ / "canary/fifo").st_mode));
  EXPECT_TRUE(S_ISDIR(lstat_of(in_root(canary_abs()) / "sub/newdir/deeper").st_mode));
}

// moby TestUntarInvalidHardlink, containerd HardlinkDirectRelative.
TEST_P(BreakoutTest, HardlinkToDotDotTargets) {
  for (const char* target : {"../canary/hello", "../../../../../../canary/hello",
                             "/../canary/hello", "../canary/sub"}) {
    SCOPED_TRACE(target);
    TarBuilder tar;
    tar.hardlink("link", target);
    apply_fails(tar, ErrorCode::kCorrupt);
  }
  EXPECT_FALSE(exists_nofollow(root_ / "link"));
}

// containerd HardlinkDirectAbsolute.
TEST_P(BreakoutTest, HardlinkToAbsoluteTargets) {
  for (const std::string& target : {canary_abs() + "/hello", canary_abs() + "/sub/deep"}) {
    SCOPED_TRACE(target);
    TarBuilder tar;
    tar.hardlink("link", target);
    apply_fails(tar, ErrorCode::kCorrupt);
  }
}

// containerd HardlinkRelative / HardlinkAbsolute / HardlinkRelativeLong.
TEST_P(BreakoutTest, HardlinkThroughSymlinkedDirectories) {
  TarBuilder tar;
  tar.symlink("escape", "../../../canary")
      .symlink("abs", canary_abs())
      .hardlink("l1", "escape/hello");
  apply_fails(tar, ErrorCode::kCorrupt);

  TarBuilder inside;  // the same names, now present inside the rootfs
  inside.file("canary/hello", "inside")
      .file(in_root(canary_abs()).lexically_relative(root_).string() + "/hello", "inside-abs")
      .hardlink("l1", "escape/hello")
      .hardlink("l2", "abs/hello")
      .hardlink("escape/l3", "canary/hello");
  apply_ok(inside);
  EXPECT_EQ(slurp(root_ / "l1"), "inside");
  EXPECT_EQ(slurp(root_ / "l2"), "inside-abs");
  EXPECT_EQ(lstat_of(root_ / "canary/l3").st_ino, lstat_of(root_ / "canary/hello").st_ino);
}

// containerd HardlinkSymlinkChmod: a link to a symlink that points at a host file, with a
// mode and owner on the link entry, then entries that would chmod the link's path.
TEST_P(BreakoutTest, HardlinkToASymlinkThenChmod) {
  std::string host_file = canary_abs() + "/perm400";
  std::string also_exists = canary_abs() + "/also-exists-outside-root";
  TarBuilder tar;
  auto loud = [](archive_entry* e) {
    archive_entry_set_perm(e, 07777);
    archive_entry_set_uid(e, 12345);
    archive_entry_set_mtime(e, 1, 0);
  };
  tar.symlink(also_exists, host_file)
      .hardlink("sketchylink", also_exists, loud)
      .hardlink("sketchylink2", "sketchylink", loud)
      .dir("sketchylink2", 0777);  // a directory entry over the link replaces it
  apply_ok(tar);
  EXPECT_TRUE(S_ISLNK(lstat_of(root_ / "sketchylink").st_mode));
  EXPECT_EQ(fs::read_symlink(root_ / "sketchylink"), host_file) << "the target is data";
  EXPECT_TRUE(S_ISDIR(lstat_of(root_ / "sketchylink2").st_mode));
  EXPECT_EQ(lstat_of(canary_ / "perm400").st_mode & 07777, 0400u);
}

// containerd WhiteoutRoot / WhiteoutCurrentDirectory.
TEST_P(BreakoutTest, WhiteoutDotDot) {
  TarBuilder lower;
  lower.file("etc/passwd", "p");
  apply_ok(lower);
  for (const char* name : {".wh..", "etc/.wh..", "./.wh..", "etc/../.wh.."}) {
    SCOPED_TRACE(name);
    TarBuilder tar;
    tar.file(name, "");
    apply_fails(tar, ErrorCode::kCorrupt);
  }
  EXPECT_EQ(slurp(root_ / "etc/passwd"), "p");
}

// containerd WhiteoutRootParent / WhiteoutParent.
TEST_P(BreakoutTest, WhiteoutDotDotDot) {
  TarBuilder lower;
  lower.file("etc/passwd", "p");
  apply_ok(lower);
  for (const char* name : {".wh...", "etc/.wh...", "etc/sub/.wh..."}) {
    SCOPED_TRACE(name);
    TarBuilder tar;
    tar.file(name, "");
    apply_fails(tar, ErrorCode::kCorrupt);
  }
  EXPECT_EQ(slurp(root_ / "etc/passwd"), "p");
}

TEST_P(BreakoutTest, WhiteoutWithAnEmptyName) {
  TarBuilder lower;
  lower.file("etc/passwd", "p");
  apply_ok(lower);
  for (const char* name : {".wh.", "etc/.wh."}) {
    SCOPED_TRACE(name);
    TarBuilder tar;
    tar.file(name, "");
    apply_fails(tar, ErrorCode::kCorrupt);
  }
  EXPECT_EQ(slurp(root_ / "etc/passwd"), "p");
}

// containerd WhiteoutSymlinkPath / WhiteoutDeadSymlinkParent.
TEST_P(BreakoutTest, WhiteoutsThroughASymlinkedParent) {
  TarBuilder lower;
  lower.symlink("escape", "../canary")
      .symlink("abs", canary_abs())
      .symlink("dead", "/does/not/exist")
      .file("canary/hello", "inside");
  apply_ok(lower);
  TarBuilder upper;
  upper.whiteout("escape/hello")
      .whiteout("abs/sub")
      .whiteout("abs/hello")
      .whiteout("dead/anything")
      .whiteout("escape/sub");
  apply_ok(upper);
  EXPECT_FALSE(exists_nofollow(root_ / "canary/hello")) << "the whiteout acts inside the rootfs";
  EXPECT_TRUE(S_ISLNK(lstat_of(root_ / "escape").st_mode));
  EXPECT_FALSE(exists_nofollow(root_ / "does")) << "whiteouts create nothing";
}

TEST_P(BreakoutTest, OpaqueThroughASymlinkedParent) {
  TarBuilder lower;
  lower.symlink("escape", "../canary").symlink("abs", canary_abs()).file("canary/in", "x");
  apply_ok(lower);
  TarBuilder upper;
  upper.opaque("escape").opaque("abs").opaque("abs/sub");
  apply_ok(upper);
  EXPECT_FALSE(exists_nofollow(root_ / "canary/in"));
}

// containerd WhiteoutSymlink: the symlink goes, never what it points at.
TEST_P(BreakoutTest, WhiteoutOfASymlinkRemovesOnlyTheLink) {
  TarBuilder lower;
  lower.symlink("escape", canary_abs())
      .symlink("rel", "../canary")
      .symlink("file", canary_abs() + "/hello");
  apply_ok(lower);
  TarBuilder upper;
  upper.whiteout("escape").whiteout("rel").whiteout("file");
  apply_ok(upper);
  EXPECT_FALSE(exists_nofollow(root_ / "escape"));
  EXPECT_FALSE(exists_nofollow(root_ / "rel"));
  EXPECT_FALSE(exists_nofollow(root_ / "file"));
}

// moby TestUntarInvalidFilenames and absolute names.
TEST_P(BreakoutTest, EntryNamesWithDotDotOrAbsolute) {
  TarBuilder tar;
  tar.file("../pwned", "1")
      .file("../../pwned", "2")
      .file("/../canary/pwned", "3")
      .file("../canary/hello", "4")
      .file(canary_abs() + "/hello", "5")
      .file("a/../../../pwned2", "6")
      .dir("../canary/sub", 0777)
      .symlink("../canary/link", "/")
      .hardlink("../canary/linked", "pwned")
      .node("../canary/fifo", AE_IFIFO, 0666);
  apply_ok(tar);
  EXPECT_EQ(slurp(root_ / "pwned"), "2");
  EXPECT_EQ(slurp(root_ / "canary/pwned"), "3");
  EXPECT_EQ(slurp(root_ / "canary/hello"), "4");
  EXPECT_EQ(slurp(in_root(canary_abs()) / "hello"), "5");
  EXPECT_EQ(slurp(root_ / "pwned2"), "6");
  EXPECT_EQ(slurp(root_ / "canary/linked"), "2");
}

// containerd SymlinkOverrideDirectory / DirectoryOverrideSymlink.
TEST_P(BreakoutTest, DirectoryEntryOverASymlinkReplacesIt) {
  TarBuilder lower;
  lower.symlink("escape", "../canary").symlink("abs", canary_abs() + "/sub");
  apply_ok(lower);
  TarBuilder upper;
  upper.dir("escape", 0777)
      .dir("abs/", 0777, [](archive_entry* e) {
        archive_entry_set_uid(e, 999);
        archive_entry_set_mtime(e, 5, 0);
        archive_entry_xattr_add_entry(e, "user.evil", "1", 1);
      })
      .file("escape/new", "x");
  apply_ok(upper);
  EXPECT_TRUE(S_ISDIR(lstat_of(root_ / "escape").st_mode));
  EXPECT_TRUE(S_ISDIR(lstat_of(root_ / "abs").st_mode));
  EXPECT_EQ(lstat_of(root_ / "abs").st_mode & 07777, 0777u);
  EXPECT_EQ(slurp(root_ / "escape/new"), "x");
}

// A directory whose mode and times wait for the end of the layer, replaced meanwhile by a
// symlink to the host: the deferred chmod must not follow it.
TEST_P(BreakoutTest, DeferredDirectoryMetadataDoesNotFollowALaterSymlink) {
  TarBuilder tar;
  tar.dir("d", 0777, [](archive_entry* e) { archive_entry_set_mtime(e, 7, 0); })
      .dir("e/f", 0777)
      .symlink("d", canary_abs())
      .whiteout("e")
      .symlink("e", "../canary/sub");
  apply_ok(tar);
  EXPECT_TRUE(S_ISLNK(lstat_of(root_ / "d").st_mode));
  EXPECT_TRUE(S_ISLNK(lstat_of(root_ / "e").st_mode));
}

// moby "try removing victim directory": a file entry over a symlink to the host.
TEST_P(BreakoutTest, FileOverASymlinkToAHostFileReplacesTheLink) {
  TarBuilder lower;
  lower.symlink("target", canary_abs() + "/hello")
      .symlink("rel", "../canary/hello")
      .symlink("dirlink", "../canary");
  apply_ok(lower);
  TarBuilder upper;
  upper.file("target", "replaced").file("rel", "replaced", 0777).file("dirlink", "replaced");
  apply_ok(upper);
  EXPECT_EQ(slurp(root_ / "target"), "replaced");
  EXPECT_TRUE(S_ISREG(lstat_of(root_ / "rel").st_mode));
  EXPECT_TRUE(S_ISREG(lstat_of(root_ / "dirlink").st_mode));
}

TEST_P(BreakoutTest, DevicesThroughASymlinkStayInside) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root";
  TarBuilder tar;
  tar.symlink("escape", "../canary")
      .node("escape/null", AE_IFCHR, 0666, makedev(1, 3))
      .node("escape/hello", AE_IFBLK, 0666, makedev(7, 0));
  apply_ok(tar);
  EXPECT_TRUE(S_ISCHR(lstat_of(root_ / "canary/null").st_mode));
  EXPECT_TRUE(S_ISBLK(lstat_of(root_ / "canary/hello").st_mode));
}

TEST_P(BreakoutTest, SymlinkLoopsFailInside) {
  TarBuilder tar;
  tar.symlink("loop", "loop").symlink("a", "b").symlink("b", "a").file("loop/x", "x");
  apply_fails(tar, ErrorCode::kCorrupt);
  TarBuilder other;
  other.file("a/x", "x");
  apply_fails(other, ErrorCode::kCorrupt);
}

INSTANTIATE_TEST_SUITE_P(Breakout, BreakoutTest,
                         ::testing::Values(ResolveMode::kOpenat2, ResolveMode::kWalk),
                         [](const auto& info) {
                           return info.param == ResolveMode::kOpenat2 ? "Openat2" : "Walk";
                         });

}  // namespace
}  // namespace imgpull::unpack
