#include "imgpull/credentials.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <stdlib.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <optional>
#include <string>

namespace imgpull {
namespace {

namespace fs = std::filesystem;

// Sets an environment variable for the scope of a test, then puts it back.
class ScopedEnv {
 public:
  ScopedEnv(const char* name, const std::string& value) : name_(name) {
    if (const char* old = std::getenv(name)) old_ = old;
    ::setenv(name, value.c_str(), 1);
  }
  ScopedEnv(const ScopedEnv&) = delete;
  ScopedEnv& operator=(const ScopedEnv&) = delete;
  ~ScopedEnv() {
    if (old_) {
      ::setenv(name_, old_->c_str(), 1);
    } else {
      ::unsetenv(name_);
    }
  }

 private:
  const char* name_;
  std::optional<std::string> old_;
};

// A temporary directory with a bin/ prepended to PATH, where tests put fake
// docker-credential-* helpers: real executables, run for real.
class CredentialTestBase : public ::testing::Test {
 protected:
  CredentialTestBase() {
    std::string pattern = (fs::temp_directory_path() / "imgpull-credentials-XXXXXX").string();
    char* made = ::mkdtemp(pattern.data());
    EXPECT_NE(made, nullptr);
    dir_ = pattern;
    bin_ = dir_ / "bin";
    fs::create_directories(bin_);
    const char* path = std::getenv("PATH");
    path_.emplace("PATH", bin_.string() + ":" + (path ? path : "/usr/bin:/bin"));
  }
  ~CredentialTestBase() override {
    path_.reset();
    std::error_code ignored;
    fs::remove_all(dir_, ignored);
  }

  static void write_file(const fs::path& path, const std::string& text) {
    fs::create_directories(path.parent_path());
    std::ofstream(path, std::ios::binary) << text;
  }

  static std::string read_file(const fs::path& path) {
    std::ifstream in(path, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), {});
  }

  // docker-credential-<name>, a shell script with `body` after a prologue
  // that checks the action, reads the server URL from stdin and records it
  // in bin/last-url.
  void write_helper(const std::string& name, const std::string& body) {
    fs::path path = bin_ / ("docker-credential-" + name);
    write_file(path,
               "#!/bin/sh\n"
               "[ \"$1\" = get ] || { echo \"unexpected action $1\"; exit 3; }\n"
               "url=$(cat)\n"
               "printf '%s' \"$url\" > \"$(dirname \"$0\")/last-url\"\n" +
                   body);
    fs::permissions(path, fs::perms::owner_all);
  }

  // The helper most tests use: octo/s3cret for ghcr.io, an identity token
  // for Docker Hub, "not found" for everything else.
  void write_test_helper() {
    write_helper("test",
                 "case \"$url\" in\n"
                 "  ghcr.io) printf '{\"ServerURL\":\"%s\",\"Username\":\"octo\",\"Secret\":\"s3cret\"}\\n' \"$url\" ;;\n"
                 "  https://index.docker.io/v1/) echo '{\"Username\":\"<token>\",\"Secret\":\"refresh-me\"}' ;;\n"
                 "  *) echo 'credentials not found in native keychain'; exit 1 ;;\n"
                 "esac\n");
  }

  std::string last_url() const { return read_file(bin_ / "last-url"); }

  Result<DockerConfig> parse(const std::string& json) { return DockerConfig::parse(json, "test-config.json"); }

  fs::path dir_;
  fs::path bin_;
  std::optional<ScopedEnv> path_;
};

class DockerConfigTest : public CredentialTestBase {};
class CredentialHelperTest : public CredentialTestBase {};

// Looks `domain` up and expects credentials.
Credentials expect_credentials(const DockerConfig& config, std::string_view domain) {
  auto got = config.credentials_for(domain);
  EXPECT_TRUE(got.ok()) << got.error().message();
  if (!got.ok()) return {};
  EXPECT_TRUE(got->has_value()) << "no credentials for " << domain;
  return got->value_or(Credentials{});
}

void expect_none(const DockerConfig& config, std::string_view domain) {
  auto got = config.credentials_for(domain);
  ASSERT_TRUE(got.ok()) << got.error().message();
  EXPECT_FALSE(got->has_value()) << "unexpected credentials for " << domain << ": " << (*got)->username;
}

// ---- Where the file is -----------------------------------------------------

TEST_F(DockerConfigTest, LoadHonoursDockerConfig) {
  write_file(dir_ / "cfg" / "config.json", R"({"auths":{"ghcr.io":{"auth":"dTpw"}}})");  // u:p
  write_file(dir_ / "home" / ".docker" / "config.json", R"({"auths":{"ghcr.io":{"auth":"aG9tZTpw"}}})");
  ScopedEnv docker_config("DOCKER_CONFIG", (dir_ / "cfg").string());
  ScopedEnv home("HOME", (dir_ / "home").string());
  auto config = DockerConfig::load();
  ASSERT_TRUE(config.ok()) << config.error().message();
  EXPECT_EQ(expect_credentials(*config, "ghcr.io").username, "u");
}

TEST_F(DockerConfigTest, LoadFallsBackToHome) {
  write_file(dir_ / "home" / ".docker" / "config.json", R"({"auths":{"ghcr.io":{"auth":"aG9tZTpw"}}})");
  ScopedEnv docker_config("DOCKER_CONFIG", "");  // empty counts as unset, as for docker
  ScopedEnv home("HOME", (dir_ / "home").string());
  auto config = DockerConfig::load();
  ASSERT_TRUE(config.ok()) << config.error().message();
  EXPECT_EQ(expect_credentials(*config, "ghcr.io").username, "home");
}

TEST_F(DockerConfigTest, MissingFileIsAnEmptyConfig) {
  ScopedEnv docker_config("DOCKER_CONFIG", (dir_ / "nowhere").string());
  auto config = DockerConfig::load();
  ASSERT_TRUE(config.ok()) << config.error().message();
  expect_none(*config, "docker.io");
  expect_none(*config, "ghcr.io");

  auto direct = DockerConfig::load_file((dir_ / "absent.json").string());
  ASSERT_TRUE(direct.ok()) << direct.error().message();
  expect_none(*direct, "docker.io");
}

TEST_F(DockerConfigTest, EmptyFileIsAnEmptyConfig) {
  write_file(dir_ / "config.json", "\n");
  auto config = DockerConfig::load_file((dir_ / "config.json").string());
  ASSERT_TRUE(config.ok()) << config.error().message();
  expect_none(*config, "docker.io");
}

TEST_F(DockerConfigTest, MalformedJsonIsCorruptNamingTheFileButNotTheSecret) {
  std::string path = (dir_ / "config.json").string();
  write_file(path, R"({"auths": {"ghcr.io": {"auth": "c2VjcmV0LXBhc3N3b3Jk)");  // cut short
  auto config = DockerConfig::load_file(path);
  ASSERT_FALSE(config.ok());
  EXPECT_EQ(config.error().code(), ErrorCode::kCorrupt);
  EXPECT_NE(config.error().message().find(path), std::string::npos) << config.error().message();
  EXPECT_EQ(config.error().message().find("c2VjcmV0"), std::string::npos) << config.error().message();
}

TEST_F(DockerConfigTest, UnreadableFileIsIo) {
  fs::create_directories(dir_ / "config.json");  // a directory where the file should be
  auto config = DockerConfig::load_file((dir_ / "config.json").string());
  ASSERT_FALSE(config.ok());
  EXPECT_EQ(config.error().code(), ErrorCode::kIo);
  EXPECT_NE(config.error().message().find("config.json"), std::string::npos);
}

TEST_F(DockerConfigTest, OversizedFileIsTooLarge) {
  write_file(dir_ / "config.json", "{}" + std::string(kMaxDockerConfigSize, ' '));
  auto config = DockerConfig::load_file((dir_ / "config.json").string());
  ASSERT_FALSE(config.ok());
  EXPECT_EQ(config.error().code(), ErrorCode::kTooLarge);
}

TEST_F(DockerConfigTest, WrongShapesAreCorrupt) {
  for (const char* json : {R"([])", R"("x")", R"({"auths": []})", R"({"auths": {"ghcr.io": "x"}})",
                           R"({"auths": {"ghcr.io": {"password": 5}}})", R"({"credsStore": true})",
                           R"({"credHelpers": {"ghcr.io": 1}})", R"({"credHelpers": "x"})"}) {
    auto config = parse(json);
    ASSERT_FALSE(config.ok()) << json;
    EXPECT_EQ(config.error().code(), ErrorCode::kCorrupt) << json;
    EXPECT_NE(config.error().message().find("test-config.json"), std::string::npos);
  }
  auto config = parse(R"({"auths": {"ghcr.io": {"password": 5}}})");
  EXPECT_NE(config.error().message().find(R"(auths["ghcr.io"].password is not a string)"), std::string::npos)
      << config.error().message();
}

TEST_F(DockerConfigTest, NullsAndUnknownFieldsAreIgnored) {
  auto config = parse(R"({"auths": {"ghcr.io": null, "quay.io": {"auth": null, "email": "x@y"}},
                          "credsStore": null, "credHelpers": null, "psFormat": "table", "proxies": {}})");
  ASSERT_TRUE(config.ok()) << config.error().message();
  expect_none(*config, "ghcr.io");
  expect_none(*config, "quay.io");
}

// ---- auths entries ---------------------------------------------------------

TEST_F(DockerConfigTest, AuthIsBase64UserColonPassword) {
  // "user:pa:ss" - the password keeps its colons: the split is on the first.
  auto config = parse(R"({"auths":{"registry.example.com":{"auth":"dXNlcjpwYTpzcw=="}}})");
  ASSERT_TRUE(config.ok()) << config.error().message();
  Credentials c = expect_credentials(*config, "registry.example.com");
  EXPECT_EQ(c.username, "user");
  EXPECT_EQ(c.password, "pa:ss");
  EXPECT_EQ(c.identity_token, "");
}

TEST_F(DockerConfigTest, AuthReplacesUsernameAndPassword) {
  auto config = parse(R"({"auths":{"r.io":{"auth":"dXNlcjpwYXNz","username":"other","password":"x"},
                                   "s.io":{"username":"sep","password":"arate"}}})");
  ASSERT_TRUE(config.ok()) << config.error().message();
  Credentials r = expect_credentials(*config, "r.io");
  EXPECT_EQ(r.username, "user");
  EXPECT_EQ(r.password, "pass");
  Credentials s = expect_credentials(*config, "s.io");
  EXPECT_EQ(s.username, "sep");
  EXPECT_EQ(s.password, "arate");
}

TEST_F(DockerConfigTest, AuthBase64EdgeCases) {
  // Go's StdEncoding: newlines skipped; docker trims NULs off the password.
  auto config = parse(R"({"auths":{"a.io":{"auth":"dXNl\ncjpw"}, "b.io":{"auth":"dTpwAA=="}}})");
  ASSERT_TRUE(config.ok()) << config.error().message();
  EXPECT_EQ(expect_credentials(*config, "a.io").password, "p");
  EXPECT_EQ(expect_credentials(*config, "b.io").password, "p");
}

TEST_F(DockerConfigTest, BadAuthIsCorruptWithoutTheSecret) {
  for (const char* auth : {"c2VjcmV0!!", "c2VjcmV0", "c2VjcmV0cGFzcw", "c2VjcmV0cGFzcw==="}) {
    // Not base64 / no colon ("secret") / unpadded / over-padded.
    auto config = parse(std::string(R"({"auths":{"r.io":{"auth":")") + auth + "\"}}}");
    ASSERT_FALSE(config.ok()) << auth;
    EXPECT_EQ(config.error().code(), ErrorCode::kCorrupt) << auth;
    EXPECT_NE(config.error().message().find(R"(auths["r.io"].auth)"), std::string::npos)
        << config.error().message();
    EXPECT_EQ(config.error().message().find("c2VjcmV0"), std::string::npos) << config.error().message();
    EXPECT_EQ(config.error().message().find("secret"), std::string::npos) << config.error().message();
  }
  auto empty_user = parse(R"({"auths":{"r.io":{"auth":"OnBhc3M="}}})");  // ":pass"
  ASSERT_FALSE(empty_user.ok());
  EXPECT_EQ(empty_user.error().code(), ErrorCode::kCorrupt);
}

TEST_F(DockerConfigTest, IdentityToken) {
  // What `docker login` writes for an OAuth login: the username, no password, and the token.
  auto config = parse(R"({"auths":{"r.io":{"auth":"b2N0bzo=","identitytoken":"refresh-token"}}})");
  ASSERT_TRUE(config.ok()) << config.error().message();
  Credentials c = expect_credentials(*config, "r.io");
  EXPECT_EQ(c.username, "octo");
  EXPECT_EQ(c.password, "");
  EXPECT_EQ(c.identity_token, "refresh-token");
}

TEST_F(DockerConfigTest, EmptyEntryIsNoCredentials) {
  // docker leaves such entries behind when a credsStore holds the secrets.
  auto config = parse(R"({"auths":{"ghcr.io":{}}})");
  ASSERT_TRUE(config.ok()) << config.error().message();
  expect_none(*config, "ghcr.io");
}

TEST_F(DockerConfigTest, FieldNamesMatchCaseInsensitivelyAsInGo) {
  auto config = parse(R"({"Auths":{"r.io":{"Username":"u","PASSWORD":"p"}}})");
  ASSERT_TRUE(config.ok()) << config.error().message();
  Credentials c = expect_credentials(*config, "r.io");
  EXPECT_EQ(c.username, "u");
  EXPECT_EQ(c.password, "p");
}

// ---- Key matching ----------------------------------------------------------

TEST_F(DockerConfigTest, DockerHubUsesTheIndexUrlKey) {
  auto config = parse(R"({"auths":{"https://index.docker.io/v1/":{"auth":"aHViOnB3"}}})");  // hub:pw
  ASSERT_TRUE(config.ok()) << config.error().message();
  for (const char* domain : {"docker.io", "index.docker.io", "registry-1.docker.io"}) {
    EXPECT_EQ(expect_credentials(*config, domain).username, "hub") << domain;
  }
  // As for docker, Hub is only ever looked up under its index URL.
  auto plain = parse(R"({"auths":{"docker.io":{"auth":"aHViOnB3"}}})");
  ASSERT_TRUE(plain.ok());
  expect_none(*plain, "docker.io");
}

TEST_F(DockerConfigTest, UrlFormKeysMatchTheirHost) {
  auto config = parse(R"({"auths":{
      "https://registry.example.com:5000/v1/": {"username": "a", "password": "1"},
      "http://plain.example.com/":             {"username": "b", "password": "2"},
      "myhost.example/v2":                     {"username": "c", "password": "3"},
      "https://user@userinfo.example:443":     {"username": "d", "password": "4"},
      "https://[::1]:5000/":                   {"username": "e", "password": "5"},
      "HTTPS://upper.example":                 {"username": "f", "password": "6"}}})");
  ASSERT_TRUE(config.ok()) << config.error().message();
  EXPECT_EQ(expect_credentials(*config, "registry.example.com:5000").username, "a");
  EXPECT_EQ(expect_credentials(*config, "plain.example.com").username, "b");
  EXPECT_EQ(expect_credentials(*config, "myhost.example").username, "c");
  EXPECT_EQ(expect_credentials(*config, "userinfo.example:443").username, "d");
  EXPECT_EQ(expect_credentials(*config, "[::1]:5000").username, "e");
  EXPECT_EQ(expect_credentials(*config, "upper.example").username, "f");
  expect_none(*config, "registry.example.com");  // the port is part of the host
  expect_none(*config, "plain.example.com:80");
  expect_none(*config, "example.com");
}

TEST_F(DockerConfigTest, ExactKeyWinsOverUrlForm) {
  auto config = parse(R"({"auths":{"https://r.io/v1/":{"username":"url","password":"1"},
                                   "r.io":{"username":"exact","password":"2"}}})");
  ASSERT_TRUE(config.ok()) << config.error().message();
  EXPECT_EQ(expect_credentials(*config, "r.io").username, "exact");
}

// ---- Credential helpers ----------------------------------------------------

TEST_F(CredentialHelperTest, CredsStoreIsTheOnlySourceWhenSet) {
  write_test_helper();
  auto config = parse(R"({"credsStore":"test",
                          "auths":{"ghcr.io":{"auth":"ZmlsZTpwdw=="}, "other.io":{"auth":"ZmlsZTpwdw=="}}})");
  ASSERT_TRUE(config.ok()) << config.error().message();
  Credentials c = expect_credentials(*config, "ghcr.io");
  EXPECT_EQ(c.username, "octo");
  EXPECT_EQ(c.password, "s3cret");
  EXPECT_EQ(last_url(), "ghcr.io");
  // The helper has nothing for other.io: anonymous, as for docker, not the auths entry.
  expect_none(*config, "other.io");
  EXPECT_EQ(last_url(), "other.io");
}

TEST_F(CredentialHelperTest, DockerHubAsksTheHelperForTheIndexUrl) {
  write_test_helper();
  auto config = parse(R"({"credsStore":"test"})");
  ASSERT_TRUE(config.ok());
  Credentials c = expect_credentials(*config, "docker.io");
  EXPECT_EQ(last_url(), "https://index.docker.io/v1/");
  EXPECT_EQ(c.identity_token, "refresh-me");  // Username "<token>" means an identity token
  EXPECT_EQ(c.username, "");
  EXPECT_EQ(c.password, "");
}

TEST_F(CredentialHelperTest, CredHelpersTakePrecedenceOverCredsStore) {
  write_test_helper();
  write_helper("broken", "echo 'keychain is locked'; exit 1\n");
  auto config = parse(R"({"credsStore":"broken",
                          "credHelpers":{"ghcr.io":"test","https://index.docker.io/v1/":"test","plain.io":""},
                          "auths":{"plain.io":{"auth":"ZmlsZTpwdw=="}}})");
  ASSERT_TRUE(config.ok()) << config.error().message();
  EXPECT_EQ(expect_credentials(*config, "ghcr.io").username, "octo");
  EXPECT_EQ(expect_credentials(*config, "docker.io").identity_token, "refresh-me");
  // An empty credHelpers entry sends its registry back to auths, past the credsStore.
  EXPECT_EQ(expect_credentials(*config, "plain.io").username, "file");

  auto other = config->credentials_for("quay.io");
  ASSERT_FALSE(other.ok());
  EXPECT_EQ(other.error().code(), ErrorCode::kUnauthorized);
  EXPECT_NE(other.error().message().find("docker-credential-broken"), std::string::npos)
      << other.error().message();
  EXPECT_NE(other.error().message().find("keychain is locked"), std::string::npos);
  EXPECT_NE(other.error().message().find("quay.io"), std::string::npos);
  EXPECT_NE(other.error().message().find("test-config.json"), std::string::npos);
}

TEST_F(CredentialHelperTest, NotFoundIsNoCredentials) {
  write_test_helper();
  auto got = run_credential_helper("test", "unknown.example.com");
  ASSERT_TRUE(got.ok()) << got.error().message();
  EXPECT_FALSE(got->has_value());
}

TEST_F(CredentialHelperTest, EmptyAnswerIsNoCredentials) {
  write_helper("empty", R"(echo '{"ServerURL":"x","Username":"","Secret":""}')" "\n");
  auto got = run_credential_helper("empty", "r.io");
  ASSERT_TRUE(got.ok()) << got.error().message();
  EXPECT_FALSE(got->has_value());
}

TEST_F(CredentialHelperTest, FailureIsUnauthorizedNamingTheHelper) {
  write_helper("fails", "echo 'error getting credentials - err: exit status 1' >&2; exit 2\n");
  auto got = run_credential_helper("fails", "r.io");
  ASSERT_FALSE(got.ok());
  EXPECT_EQ(got.error().code(), ErrorCode::kUnauthorized);
  EXPECT_NE(got.error().message().find("docker-credential-fails"), std::string::npos) << got.error().message();
  EXPECT_NE(got.error().message().find("exit status 2"), std::string::npos) << got.error().message();
  EXPECT_NE(got.error().message().find("error getting credentials"), std::string::npos);
}

TEST_F(CredentialHelperTest, MissingHelperIsUnavailable) {
  auto got = run_credential_helper("does-not-exist", "r.io");
  ASSERT_FALSE(got.ok());
  EXPECT_EQ(got.error().code(), ErrorCode::kUnavailable);
  EXPECT_NE(got.error().message().find("docker-credential-does-not-exist"), std::string::npos);
  EXPECT_NE(got.error().message().find("not found on PATH"), std::string::npos) << got.error().message();
}

TEST_F(CredentialHelperTest, GarbageOutputIsUnavailableWithoutQuotingIt) {
  write_helper("garbage", "echo 'Username=octo Secret=hunter2'\n");
  write_helper("wrongtype", R"(echo '{"Username":"octo","Secret":["hunter2"]}')" "\n");
  for (const char* helper : {"garbage", "wrongtype"}) {
    auto got = run_credential_helper(helper, "r.io");
    ASSERT_FALSE(got.ok()) << helper;
    EXPECT_EQ(got.error().code(), ErrorCode::kUnavailable) << helper;
    EXPECT_NE(got.error().message().find(std::string("docker-credential-") + helper), std::string::npos);
    EXPECT_EQ(got.error().message().find("hunter2"), std::string::npos) << got.error().message();
  }
}

TEST_F(CredentialHelperTest, KilledHelperIsUnavailable) {
  write_helper("killed", "kill -9 $$\n");
  auto got = run_credential_helper("killed", "r.io");
  ASSERT_FALSE(got.ok());
  EXPECT_EQ(got.error().code(), ErrorCode::kUnavailable);
  EXPECT_NE(got.error().message().find("signal 9"), std::string::npos) << got.error().message();
}

TEST_F(CredentialHelperTest, HangingHelperTimesOut) {
  write_helper("hangs", "exec sleep 30\n");
  auto start = std::chrono::steady_clock::now();
  auto got = run_credential_helper("hangs", "r.io", std::chrono::milliseconds(300));
  auto took = std::chrono::steady_clock::now() - start;
  ASSERT_FALSE(got.ok());
  EXPECT_EQ(got.error().code(), ErrorCode::kUnavailable);
  EXPECT_NE(got.error().message().find("did not finish within 300 ms"), std::string::npos)
      << got.error().message();
  EXPECT_LT(took, std::chrono::seconds(10));
}

TEST_F(CredentialHelperTest, OutputIsBounded) {
  write_helper("chatty", "exec yes\n");
  auto got = run_credential_helper("chatty", "r.io");
  ASSERT_FALSE(got.ok());
  EXPECT_EQ(got.error().code(), ErrorCode::kUnavailable);
  EXPECT_NE(got.error().message().find("more than"), std::string::npos) << got.error().message();
}

TEST_F(CredentialHelperTest, HelperThatIgnoresStdinAndTalksOnStderr) {
  // The prologue reads stdin; this one does not, and must not get us a SIGPIPE.
  fs::path path = bin_ / "docker-credential-quiet";
  write_file(path, "#!/bin/sh\necho 'looking...' >&2\necho '{\"Username\":\"u\",\"Secret\":\"p\"}'\n");
  fs::permissions(path, fs::perms::owner_all);
  auto got = run_credential_helper("quiet", "r.io");
  ASSERT_TRUE(got.ok()) << got.error().message();
  ASSERT_TRUE(got->has_value());
  EXPECT_EQ((*got)->username, "u");
  EXPECT_EQ((*got)->password, "p");
}

TEST_F(CredentialHelperTest, WorksWithOurStdioClosed) {
  write_test_helper();
  // Pipes then land on fds 0 and 1, where the child's own stdio goes.
  int saved_in = ::dup(STDIN_FILENO);
  int saved_out = ::dup(STDOUT_FILENO);
  ::close(STDIN_FILENO);
  ::close(STDOUT_FILENO);
  auto got = run_credential_helper("test", "ghcr.io");
  ::dup2(saved_in, STDIN_FILENO);
  ::dup2(saved_out, STDOUT_FILENO);
  ::close(saved_in);
  ::close(saved_out);
  ASSERT_TRUE(got.ok()) << got.error().message();
  ASSERT_TRUE(got->has_value());
  EXPECT_EQ((*got)->username, "octo");
}

TEST_F(CredentialHelperTest, HelperNameMustNotBeAPath) {
  auto got = run_credential_helper("../../bin/sh", "r.io");
  ASSERT_FALSE(got.ok());
  EXPECT_EQ(got.error().code(), ErrorCode::kInvalidArgument);
}

// ---- login / logout ----

class LoginStoreTest : public CredentialTestBase {};

TEST(CredentialKey, AsDockerLoginFilesThem) {
  EXPECT_EQ(credential_key(""), kDockerHubCredentialKey);
  EXPECT_EQ(credential_key("docker.io"), kDockerHubCredentialKey);
  EXPECT_EQ(credential_key("index.docker.io"), kDockerHubCredentialKey);
  EXPECT_EQ(credential_key("registry-1.docker.io"), kDockerHubCredentialKey);
  EXPECT_EQ(credential_key("https://index.docker.io/v1/"), kDockerHubCredentialKey);
  EXPECT_EQ(credential_key("localhost:5000"), "localhost:5000");
  EXPECT_EQ(credential_key("https://Registry.Example:5000/v2/"), "registry.example:5000");
  EXPECT_EQ(credential_key("ghcr.io/owner"), "ghcr.io");
}

TEST_F(LoginStoreTest, SaveKeepsEverythingElseAndRemoveTakesOnlyTheEntry) {
  fs::path config = dir_ / "dc" / "config.json";
  write_file(config, R"({"zz": 1, "auths": {"other": {"auth": "Ym9iOng="}, "https://h:5000/v1/": {"auth": "eDp5"}},
                        "aa": {"nested": [1, 2]}})");
  ASSERT_TRUE(save_login(config.string(), "h:5000", Credentials{"alice", "pw", ""}).ok());
  auto doc = nlohmann::ordered_json::parse(read_file(config));
  EXPECT_EQ(doc["auths"]["h:5000"]["auth"], "YWxpY2U6cHc=");
  EXPECT_EQ(doc["zz"], 1);
  EXPECT_EQ(doc["aa"]["nested"][1], 2);
  EXPECT_EQ(doc.begin().key(), "zz");  // order kept
  EXPECT_EQ((fs::status(config).permissions() & fs::perms::all), fs::perms::owner_read | fs::perms::owner_write);

  auto removed = remove_login(config.string(), "h:5000");
  ASSERT_TRUE(removed.ok()) << removed.error().message();
  EXPECT_TRUE(*removed);
  doc = nlohmann::ordered_json::parse(read_file(config));
  EXPECT_FALSE(doc["auths"].contains("h:5000"));
  EXPECT_FALSE(doc["auths"].contains("https://h:5000/v1/"));  // the old URL form of the same key
  EXPECT_TRUE(doc["auths"].contains("other"));
  auto again = remove_login(config.string(), "h:5000");
  ASSERT_TRUE(again.ok());
  EXPECT_FALSE(*again);
}

TEST_F(LoginStoreTest, MalformedConfigIsLeftAlone) {
  fs::path config = dir_ / "config.json";
  write_file(config, "{not json");
  auto saved = save_login(config.string(), "h", Credentials{"a", "b", ""});
  ASSERT_FALSE(saved.ok());
  EXPECT_EQ(read_file(config), "{not json");
}

TEST_F(LoginStoreTest, WritesThroughASymlinkedConfig) {
  fs::path real = dir_ / "real.json";
  write_file(real, "{}");
  fs::create_directories(dir_ / "dc");
  fs::create_symlink(real, dir_ / "dc" / "config.json");
  ASSERT_TRUE(save_login((dir_ / "dc" / "config.json").string(), "h", Credentials{"a", "b", ""}).ok());
  EXPECT_TRUE(fs::is_symlink(dir_ / "dc" / "config.json"));
  EXPECT_NE(read_file(real).find("\"h\""), std::string::npos);
}

}  // namespace
}  // namespace imgpull
