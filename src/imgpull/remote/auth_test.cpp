#include "remote/auth.h"

#include <gtest/gtest.h>

namespace imgpull {
namespace {

std::vector<Challenge> challenges(std::string_view header) {
  auto parsed = parse_www_authenticate(header);
  EXPECT_TRUE(parsed.ok());
  return parsed.ok() ? *parsed : std::vector<Challenge>{};
}

CredentialLookup fixed(std::optional<Credentials> creds, int* calls) {
  return [creds, calls](std::string_view) -> Result<std::optional<Credentials>> {
    ++*calls;
    return creds;
  };
}

TEST(Auth, NoChallengeNeedsNoHeader) {
  http::Client client;
  int calls = 0;
  Authenticator auth(client, "example.com", fixed(std::nullopt, &calls), false);
  auto header = auth.authorization("repository:x:pull");
  ASSERT_TRUE(header.ok());
  EXPECT_FALSE(header->has_value());
  EXPECT_EQ(calls, 0) << "credentials are looked up only when a registry asks";
}

TEST(Auth, BasicSendsCredentialsAndLooksThemUpOnce) {
  http::Client client;
  int calls = 0;
  Authenticator auth(client, "example.com", fixed(Credentials{"alice", "wonderland", ""}, &calls), false);
  auth.set_challenges(challenges(R"(Basic realm="registry")"));
  for (int i = 0; i < 3; ++i) {
    auto header = auth.authorization("repository:x:pull");
    ASSERT_TRUE(header.ok()) << header.error().message();
    EXPECT_EQ(**header, "Basic YWxpY2U6d29uZGVybGFuZA==");
  }
  EXPECT_EQ(calls, 1);
}

TEST(Auth, BasicWithoutCredentialsSaysToLogIn) {
  http::Client client;
  int calls = 0;
  Authenticator auth(client, "example.com:5000", fixed(std::nullopt, &calls), false);
  auth.set_challenges(challenges(R"(Basic realm="registry")"));
  auto header = auth.authorization("repository:x:pull");
  ASSERT_FALSE(header.ok());
  EXPECT_EQ(header.error().code(), ErrorCode::kUnauthorized);
  EXPECT_NE(header.error().message().find("example.com:5000"), std::string::npos);
  EXPECT_NE(header.error().message().find("login"), std::string::npos);
}

TEST(Auth, PlainHttpRealmIsRefusedForAnHttpsRegistry) {
  http::Client client;
  int calls = 0;
  Authenticator auth(client, "example.com", fixed(Credentials{"alice", "pw", ""}, &calls), false);
  auth.set_challenges(challenges(R"(Bearer realm="http://127.0.0.1:1/token",service="s")"));
  auto header = auth.authorization("repository:x:pull");
  ASSERT_FALSE(header.ok());
  EXPECT_EQ(header.error().code(), ErrorCode::kUnauthorized);
  EXPECT_NE(header.error().message().find("plain http"), std::string::npos) << header.error().message();
  EXPECT_EQ(header.error().message().find("pw"), std::string::npos);
}

TEST(Auth, PlainHttpRealmIsTriedForAPlainHttpRegistry) {
  http::Client client;
  int calls = 0;
  Authenticator auth(client, "127.0.0.1:5000", fixed(std::nullopt, &calls), true);
  // Port 1: nothing listens, so the attempt fails at the connection, which
  // shows the realm was allowed.
  auth.set_challenges(challenges(R"(Bearer realm="http://127.0.0.1:1/token",service="s")"));
  auto header = auth.authorization("repository:x:pull");
  ASSERT_FALSE(header.ok());
  EXPECT_EQ(header.error().code(), ErrorCode::kUnavailable) << header.error().message();
  EXPECT_NE(header.error().message().find("getting a token from http://127.0.0.1:1/token"), std::string::npos);
}

TEST(Auth, RealmMustBeAnHttpUrl) {
  http::Client client;
  int calls = 0;
  Authenticator auth(client, "example.com", fixed(std::nullopt, &calls), true);
  auth.set_challenges(challenges(R"(Bearer realm="file:///etc/passwd",service="s")"));
  auto header = auth.authorization("repository:x:pull");
  ASSERT_FALSE(header.ok());
  EXPECT_NE(header.error().message().find("not an http(s) URL"), std::string::npos);
}

TEST(Auth, UnknownSchemeIsUnsupported) {
  http::Client client;
  int calls = 0;
  Authenticator auth(client, "example.com", fixed(std::nullopt, &calls), false);
  auth.set_challenges(challenges("Negotiate"));
  auto header = auth.authorization("repository:x:pull");
  ASSERT_FALSE(header.ok());
  EXPECT_EQ(header.error().code(), ErrorCode::kUnsupported);
}

TEST(Auth, Base64) {
  EXPECT_EQ(base64_encode(""), "");
  EXPECT_EQ(base64_encode("f"), "Zg==");
  EXPECT_EQ(base64_encode("fo"), "Zm8=");
  EXPECT_EQ(base64_encode("foo"), "Zm9v");
  EXPECT_EQ(base64_encode("user:pa:ss"), "dXNlcjpwYTpzcw==");
}

// parse_token_response: what a token server's 200 answer gives.
TEST(TokenResponse, TokenAndLifetime) {
  auto t = parse_token_response(R"({"token":"abc","access_token":"xyz","expires_in":300})");
  ASSERT_TRUE(t.ok()) << t.error().message();
  EXPECT_EQ(t->token, "abc");
  EXPECT_EQ(t->lifetime, std::chrono::seconds(300));
  t = parse_token_response(R"({"access_token":"xyz"})");
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(t->token, "xyz");
  EXPECT_EQ(t->lifetime, kDefaultTokenLifetime);
  for (const char* bad : {"", "null", "[]", R"({"token":""})", R"({"token":1})", "{"}) {
    auto r = parse_token_response(bad);
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_EQ(r.error().code(), ErrorCode::kCorrupt);
  }
}

// A huge expires_in overflowed the expiry arithmetic (undefined behaviour);
// lifetimes are now clamped, and odd ones fall back to the default.
TEST(TokenResponseRegression, HugeOrOddExpiresInIsClamped) {
  auto huge = parse_token_response(R"({"token":"t","expires_in":9223372036854775807})");
  ASSERT_TRUE(huge.ok());
  EXPECT_EQ(huge->lifetime, kMaxTokenLifetime);
  auto above = parse_token_response(R"({"token":"t","expires_in":18446744073709551615})");
  ASSERT_TRUE(above.ok());
  EXPECT_GT(above->lifetime.count(), 0);
  EXPECT_LE(above->lifetime, kMaxTokenLifetime);
  for (const char* odd : {"-5", "0", "1.5e300", "\"300\"", "null"}) {
    auto r = parse_token_response(std::string(R"({"token":"t","expires_in":)") + odd + "}");
    ASSERT_TRUE(r.ok()) << odd;
    EXPECT_EQ(r->lifetime, kDefaultTokenLifetime) << odd;
  }
}

TEST(TokenErrorText, WhatTheServerSaid) {
  EXPECT_EQ(token_error_text(401, R"({"details":"incorrect username or password"})"),
            "incorrect username or password");
  EXPECT_EQ(token_error_text(400, R"({"error":"invalid_grant","error_description":"expired"})"), "expired");
  EXPECT_EQ(token_error_text(403, R"({"errors":[{"code":"DENIED","message":"banned"}]})"), "\"banned\"");
  EXPECT_EQ(token_error_text(503, "<html>"), "HTTP 503");
}

// errors[0].message was dump()ed whatever its type; a deeply nested one
// overflowed the stack. Only a string message is used now.
TEST(TokenErrorTextRegression, NestedMessageIsNotSerialised) {
  std::string deep = std::string(300'000, '[') + std::string(300'000, ']');
  EXPECT_EQ(token_error_text(401, R"({"errors":[{"message":)" + deep + "}]}"), "HTTP 401");
  EXPECT_EQ(token_error_text(401, R"({"errors":[{"message":{"a":1}}]})"), "HTTP 401");
}

}  // namespace
}  // namespace imgpull
