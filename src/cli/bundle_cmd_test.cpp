#include "bundle_cmd.h"

#include <gtest/gtest.h>

namespace imgpull::cli {
namespace {

TEST(BundleCmd, JsonArrayOfStrings) {
  EXPECT_EQ(*parse_bundle_cmd(R"(["nginx", "-g", "daemon off;"])"),
            (std::vector<std::string>{"nginx", "-g", "daemon off;"}));
  EXPECT_EQ(*parse_bundle_cmd("[]"), std::vector<std::string>{}) << "nothing after the Entrypoint";
  EXPECT_EQ(*parse_bundle_cmd(R"([" spaced \"quoted\" "])"), std::vector<std::string>{" spaced \"quoted\" "});
}

TEST(BundleCmd, AnythingElseIsRefusedWithAnExample) {
  for (const char* text : {"echo hi", "", "\"echo\"", "[1]", R"(["a", null])", "{}", "[\"unterminated"}) {
    auto cmd = parse_bundle_cmd(text);
    ASSERT_FALSE(cmd.ok()) << text;
    EXPECT_EQ(cmd.error().code(), ErrorCode::kInvalidArgument);
    EXPECT_NE(cmd.error().message().find("JSON array of strings"), std::string::npos);
    EXPECT_NE(cmd.error().message().find("daemon off;"), std::string::npos);
  }
}

}  // namespace
}  // namespace imgpull::cli
