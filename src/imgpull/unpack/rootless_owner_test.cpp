#include "unpack/rootless_owner.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/xattr.h>

#include "testing/layers.h"
#include "unpack/warnings.h"

namespace imgpull::unpack {
namespace {

using testing::TempDir;

std::string hex(std::string_view bytes) {
  static const char kDigits[] = "0123456789abcdef";
  std::string out;
  for (unsigned char c : bytes) {
    out.push_back(kDigits[c >> 4]);
    out.push_back(kDigits[c & 15]);
  }
  return out;
}

// The values umoci's own test (test/pack_mapping.bats) reads back with getfattr
// after `umoci unpack --rootless`.
TEST(RootlessOwner, EncodesAsUmociDoes) {
  EXPECT_EQ(hex(encode_rootless_owner(992, 123)), "08e007107b");
  EXPECT_EQ(hex(encode_rootless_owner(0, 456)), "08ffffffff0f10c803");
  EXPECT_EQ(hex(encode_rootless_owner(98, 0)), "086210ffffffff0f");
  EXPECT_EQ(hex(encode_rootless_owner(492, 218)), "08ec0310da01");
  EXPECT_EQ(hex(encode_rootless_owner(123, 456)), "087b10c803");
  EXPECT_EQ(hex(encode_rootless_owner(33, 33)), "08211021");
}

TEST(RootlessOwner, RootNeedsNoRecord) { EXPECT_EQ(encode_rootless_owner(0, 0), ""); }

TEST(RootlessOwner, VarintsUpToTheLargestId) {
  // 0xFFFFFFFE: five 7-bit groups.
  EXPECT_EQ(hex(encode_rootless_owner(0xFFFFFFFE, 1)), "08feffffff0f1001");
  EXPECT_EQ(hex(encode_rootless_owner(127, 128)), "087f108001");
}

std::string read_record(int fd) {
  char buf[64];
  ssize_t n = fgetxattr(fd, kRootlessOwnerXattr.data(), buf, sizeof buf);
  return n < 0 ? "<" + std::string(std::strerror(errno)) + ">" : std::string(buf, n);
}

class RecordTest : public ::testing::Test {
 protected:
  UniqueFd make_file(const std::string& name, mode_t mode) {
    UniqueFd fd(openat(dir_fd_.get(), name.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode));
    EXPECT_TRUE(fd) << std::strerror(errno);
    fchmod(fd.get(), mode);
    return fd;
  }
  TempDir dir_{"record"};
  UniqueFd dir_fd_ = dir_.open();
};

TEST_F(RecordTest, SetsReplacesAndRemoves) {
  UniqueFd fd = make_file("f", 0644);
  std::string name = "f";
  Node node{dir_fd_.get(), name, fd.get()};
  ASSERT_TRUE(record_owner(node, 33, 33, false).ok());
  EXPECT_EQ(read_record(fd.get()), encode_rootless_owner(33, 33));
  ASSERT_TRUE(record_owner(node, 0, 0, /*replace=*/false).ok());
  EXPECT_EQ(read_record(fd.get()), encode_rootless_owner(33, 33)) << "a new node has nothing to remove";
  ASSERT_TRUE(record_owner(node, 0, 0, /*replace=*/true).ok());
  EXPECT_EQ(read_record(fd.get()), "<" + std::string(std::strerror(ENODATA)) + ">");
  ASSERT_TRUE(record_owner(node, 0, 0, /*replace=*/true).ok()) << "nothing to remove is fine";
}

TEST_F(RecordTest, ReadOnlyFileKeepsItsMode) {
  UniqueFd fd = make_file("ro", 0444);
  std::string name = "ro";
  Node node{dir_fd_.get(), name, fd.get()};
  ASSERT_TRUE(record_owner(node, 7, 0, false).ok());
  EXPECT_EQ(read_record(fd.get()), encode_rootless_owner(7, 0));
  struct stat st;
  ASSERT_EQ(fstat(fd.get(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0444u);
}

// What an unprivileged user meets: without CAP_FOWNER/DAC override, a user.* xattr
// on a file without the owner write bit is refused (EACCES) even to its owner.
TEST_F(RecordTest, ReadOnlyFileOfAnUnprivilegedUser) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root to become another user";
  constexpr uid_t kNobody = 65534;
  UniqueFd fd = make_file("ro", 0444);
  ASSERT_EQ(fchown(fd.get(), kNobody, kNobody), 0);
  std::string name = "ro";
  Node node{dir_fd_.get(), name, fd.get()};
  EXPECT_EXIT(
      {
        if (setresgid(kNobody, kNobody, kNobody) != 0 || setresuid(kNobody, kNobody, kNobody) != 0) _exit(2);
        if (fsetxattr(fd.get(), "user.probe", "x", 1, 0) == 0 || errno != EACCES) _exit(3);
        _exit(record_owner(node, 7, 8, false).ok() ? 0 : 1);
      },
      ::testing::ExitedWithCode(0), "");
  EXPECT_EQ(read_record(fd.get()), encode_rootless_owner(7, 8));
  struct stat st;
  ASSERT_EQ(fstat(fd.get(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0444u);
}

TEST(UnappliedTally, SaysNothingWhenNothingHappened) {
  UnappliedTally tally;
  EXPECT_FALSE(tally.summary().has_value());
}

TEST(UnappliedTally, OneLineWithCountsAndReasons) {
  UnappliedTally tally;
  for (int i = 0; i < 3; ++i) tally.owner_recorded();
  tally.unapplied("device node", "empty files in their place");
  tally.unapplied("device node", "ignored: said once");
  tally.unapplied("symlink owner", "no xattrs there");
  tally.unapplied("symlink owner", "no xattrs there");
  tally.unapplied("fifo owner", "no xattrs there");
  tally.unapplied("security.capability xattr");
  EXPECT_EQ(*tally.summary(),
            "not running as root: the image's owners of 3 entries kept in user.rootlesscontainers "
            "only; not applied: 2 device nodes (empty files in their place), 1 fifo owner and 2 symlink "
            "owners (no xattrs there), 1 security.capability xattr");
  UnappliedTally owners_only;
  owners_only.owner_recorded();
  EXPECT_EQ(*owners_only.summary(),
            "not running as root: the image's owners of 1 entry kept in user.rootlesscontainers only");
}

TEST(Warnings, UnappliedGoesToTheTallyOrIsSaidOnce) {
  std::vector<std::string> said;
  auto sink = [&](std::string_view w) { said.emplace_back(w); };
  Warnings plain(sink);
  plain.unapplied("device node", "why", "skipping devices");
  plain.unapplied("device node", "why", "skipping devices");
  EXPECT_EQ(said, std::vector<std::string>{"skipping devices"});
  UnappliedTally tally;
  Warnings counted(sink, &tally);
  counted.unapplied("device node", "why", "skipping devices");
  EXPECT_EQ(said.size(), 1u) << "counted, not said";
  EXPECT_NE(tally.summary()->find("1 device node (why)"), std::string::npos) << *tally.summary();
}

}  // namespace
}  // namespace imgpull::unpack
