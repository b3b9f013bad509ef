#include "remote/registry.h"

#include <gtest/gtest.h>

namespace imgpull {
namespace {

TEST(RegistryErrorText, MessagesOfTheErrorDocument) {
  EXPECT_EQ(registry_error_text(404, R"({"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown"}]})"),
            "manifest unknown");
  EXPECT_EQ(registry_error_text(401, R"({"errors":[{"code":"UNAUTHORIZED"},{"message":"b"}]})"),
            "UNAUTHORIZED; b");
  EXPECT_EQ(registry_error_text(404, "<html>not json</html>"), "not found");
  EXPECT_EQ(registry_error_text(500, ""), "HTTP 500");
  EXPECT_EQ(registry_error_text(429, R"({"errors":[]})"), "too many requests");
}

// json::value("message", "") threw nlohmann::json::type_error (std::terminate)
// when a registry's error document had a non-string message or code.
TEST(RegistryErrorTextRegression, NonStringMembersAreIgnoredNotThrown) {
  EXPECT_EQ(registry_error_text(403, R"({"errors":[{"code":1,"message":null}]})"), "denied");
  EXPECT_EQ(registry_error_text(404, R"({"errors":[{"message":["x"]},{"code":"NAME_UNKNOWN","message":{}}]})"),
            "NAME_UNKNOWN");
  EXPECT_EQ(registry_error_text(502, R"({"errors":[{"message":1.5},"x",null]})"), "HTTP 502");
}

}  // namespace
}  // namespace imgpull
