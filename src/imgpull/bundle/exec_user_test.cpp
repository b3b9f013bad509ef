#include "bundle/exec_user.h"

#include <gtest/gtest.h>

namespace imgpull::bundle {
namespace {

const std::string kPasswd =
    "root:x:0:0:root:/root:/bin/bash\n"
    "# a comment\n"
    "  daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin  \n"
    "www-data:x:33:33:www-data:/var/www:/usr/sbin/nologin\n"
    "broken:x:notanumber:0:x:/broken:/bin/sh\n"
    "\n"
    "short:x:77:78\n"
    "www-data:x:999:999:second entry loses:/nowhere:/bin/sh\n";
const std::string kGroup =
    "root:x:0:\n"
    "#staff:x:50:www-data\n"
    "www-data:x:33:\n"
    "audio:x:29:www-data,daemon\n"
    "video:x:44:daemon\n"
    "web:x:8080:www-data\n";

ExecUser resolve_ok(std::string_view spec, const std::optional<std::string>& passwd = kPasswd,
                    const std::optional<std::string>& group = kGroup) {
  auto user = resolve_exec_user(spec, passwd, group);
  EXPECT_TRUE(user.ok()) << spec << ": " << user.error().message();
  return user.ok() ? *user : ExecUser{};
}

TEST(Passwd, ParsesFieldsSkippingCommentsAndBrokenLines) {
  auto users = parse_passwd(kPasswd);
  ASSERT_EQ(users.size(), 5u);
  EXPECT_EQ(users[1].name, "daemon") << "surrounding space trimmed";
  EXPECT_EQ(users[2].uid, 33u);
  EXPECT_EQ(users[2].home, "/var/www");
  EXPECT_EQ(users[3].name, "short");
  EXPECT_EQ(users[3].home, "");
}

TEST(Group, ParsesMembers) {
  auto groups = parse_group(kGroup);
  ASSERT_EQ(groups.size(), 5u);
  EXPECT_TRUE(groups[0].members.empty());
  EXPECT_EQ(groups[2].members, (std::vector<std::string>{"www-data", "daemon"}));
}

TEST(ExecUser, EmptyIsRootFromPasswd) {
  ExecUser root = resolve_ok("");
  EXPECT_EQ(root.uid, 0u);
  EXPECT_EQ(root.gid, 0u);
  EXPECT_EQ(root.home, "/root");
  EXPECT_TRUE(root.additional_gids.empty());
}

TEST(ExecUser, NameTakesPasswdsGroupHomeAndSupplementaryGroups) {
  ExecUser www = resolve_ok("www-data");
  EXPECT_EQ(www.uid, 33u);
  EXPECT_EQ(www.gid, 33u);
  EXPECT_EQ(www.home, "/var/www");
  EXPECT_EQ(www.additional_gids, (std::vector<uint32_t>{29, 8080})) << "the commented-out staff is not one";
}

TEST(ExecUser, NumberIsAUidLookedUpForTheRest) {
  ExecUser daemon = resolve_ok("1");
  EXPECT_EQ(daemon.gid, 1u);
  EXPECT_EQ(daemon.home, "/usr/sbin");
  EXPECT_EQ(daemon.additional_gids, (std::vector<uint32_t>{29, 44}));
  ExecUser unknown = resolve_ok("4242");
  EXPECT_EQ(unknown.uid, 4242u);
  EXPECT_EQ(unknown.gid, 0u);
  EXPECT_EQ(unknown.home, "");
  EXPECT_TRUE(unknown.additional_gids.empty());
}

TEST(ExecUser, ExplicitGroupReplacesPrimaryAndDropsSupplementary) {
  ExecUser named = resolve_ok("www-data:video");
  EXPECT_EQ(named.uid, 33u);
  EXPECT_EQ(named.gid, 44u);
  EXPECT_TRUE(named.additional_gids.empty());
  ExecUser numeric = resolve_ok("33:5000");
  EXPECT_EQ(numeric.gid, 5000u);
  ExecUser both_numbers = resolve_ok("1000:1000");
  EXPECT_EQ(both_numbers.uid, 1000u);
  EXPECT_EQ(both_numbers.gid, 1000u);
  ExecUser root_group = resolve_ok(":audio");
  EXPECT_EQ(root_group.uid, 0u);
  EXPECT_EQ(root_group.gid, 29u);
  EXPECT_EQ(resolve_ok("www-data:44:ignored").gid, 44u) << "fields after the second are ignored, as moby does";
}

TEST(ExecUser, FirstMatchWins) { EXPECT_EQ(resolve_ok("www-data").uid, 33u); }

TEST(ExecUser, UnknownNamesAreNotFound) {
  auto no_user = resolve_exec_user("nginx", kPasswd, kGroup);
  ASSERT_FALSE(no_user.ok());
  EXPECT_EQ(no_user.error().code(), ErrorCode::kNotFound);
  EXPECT_NE(no_user.error().message().find("no user \"nginx\""), std::string::npos) << no_user.error().message();
  auto no_group = resolve_exec_user("www-data:nogroup", kPasswd, kGroup);
  ASSERT_FALSE(no_group.ok());
  EXPECT_NE(no_group.error().message().find("no group \"nogroup\""), std::string::npos);
  auto broken = resolve_exec_user("broken", kPasswd, kGroup);
  EXPECT_FALSE(broken.ok()) << "a line with a non-numeric uid is not a user";
}

TEST(ExecUser, MissingFilesLeaveOnlyNumbers) {
  ExecUser root = resolve_ok("", std::nullopt, std::nullopt);
  EXPECT_EQ(root.uid, 0u);
  EXPECT_EQ(root.home, "");
  ExecUser ids = resolve_ok("10:20", std::nullopt, std::nullopt);
  EXPECT_EQ(ids.uid, 10u);
  EXPECT_EQ(ids.gid, 20u);
  auto name = resolve_exec_user("www-data", std::nullopt, std::nullopt);
  ASSERT_FALSE(name.ok());
  EXPECT_NE(name.error().message().find("it has none"), std::string::npos) << name.error().message();
}

TEST(ExecUser, IdsOutsidePasswdMustFitSigned32Bits) {
  EXPECT_EQ(resolve_ok("2147483647").uid, 2147483647u);
  auto big = resolve_exec_user("2147483648", kPasswd, kGroup);
  ASSERT_FALSE(big.ok());
  EXPECT_EQ(big.error().code(), ErrorCode::kInvalidArgument);
  EXPECT_FALSE(resolve_exec_user("0:4294967295", kPasswd, kGroup).ok());
  EXPECT_FALSE(resolve_exec_user("-1", kPasswd, kGroup).ok()) << "not a number: a name nobody has";
}

}  // namespace
}  // namespace imgpull::bundle
