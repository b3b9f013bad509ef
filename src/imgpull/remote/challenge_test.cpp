#include "remote/challenge.h"

#include <gtest/gtest.h>

#include <ostream>
#include <string>
#include <vector>

namespace imgpull {

// Readable failures: gtest would otherwise dump Challenge as bytes.
void PrintTo(const Challenge& c, std::ostream* os) {
  *os << "{" << c.scheme;
  if (!c.token68.empty()) *os << " token68=" << c.token68;
  for (const auto& [k, v] : c.params) *os << " " << k << "=[" << v << "]";
  *os << "}";
}

namespace {

struct ValidCase {
  const char* name;
  std::string_view header;
  std::vector<Challenge> want;
};

// Challenge{scheme, params, token68}
const ValidCase kValidCases[] = {
    // What registries send (answers to GET /v2/ or to a request without a token).
    {"DockerHub",
     R"(Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/nginx:pull")",
     {{"bearer",
       {{"realm", "https://auth.docker.io/token"},
        {"service", "registry.docker.io"},
        {"scope", "repository:library/nginx:pull"}},
       ""}}},
    {"DockerHubPing", R"(Bearer realm="https://auth.docker.io/token",service="registry.docker.io")",
     {{"bearer", {{"realm", "https://auth.docker.io/token"}, {"service", "registry.docker.io"}}, ""}}},
    {"Ghcr", R"(Bearer realm="https://ghcr.io/token",service="ghcr.io",scope="repository:user/image:pull")",
     {{"bearer",
       {{"realm", "https://ghcr.io/token"}, {"service", "ghcr.io"}, {"scope", "repository:user/image:pull"}},
       ""}}},
    {"Harbor", R"(Bearer realm="https://harbor.example.com/service/token",service="harbor-registry")",
     {{"bearer", {{"realm", "https://harbor.example.com/service/token"}, {"service", "harbor-registry"}}, ""}}},
    {"DistributionHtpasswd", R"(Basic realm="Registry Realm")",
     {{"basic", {{"realm", "Registry Realm"}}, ""}}},
    {"DistributionTokenPushPull",
     R"(Bearer realm="https://auth.example.com/auth",service="Docker registry",scope="repository:samalba/my-app:pull,push")",
     {{"bearer",
       {{"realm", "https://auth.example.com/auth"},
        {"service", "Docker registry"},
        {"scope", "repository:samalba/my-app:pull,push"}},
       ""}}},
    {"DistributionInsufficientScope",
     R"(Bearer realm="https://auth.example.com/token",service="registry.example.com",scope="repository:a/b:pull",error="insufficient_scope")",
     {{"bearer",
       {{"realm", "https://auth.example.com/token"},
        {"service", "registry.example.com"},
        {"scope", "repository:a/b:pull"},
        {"error", "insufficient_scope"}},
       ""}}},
    {"Quay", R"(Bearer realm="https://quay.io/v2/auth",service="quay.io")",
     {{"bearer", {{"realm", "https://quay.io/v2/auth"}, {"service", "quay.io"}}, ""}}},
    {"Ecr", R"(Basic realm="https://123456789012.dkr.ecr.us-east-1.amazonaws.com/",service="ecr.amazonaws.com")",
     {{"basic",
       {{"realm", "https://123456789012.dkr.ecr.us-east-1.amazonaws.com/"}, {"service", "ecr.amazonaws.com"}},
       ""}}},
    {"Acr", R"(Bearer realm="https://example.azurecr.io/oauth2/token",service="example.azurecr.io")",
     {{"bearer", {{"realm", "https://example.azurecr.io/oauth2/token"}, {"service", "example.azurecr.io"}}, ""}}},
    {"RealmWithQuery", R"(Bearer realm="https://gitlab.example.com/jwt/auth?client=docker, x=y")",
     {{"bearer", {{"realm", "https://gitlab.example.com/jwt/auth?client=docker, x=y"}}, ""}}},

    // Several challenges in one value.
    {"BearerThenBasic", R"(Bearer realm="a",service="b", Basic realm="x")",
     {{"bearer", {{"realm", "a"}, {"service", "b"}}, ""}, {"basic", {{"realm", "x"}}, ""}}},
    {"BasicThenBearer", R"(Basic realm="x", Bearer realm="a", service="b")",
     {{"basic", {{"realm", "x"}}, ""}, {"bearer", {{"realm", "a"}, {"service", "b"}}, ""}}},
    {"Rfc7235Example", R"(Newauth realm="apps", type=1, title="Login to \"apps\"", Basic realm="simple")",
     {{"newauth", {{"realm", "apps"}, {"type", "1"}, {"title", R"(Login to "apps")"}}, ""},
      {"basic", {{"realm", "simple"}}, ""}}},
    {"SchemesOnly", "Negotiate, NTLM", {{"negotiate", {}, ""}, {"ntlm", {}, ""}}},
    {"LoneNameAfterParamsIsAScheme", R"(Bearer realm="a",service)",
     {{"bearer", {{"realm", "a"}}, ""}, {"service", {}, ""}}},

    // Quoted strings.
    {"CommaInsideQuotes", R"(Bearer scope="repository:a/b:pull,push")",
     {{"bearer", {{"scope", "repository:a/b:pull,push"}}, ""}}},
    {"EscapedQuotes", R"(Basic realm="say \"hi\"")", {{"basic", {{"realm", R"(say "hi")"}}, ""}}},
    {"EscapedBackslash", R"(Basic realm="a\\b")", {{"basic", {{"realm", R"(a\b)"}}, ""}}},
    {"EscapedOrdinaryChars", R"(Basic realm="\a\b\,")", {{"basic", {{"realm", "ab,"}}, ""}}},
    {"EqualsAndSpacesInsideQuotes", R"(Basic realm=" a = b ")", {{"basic", {{"realm", " a = b "}}, ""}}},
    {"Utf8InsideQuotes", "Basic realm=\"caf\xc3\xa9\"", {{"basic", {{"realm", "caf\xc3\xa9"}}, ""}}},
    {"TabInsideQuotes", "Basic realm=\"a\tb\"", {{"basic", {{"realm", "a\tb"}}, ""}}},

    // Token values (unquoted).
    {"TokenValues", "Basic realm=simple, charset=UTF-8",
     {{"basic", {{"realm", "simple"}, {"charset", "UTF-8"}}, ""}}},
    {"TokenValueWithAllTchars", "Custom key=!#$%&'*+-.^_`|~09AZaz",
     {{"custom", {{"key", "!#$%&'*+-.^_`|~09AZaz"}}, ""}}},

    // token68.
    {"Token68", "Negotiate YIIBhwYGKwYBBQUCoIIBezCCAXeg==",
     {{"negotiate", {}, "YIIBhwYGKwYBBQUCoIIBezCCAXeg=="}}},
    {"Token68AllChars", "NTLM a-b.c_d~e+f/g==", {{"ntlm", {}, "a-b.c_d~e+f/g=="}}},
    {"Token68NoPadding", "Negotiate abc", {{"negotiate", {}, "abc"}}},
    {"Token68ThenChallenge", R"(Negotiate abc=, Basic realm="x")",
     {{"negotiate", {}, "abc="}, {"basic", {{"realm", "x"}}, ""}}},

    // Whitespace.
    {"ExtraWhitespace", R"(  Bearer   realm = "a" ,  service="b"  )",
     {{"bearer", {{"realm", "a"}, {"service", "b"}}, ""}}},
    {"Tabs", "Bearer\trealm=\"a\",\tservice=\"b\"", {{"bearer", {{"realm", "a"}, {"service", "b"}}, ""}}},
    {"EmptyListElements", R"(, Bearer realm="a",, service="b" ,)",
     {{"bearer", {{"realm", "a"}, {"service", "b"}}, ""}}},
    {"CommaRightAfterScheme", R"(Basic , realm="x")", {{"basic", {{"realm", "x"}}, ""}}},

    // Case.
    {"CaseInsensitiveSchemeAndKeys", R"(BEARER REALM="A",Service="B")",
     {{"bearer", {{"realm", "A"}, {"service", "B"}}, ""}}},

    // Duplicates, empty values.
    {"DuplicateFirstWins", R"(Bearer realm="first",realm="second",REALM="third")",
     {{"bearer", {{"realm", "first"}}, ""}}},
    {"EmptyQuotedValue", R"(Bearer realm="",service="b")", {{"bearer", {{"realm", ""}, {"service", "b"}}, ""}}},
    {"EmptyBareValueInTheMiddle", R"(Bearer realm="a",scope=,service="b")",
     {{"bearer", {{"realm", "a"}, {"scope", ""}, {"service", "b"}}, ""}}},
    {"EmptyBareValueFirst", R"(Bearer scope=,realm="a")", {{"bearer", {{"scope", ""}, {"realm", "a"}}, ""}}},
    {"EmptyBareValueLast", R"(Bearer realm="a",scope=)", {{"bearer", {{"realm", "a"}, {"scope", ""}}, ""}}},

    // No challenges at all.
    {"EmptyHeader", "", {}},
    {"BlankHeader", " \t ", {}},
    {"OnlyCommas", " , ,", {}},
};

class ChallengeValidTest : public ::testing::TestWithParam<ValidCase> {};

TEST_P(ChallengeValidTest, Parses) {
  const ValidCase& c = GetParam();
  auto got = parse_www_authenticate(c.header);
  ASSERT_TRUE(got.ok()) << got.error().message();
  EXPECT_EQ(*got, c.want) << "header: " << c.header;
}

INSTANTIATE_TEST_SUITE_P(ChallengeHeaders, ChallengeValidTest, ::testing::ValuesIn(kValidCases),
                         [](const auto& info) { return std::string(info.param.name); });

struct InvalidCase {
  const char* name;
  std::string_view header;
  std::string_view want_in_message;
};

const InvalidCase kInvalidCases[] = {
    {"UnterminatedQuote", R"(Bearer realm="https://auth.docker.io/token)", "unterminated quoted string"},
    {"BackslashAtEnd", R"(Bearer realm="a\)", "unterminated quoted string"},
    {"NoScheme", R"(="a")", "expected an authentication scheme"},
    {"QuotedScheme", R"("Bearer" realm="a")", "expected an authentication scheme"},
    {"MissingCommaBetweenParams", R"(Bearer realm="a" service="b")", "expected ','"},
    {"UnquotedUrl", "Bearer realm=https://auth.docker.io/token", "expected ','"},
    {"DoubleEquals", R"(Bearer realm=="a")", "expected a token or a quoted string"},
    {"ParamWithoutName", R"(Bearer ="a")", "expected ','"},
    {"GarbageAfterScheme", R"(Bearer@ realm="a")", "expected a space after the scheme"},
    {"SchemeGluedToEquals", R"(Bearer="a")", "expected a space after the scheme"},
    {"Semicolons", R"(Basic realm="a"; charset=x)", "expected ','"},
    {"Token68ThenParams", R"(Negotiate abc==, realm="x")", "expected a token or a quoted string"},
    {"Token68WithSpace", "Negotiate abc== def", "expected a token or a quoted string"},
    {"BareValueWithSpace", "Bearer realm=a b", "expected ','"},
    {"EmptyElementThenEquals", R"(Bearer realm="a", =b)", "expected an authentication scheme"},
    {"ControlCharInQuotes", "Basic realm=\"a\x01b\"", "control character"},
    {"HeaderInjection", "Basic realm=\"a\"\r\nX-Evil: 1", "expected ','"},
    {"NulByte", std::string_view("Basic\0realm=\"a\"", 15), "expected a space after the scheme"},
    {"OnlyEquals", "=", "expected an authentication scheme"},
};

class ChallengeInvalidTest : public ::testing::TestWithParam<InvalidCase> {};

TEST_P(ChallengeInvalidTest, IsRejectedWithAMessageQuotingTheHeader) {
  const InvalidCase& c = GetParam();
  auto got = parse_www_authenticate(c.header);
  ASSERT_FALSE(got.ok()) << "header: " << c.header;
  EXPECT_EQ(got.error().code(), ErrorCode::kInvalidArgument);
  EXPECT_NE(got.error().message().find("invalid WWW-Authenticate header \""), std::string::npos)
      << got.error().message();
  EXPECT_NE(got.error().message().find(c.want_in_message), std::string::npos) << got.error().message();
}

INSTANTIATE_TEST_SUITE_P(ChallengeHeaders, ChallengeInvalidTest, ::testing::ValuesIn(kInvalidCases),
                         [](const auto& info) { return std::string(info.param.name); });

TEST(Challenge, ParamIsCaseInsensitiveAndEmptyWhenAbsent) {
  auto got = parse_www_authenticate(R"(Bearer realm="r",service="s")");
  ASSERT_TRUE(got.ok());
  ASSERT_EQ(got->size(), 1u);
  const Challenge& c = got->front();
  EXPECT_EQ(c.param("realm"), "r");
  EXPECT_EQ(c.param("Realm"), "r");
  EXPECT_EQ(c.param("SERVICE"), "s");
  EXPECT_EQ(c.param("scope"), "");
}

TEST(Challenge, MessageQuotesTheHeaderWithEscapes) {
  auto got = parse_www_authenticate("Basic realm=\"a\x01\"");
  ASSERT_FALSE(got.ok());
  EXPECT_EQ(got.error().message(),
            R"(invalid WWW-Authenticate header "Basic realm=\"a\x01\"": control character in a quoted string at offset 14)");
}

TEST(Challenge, MessageQuoteIsBounded) {
  std::string header = "Bearer realm=" + std::string(6000, 'a') + " @";
  auto got = parse_www_authenticate(header);
  ASSERT_FALSE(got.ok());
  EXPECT_EQ(got.error().code(), ErrorCode::kInvalidArgument);
  EXPECT_LT(got.error().message().size(), 400u) << got.error().message();
  EXPECT_NE(got.error().message().find("aaa\"... (6015 bytes): expected ','"), std::string::npos)
      << got.error().message();
}

TEST(Challenge, HeaderSizeIsBounded) {
  std::string at_limit = "Basic realm=\"" + std::string(kMaxWwwAuthenticateSize - 14, 'x') + "\"";
  ASSERT_EQ(at_limit.size(), kMaxWwwAuthenticateSize);
  auto ok = parse_www_authenticate(at_limit);
  ASSERT_TRUE(ok.ok()) << ok.error().message();
  EXPECT_EQ(ok->front().param("realm").size(), kMaxWwwAuthenticateSize - 14);

  auto too_big = parse_www_authenticate(at_limit + " ");
  ASSERT_FALSE(too_big.ok());
  EXPECT_EQ(too_big.error().code(), ErrorCode::kTooLarge);
  EXPECT_LT(too_big.error().message().size(), 400u);
}

}  // namespace
}  // namespace imgpull
