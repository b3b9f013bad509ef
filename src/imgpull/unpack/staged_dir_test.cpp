#include "unpack/staged_dir.h"

#include <fcntl.h>
#include <grp.h>
#include <gtest/gtest.h>
#include <sched.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <functional>
#include <sstream>
#include <string>
#include <vector>

#include "testing/layers.h"

namespace imgpull {
namespace {

namespace fs = std::filesystem;
using unpack::testing::TempDir;

// An unprivileged user for the non-root checks when the tests run as root.
constexpr uid_t kNobody = 65534;

StagedDirOptions recorded(const fs::path& records) {
  StagedDirOptions options;
  options.records = records;
  return options;
}

StagedDirOptions replacing(const fs::path& records = {}) {
  StagedDirOptions options = recorded(records);
  options.replace = true;
  return options;
}

std::string read_text(const fs::path& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

bool write_at(int dir_fd, const char* name, const std::string& content) {
  UniqueFd fd(openat(dir_fd, name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644));
  return fd && ::write(fd.get(), content.data(), content.size()) == static_cast<ssize_t>(content.size());
}

// What an image leaves that a non-root user cannot simply rm: a 0555
// directory with a file in it, and a 0000 one.
bool write_read_only_tree(int dir_fd) {
  if (mkdirat(dir_fd, "ro", 0755) != 0 || mkdirat(dir_fd, "locked", 0755) != 0) return false;
  UniqueFd ro(openat(dir_fd, "ro", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  UniqueFd locked(openat(dir_fd, "locked", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  return ro && locked && write_at(ro.get(), "file", "read-only\n") && mkdirat(ro.get(), "sub", 0555) == 0 &&
         write_at(locked.get(), "file", "locked\n") && fchmod(ro.get(), 0555) == 0 && fchmod(locked.get(), 0) == 0;
}

// The staging directories beside `target` (its kind only).
std::vector<std::string> staging_beside(const fs::path& target) {
  std::vector<std::string> found;
  std::string prefix = "." + target.filename().string() + ".imgpull-staging-";
  for (const auto& entry : fs::directory_iterator(target.parent_path())) {
    std::string name = entry.path().filename().string();
    if (name.starts_with(prefix)) found.push_back(name);
  }
  return found;
}

std::vector<std::string> names_in(const fs::path& dir) {
  std::vector<std::string> names;
  if (!fs::exists(dir)) return names;
  for (const auto& entry : fs::directory_iterator(dir)) names.push_back(entry.path().filename().string());
  std::sort(names.begin(), names.end());
  return names;
}

mode_t mode_of(const fs::path& path) {
  struct stat st {};
  return ::lstat(path.c_str(), &st) == 0 ? st.st_mode & 07777 : 0;
}

// Runs `child` in a forked process and returns its exit status (what a
// check in it found: 0 for all well), or -signal. Used for a process that
// dies holding a staging directory, for one that holds it while this one
// looks, and for checks that must run as another user or in a mount namespace.
int in_child(const std::function<int()>& child) {
  pid_t pid = fork();
  if (pid == 0) _exit(child());
  int status = 0;
  waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -WTERMSIG(status);
}

// A run killed while it made `target`: its staging directory stays, with a
// read-only tree and a file of `bytes` bytes in it.
int killed_run(const fs::path& target, const fs::path& records, size_t bytes = 5) {
  return in_child([&] {
    auto out = StagedDir::begin(target, recorded(records));
    if (!out || !write_read_only_tree(out->fd()) || !write_at(out->fd(), "data", std::string(bytes, 'x'))) return 1;
    ::kill(::getpid(), SIGKILL);
    return 2;
  });
}

TEST(StagedDir, TheTargetAppearsOnlyAtCommitWithWhatWasWritten) {
  TempDir box("staged");
  fs::path target = box.path() / "rootfs";
  fs::path records = box.path() / "records";
  auto out = StagedDir::begin(target, recorded(records));
  ASSERT_TRUE(out) << out.error().message();
  EXPECT_EQ(out->target(), target);
  EXPECT_EQ(out->path().parent_path(), box.path()) << "made beside the target, on its filesystem";
  ASSERT_TRUE(write_at(out->fd(), "hello", "hi\n"));
  ASSERT_EQ(mkdirat(out->fd(), "rootfs", 0755), 0) << "a caller may make the tree in a subdirectory";
  EXPECT_FALSE(fs::exists(target));
  ASSERT_EQ(names_in(records).size(), 1u);
  EXPECT_EQ(read_text(records / names_in(records)[0]), out->path().string());

  Status committed = out->commit();
  ASSERT_TRUE(committed.ok()) << committed.error().message();
  EXPECT_EQ(read_text(target / "hello"), "hi\n");
  EXPECT_TRUE(fs::is_directory(target / "rootfs"));
  mode_t mask = ::umask(0);
  ::umask(mask);
  EXPECT_EQ(mode_of(target), 0755 & ~mask) << "as mkdir DIR makes it";
  EXPECT_EQ(staging_beside(target), std::vector<std::string>{});
  EXPECT_EQ(names_in(records), std::vector<std::string>{});
}

TEST(StagedDir, WithoutCommitNothingIsLeft) {
  TempDir box("staged");
  fs::path target = box.path() / "rootfs";
  fs::path records = box.path() / "records";
  {
    auto out = StagedDir::begin(target, recorded(records));
    ASSERT_TRUE(out) << out.error().message();
    ASSERT_TRUE(write_read_only_tree(out->fd()));
  }
  EXPECT_FALSE(fs::exists(target));
  EXPECT_EQ(staging_beside(target), std::vector<std::string>{});
  EXPECT_EQ(names_in(records), std::vector<std::string>{});
}

TEST(StagedDir, AnEmptyTargetIsReplacedKeepingItsMode) {
  TempDir box("staged");
  fs::path target = box.path() / "rootfs";
  ASSERT_EQ(::mkdir(target.c_str(), 0700), 0);
  ASSERT_EQ(::chmod(target.c_str(), 0710), 0);
  auto out = StagedDir::begin(target, {});
  ASSERT_TRUE(out) << out.error().message();
  ASSERT_TRUE(write_at(out->fd(), "f", "new\n"));
  Status committed = out->commit();
  ASSERT_TRUE(committed.ok()) << committed.error().message();
  EXPECT_EQ(names_in(target), std::vector<std::string>{"f"});
  EXPECT_EQ(mode_of(target), 0710u);
}

TEST(StagedDir, ANonEmptyTargetIsRefusedUnlessReplacing) {
  TempDir box("staged");
  fs::path target = box.path() / "rootfs";
  fs::create_directories(target / "mine");
  auto out = StagedDir::begin(target, {});
  ASSERT_FALSE(out);
  EXPECT_EQ(out.error().code(), ErrorCode::kInvalidArgument);
  EXPECT_NE(out.error().message().find(target.string() + " is not empty; use --force"), std::string::npos)
      << out.error().message();
  EXPECT_EQ(names_in(box.path()), std::vector<std::string>{"rootfs"}) << "nothing made beside it";
  EXPECT_EQ(names_in(target), std::vector<std::string>{"mine"});
}

TEST(StagedDir, ReplaceSwapsTheNewTreeInAndRemovesTheOld) {
  TempDir box("staged");
  fs::path target = box.path() / "rootfs";
  fs::path records = box.path() / "records";
  fs::create_directories(target / "old" / "deep");
  ASSERT_EQ(::chmod(target.c_str(), 0750), 0);
  UniqueFd old(::open(target.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  ASSERT_TRUE(write_read_only_tree(old.get()));
  auto out = StagedDir::begin(target, replacing(records));
  ASSERT_TRUE(out) << out.error().message();
  ASSERT_TRUE(write_at(out->fd(), "new", "new\n"));
  EXPECT_TRUE(fs::exists(target / "old")) << "the old tree stays until commit";
  Status committed = out->commit();
  ASSERT_TRUE(committed.ok()) << committed.error().message();
  EXPECT_EQ(names_in(target), std::vector<std::string>{"new"});
  EXPECT_EQ(mode_of(target), 0750u);
  EXPECT_EQ(staging_beside(target), std::vector<std::string>{}) << "the old tree is removed";
  EXPECT_EQ(names_in(records), std::vector<std::string>{});
}

TEST(StagedDir, ReplaceNeverTakesAProtectedDirectoryOrRoot) {
  TempDir box("staged");
  fs::path home = box.path() / "home";
  fs::create_directories(home / "me" / "store");
  std::ofstream(home / "me" / "store" / "index.json") << "{}";
  StagedDirOptions options = replacing();
  options.protect = {home / "me" / "store"};
  for (const fs::path& target : {home, home / "me", home / "me" / "store"}) {
    auto out = StagedDir::begin(target, options);
    ASSERT_FALSE(out) << target;
    EXPECT_NE(out.error().message().find("that would delete " + (home / "me" / "store").string()), std::string::npos)
        << out.error().message();
  }
  EXPECT_TRUE(fs::is_directory(home / "me" / "store"));
  EXPECT_EQ(names_in(home), std::vector<std::string>{"me"});
  auto root = StagedDir::begin("/", options);
  ASSERT_FALSE(root);
  EXPECT_NE(root.error().message().find("it has no parent"), std::string::npos) << root.error().message();
}

TEST(StagedDir, CommitLeavesATargetFilledMeanwhileAlone) {
  TempDir box("staged");
  fs::path target = box.path() / "rootfs";
  auto out = StagedDir::begin(target, {});
  ASSERT_TRUE(out) << out.error().message();
  ASSERT_TRUE(write_at(out->fd(), "mine", "staged\n"));
  fs::create_directories(target);
  std::ofstream(target / "theirs") << "theirs\n";
  Status committed = out->commit();
  ASSERT_FALSE(committed.ok());
  EXPECT_NE(committed.error().message().find("was filled by something else"), std::string::npos)
      << committed.error().message();
  EXPECT_EQ(names_in(target), std::vector<std::string>{"theirs"});
}

TEST(StagedDir, ATargetThatIsNotADirectoryIsRefused) {
  TempDir box("staged");
  fs::path target = box.path() / "file";
  std::ofstream(target) << "x";
  auto out = StagedDir::begin(target, replacing());
  ASSERT_FALSE(out);
  EXPECT_NE(out.error().message().find("is not a directory"), std::string::npos) << out.error().message();
  EXPECT_EQ(read_text(target), "x");
}

TEST(StagedDir, ASymlinkedTargetIsMadeWhereTheLinkPoints) {
  TempDir box("staged");
  fs::create_directories(box.path() / "real");
  fs::create_directory_symlink("real", box.path() / "link");
  auto out = StagedDir::begin(box.path() / "link", {});
  ASSERT_TRUE(out) << out.error().message();
  EXPECT_EQ(out->target(), box.path() / "real");
  ASSERT_TRUE(write_at(out->fd(), "f", ""));
  ASSERT_TRUE(out->commit().ok());
  EXPECT_TRUE(fs::is_symlink(box.path() / "link"));
  EXPECT_TRUE(fs::exists(box.path() / "link" / "f"));
}

TEST(StagedDir, TheNextRunRemovesWhatAKilledOneLeft) {
  TempDir box("staged");
  fs::path target = box.path() / "rootfs";
  fs::path records = box.path() / "records";
  ASSERT_EQ(killed_run(target, records), -SIGKILL);
  ASSERT_EQ(staging_beside(target).size(), 1u) << "a killed run leaves its staging directory";
  EXPECT_FALSE(fs::exists(target));
  ASSERT_EQ(names_in(records).size(), 1u);

  auto out = StagedDir::begin(target, recorded(records));
  ASSERT_TRUE(out) << out.error().message();
  EXPECT_EQ(staging_beside(target), std::vector<std::string>{out->path().filename().string()});
  EXPECT_EQ(names_in(records).size(), 1u) << "the dead one's record goes with it";
  ASSERT_TRUE(out->commit().ok());
  EXPECT_EQ(staging_beside(target), std::vector<std::string>{});
}

TEST(StagedDir, ALiveStagingDirectoryIsLeftAlone) {
  TempDir box("staged");
  fs::path target = box.path() / "rootfs";
  fs::path records = box.path() / "records";
  // Held by this process (another descriptor's lock conflicts all the same).
  auto first = StagedDir::begin(target, recorded(records));
  ASSERT_TRUE(first) << first.error().message();
  auto second = StagedDir::begin(target, recorded(records));
  ASSERT_TRUE(second) << second.error().message();
  EXPECT_TRUE(fs::is_directory(first->path()));
  auto pruned = remove_dead_staged_dirs(records);
  ASSERT_TRUE(pruned) << pruned.error().message();
  EXPECT_TRUE(pruned->empty());
  EXPECT_EQ(names_in(records).size(), 2u);
  // Both finish: the first to commit wins, the second is refused.
  ASSERT_TRUE(write_at(second->fd(), "second", ""));
  ASSERT_TRUE(second->commit().ok());
  Status late = first->commit();
  EXPECT_FALSE(late.ok());
  EXPECT_EQ(names_in(target), std::vector<std::string>{"second"});
}

TEST(StagedDir, AStagingDirectoryHeldByAnotherProcessIsLeftAlone) {
  TempDir box("staged");
  fs::path target = box.path() / "rootfs";
  fs::path records = box.path() / "records";
  int ready[2], done[2];
  ASSERT_EQ(pipe(ready), 0);
  ASSERT_EQ(pipe(done), 0);
  pid_t pid = fork();
  if (pid == 0) {
    auto out = StagedDir::begin(target, recorded(records));
    char c = out ? 'y' : 'n';
    (void)!::write(ready[1], &c, 1);
    (void)!::read(done[0], &c, 1);
    _exit(0);  // no destructor: it dies holding the directory
  }
  char c = 0;
  ASSERT_EQ(::read(ready[0], &c, 1), 1);
  ASSERT_EQ(c, 'y');
  auto other = StagedDir::begin(target, recorded(records));
  ASSERT_TRUE(other) << other.error().message();
  auto pruned = remove_dead_staged_dirs(records);
  ASSERT_TRUE(pruned) << pruned.error().message();
  EXPECT_TRUE(pruned->empty()) << "held by a live process";
  EXPECT_EQ(staging_beside(target).size(), 2u);

  ASSERT_EQ(::write(done[1], "x", 1), 1);
  waitpid(pid, nullptr, 0);
  pruned = remove_dead_staged_dirs(records);
  ASSERT_TRUE(pruned) << pruned.error().message();
  ASSERT_EQ(pruned->size(), 1u) << "dead now";
  EXPECT_NE(pruned->front().path, other->path());
  EXPECT_EQ(staging_beside(target), std::vector<std::string>{other->path().filename().string()});
  EXPECT_EQ(names_in(records).size(), 1u);
  for (int fd : {ready[0], ready[1], done[0], done[1]}) ::close(fd);
}

TEST(StagedDir, PruneRemovesDeadOnesAndDropsRecordsOfNothing) {
  TempDir box("staged");
  fs::path records = box.path() / "records";
  ASSERT_EQ(killed_run(box.path() / "a", records, 1000), -SIGKILL);
  ASSERT_EQ(killed_run(box.path() / "b", records, 24), -SIGKILL);
  fs::path left_a = box.path() / staging_beside(box.path() / "a").at(0);
  // A record whose directory is gone, and one cut short by a crash.
  std::ofstream(records / "0123456789abcdef") << (box.path() / ".c.imgpull-staging-0123456789abcdef").string();
  std::ofstream(records / "fedcba9876543210") << box.path().string();
  auto pruned = remove_dead_staged_dirs(records);
  ASSERT_TRUE(pruned) << pruned.error().message();
  ASSERT_EQ(pruned->size(), 2u);
  auto a = std::find_if(pruned->begin(), pruned->end(), [&](const auto& r) { return r.path == left_a; });
  ASSERT_NE(a, pruned->end());
  EXPECT_EQ(a->bytes, 1000u + 10 + 7) << "data + ro/file + locked/file";
  EXPECT_EQ(names_in(box.path()), std::vector<std::string>{"records"});
  EXPECT_EQ(names_in(records), std::vector<std::string>{});
}

// Images have 0555 directories; a non-root user who made a rootfs must be
// able to have it removed. As root, the checks run in a child that becomes
// nobody; as non-root they run as the caller.
TEST(StagedDir, ReadOnlyTreesAreRemovedWithoutRoot) {
  TempDir box("staged");
  if (geteuid() == 0) {
    ASSERT_EQ(::chown(box.path().c_str(), kNobody, kNobody), 0);
  }
  fs::path target = box.path() / "rootfs";
  int status = in_child([&] {
    if (geteuid() == 0 && (setgroups(0, nullptr) != 0 || setgid(kNobody) != 0 || setuid(kNobody) != 0)) return 10;
    {
      auto out = StagedDir::begin(target, {});
      if (!out || !write_read_only_tree(out->fd())) return 11;
    }
    if (!staging_beside(target).empty()) return 12;  // an abandoned one
    if (killed_run(target, {}) != -SIGKILL || staging_beside(target).size() != 1) return 13;
    auto out = StagedDir::begin(target, {});
    if (!out || staging_beside(target).size() != 1) return 14;  // a dead one
    if (!write_read_only_tree(out->fd()) || !out->commit().ok()) return 15;
    auto again = StagedDir::begin(target, replacing());
    if (!again || !again->commit().ok()) return 16;  // the old read-only tree goes
    return staging_beside(target).empty() && names_in(target).empty() ? 0 : 17;
  });
  EXPECT_EQ(status, 0) << "10: setuid, 11: begin, 12: abandoned left, 13: kill, 14: dead left, 15: commit, "
                          "16: replace, 17: old tree left";
}

TEST(StagedDir, ALeftoverThisUserMayNotRemoveDoesNotStopTheRun) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root to make another user's leftover";
  TempDir box("staged");
  ASSERT_EQ(::chmod(box.path().c_str(), 01777), 0);  // a shared directory, like /tmp
  fs::path target = box.path() / "rootfs";
  ASSERT_EQ(killed_run(target, {}), -SIGKILL);  // root's, with a 0000 directory in it
  ASSERT_EQ(staging_beside(target).size(), 1u);
  int status = in_child([&] {
    if (setgroups(0, nullptr) != 0 || setgid(kNobody) != 0 || setuid(kNobody) != 0) return 10;
    auto out = StagedDir::begin(target, {});
    return out && out->commit().ok() ? 0 : 11;
  });
  EXPECT_EQ(status, 0) << "10: setuid, 11: the run failed";
  EXPECT_EQ(staging_beside(target).size(), 1u) << "root's leftover stays for root's next run or prune";
  EXPECT_TRUE(fs::is_directory(target));
}

TEST(StagedDir, AMountPointIsRefused) {
  if (geteuid() != 0) GTEST_SKIP() << "mounting a tmpfs needs root";
  TempDir box("staged");
  fs::path target = box.path() / "mnt";
  fs::create_directories(target);
  int status = in_child([&] {
    // A mount namespace of its own: the mount goes with the child.
    if (unshare(CLONE_NEWNS) != 0 || mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) return 2;
    if (mount("imgpull-test", target.c_str(), "tmpfs", 0, "size=1m") != 0) return 2;
    auto out = StagedDir::begin(target, replacing());
    return !out && out.error().message().find("is a mount point") != std::string::npos ? 0 : 1;
  });
  if (status == 2) GTEST_SKIP() << "cannot make a mount namespace here";
  EXPECT_EQ(status, 0);
}

}  // namespace
}  // namespace imgpull
