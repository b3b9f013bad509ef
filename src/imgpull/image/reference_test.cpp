// Reference parsing, checked against Docker's own tables (distribution/reference
// normalize_test.go, reference_test.go, regexp_test.go, restated here as the
// normalised result `docker pull` would use) plus generated sweeps over
// domains × paths × tag/digest forms, separators, characters and lengths.
#include "imgpull/reference.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace imgpull {
namespace {

using ::testing::HasSubstr;

const std::string kHex64 = "ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff";
const std::string kSha = "sha256:" + kHex64;
const std::string kSha2 = "sha256:86e0e091d0da6bde2456dbb48306f3956bbeb2eae1b5b9a43045843f69fe4aaa";
const std::string kSha512 = "sha512:" + std::string(128, 'a');
const std::string kImageId = "1a3f5e7d9c1b3a5f7e9d1c3b5a7f9e1d3c5b7a9f1e3d5d7c9b1a3f5e7d9c1b3a";

std::string repeat(std::string_view s, int n) {
  std::string out;
  for (int i = 0; i < n; ++i) out += s;
  return out;
}

// Properties every parsed reference has, whatever the input.
void expect_invariants(const Reference& ref) {
  EXPECT_TRUE(ref.tag || ref.digest);
  std::string suffix =
      (ref.tag ? ":" + *ref.tag : "") + (ref.digest ? "@" + ref.digest->str() : "");
  EXPECT_EQ(ref.str(), ref.name() + suffix);
  EXPECT_EQ(ref.familiar(), ref.familiar_name() + suffix);
  EXPECT_EQ(ref.manifest_selector(), ref.digest ? ref.digest->str() : *ref.tag);
  EXPECT_EQ(ref.registry_host(), ref.domain == "docker.io" ? "registry-1.docker.io" : ref.domain);
  // Both printed forms mean the same image again.
  for (const std::string& printed : {ref.str(), ref.familiar()}) {
    auto again = Reference::parse(printed);
    ASSERT_TRUE(again.ok()) << printed << ": " << again.error().message();
    EXPECT_EQ(*again, ref) << printed;
  }
}

struct Valid {
  std::string input;
  std::string str;  // normalised, as docker.io/library/x:latest
  std::string domain;
  std::string path;
  std::string tag;       // "" when there is none
  std::string digest;    // "" when there is none
  std::string familiar;  // familiar(): what docker prints
};

void expect_valid(const Valid& want) {
  SCOPED_TRACE("input \"" + want.input + "\"");
  auto ref = Reference::parse(want.input);
  ASSERT_TRUE(ref.ok()) << ref.error().message();
  EXPECT_EQ(ref->str(), want.str);
  EXPECT_EQ(ref->domain, want.domain);
  EXPECT_EQ(ref->path, want.path);
  EXPECT_EQ(ref->tag.value_or(""), want.tag);
  EXPECT_EQ(ref->digest ? ref->digest->str() : "", want.digest);
  EXPECT_EQ(ref->familiar(), want.familiar);
  expect_invariants(*ref);
}

struct Invalid {
  std::string input;
  std::string message;  // a part of the message after `invalid reference "<input>": `
  ErrorCode code = ErrorCode::kInvalidArgument;
};

void expect_invalid(const Invalid& want) {
  SCOPED_TRACE("input \"" + want.input + "\"");
  auto ref = Reference::parse(want.input);
  ASSERT_FALSE(ref.ok()) << "parsed as " << ref->str();
  EXPECT_EQ(to_string(ref.error().code()), to_string(want.code));
  EXPECT_THAT(ref.error().message(), HasSubstr(want.message));
  EXPECT_TRUE(ref.error().message().starts_with("invalid reference \"")) << ref.error().message();
  EXPECT_EQ(ref.error().message().find('\n'), std::string::npos) << "not one line";
}

// ---------------------------------------------------------------------------
// Hand-written: Docker's test tables and our own edge cases.

TEST(ReferenceParse, DockerHubNormalisation) {
  const std::vector<Valid> cases = {
      // input, str, domain, path, tag, digest, familiar
      {"nginx", "docker.io/library/nginx:latest", "docker.io", "library/nginx", "latest", "",
       "nginx:latest"},
      {"nginx:1.25", "docker.io/library/nginx:1.25", "docker.io", "library/nginx", "1.25", "",
       "nginx:1.25"},
      {"library/nginx", "docker.io/library/nginx:latest", "docker.io", "library/nginx", "latest",
       "", "nginx:latest"},
      {"docker.io/nginx", "docker.io/library/nginx:latest", "docker.io", "library/nginx", "latest",
       "", "nginx:latest"},
      {"docker.io/library/nginx", "docker.io/library/nginx:latest", "docker.io", "library/nginx",
       "latest", "", "nginx:latest"},
      {"index.docker.io/nginx", "docker.io/library/nginx:latest", "docker.io", "library/nginx",
       "latest", "", "nginx:latest"},
      {"index.docker.io/library/nginx:alpine", "docker.io/library/nginx:alpine", "docker.io",
       "library/nginx", "alpine", "", "nginx:alpine"},
      {"index.docker.io/user/app", "docker.io/user/app:latest", "docker.io", "user/app", "latest",
       "", "user/app:latest"},
      {"user/app", "docker.io/user/app:latest", "docker.io", "user/app", "latest", "",
       "user/app:latest"},
      {"dmcgowan/myapp:latest", "docker.io/dmcgowan/myapp:latest", "docker.io", "dmcgowan/myapp",
       "latest", "", "dmcgowan/myapp:latest"},
      {"docker.io/mcgowan/myapp:latest", "docker.io/mcgowan/myapp:latest", "docker.io",
       "mcgowan/myapp", "latest", "", "mcgowan/myapp:latest"},
      // library/ is only dropped from the familiar name when nothing nests under it.
      {"docker.io/library/foo/bar", "docker.io/library/foo/bar:latest", "docker.io",
       "library/foo/bar", "latest", "", "library/foo/bar:latest"},
      {"library/foo/bar", "docker.io/library/foo/bar:latest", "docker.io", "library/foo/bar",
       "latest", "", "library/foo/bar:latest"},
      {"store/foo/bar", "docker.io/store/foo/bar:latest", "docker.io", "store/foo/bar", "latest",
       "", "store/foo/bar:latest"},
      {"other/library", "docker.io/other/library:latest", "docker.io", "other/library", "latest",
       "", "other/library:latest"},
      {"nonlibrary/ubuntu", "docker.io/nonlibrary/ubuntu:latest", "docker.io", "nonlibrary/ubuntu",
       "latest", "", "nonlibrary/ubuntu:latest"},
      {"ubuntu-12.04-base", "docker.io/library/ubuntu-12.04-base:latest", "docker.io",
       "library/ubuntu-12.04-base", "latest", "", "ubuntu-12.04-base:latest"},
      {"index.docker.io/library/ubuntu-12.04-base", "docker.io/library/ubuntu-12.04-base:latest",
       "docker.io", "library/ubuntu-12.04-base", "latest", "", "ubuntu-12.04-base:latest"},
      {"docker/migrator", "docker.io/docker/migrator:latest", "docker.io", "docker/migrator",
       "latest", "", "docker/migrator:latest"},
      {"test_com/foo", "docker.io/test_com/foo:latest", "docker.io", "test_com/foo", "latest", "",
       "test_com/foo:latest"},
      // Only "docker.io" itself is Hub; other spellings are other registries.
      {"docker.io:443/foo", "docker.io:443/foo:latest", "docker.io:443", "foo", "latest", "",
       "docker.io:443/foo:latest"},
      {"Docker.io/foo", "Docker.io/foo:latest", "Docker.io", "foo", "latest", "",
       "Docker.io/foo:latest"},
      {"registry-1.docker.io/library/nginx", "registry-1.docker.io/library/nginx:latest",
       "registry-1.docker.io", "library/nginx", "latest", "",
       "registry-1.docker.io/library/nginx:latest"},
  };
  for (const auto& c : cases) expect_valid(c);
}

TEST(ReferenceParse, DomainDetection) {
  const std::vector<Valid> cases = {
      {"localhost/fooo", "localhost/fooo:latest", "localhost", "fooo", "latest", "",
       "localhost/fooo:latest"},
      {"localhost/fooo/bar", "localhost/fooo/bar:latest", "localhost", "fooo/bar", "latest", "",
       "localhost/fooo/bar:latest"},
      {"localhost:5000/x", "localhost:5000/x:latest", "localhost:5000", "x", "latest", "",
       "localhost:5000/x:latest"},
      {"localhost/library/debian", "localhost/library/debian:latest", "localhost", "library/debian",
       "latest", "", "localhost/library/debian:latest"},
      // Upper case cannot be a Hub namespace, so Docker takes it as a host name.
      {"LOCALDOMAIN/fooo", "LOCALDOMAIN/fooo:latest", "LOCALDOMAIN", "fooo", "latest", "",
       "LOCALDOMAIN/fooo:latest"},
      {"LOCALDOMAIN/fooo/bar", "LOCALDOMAIN/fooo/bar:latest", "LOCALDOMAIN", "fooo/bar", "latest",
       "", "LOCALDOMAIN/fooo/bar:latest"},
      {"Foo/bar", "Foo/bar:latest", "Foo", "bar", "latest", "", "Foo/bar:latest"},
      {"FOO/bar", "FOO/bar:latest", "FOO", "bar", "latest", "", "FOO/bar:latest"},
      {"Docker/docker", "Docker/docker:latest", "Docker", "docker", "latest", "",
       "Docker/docker:latest"},
      {"Asdf.com/foo/bar", "Asdf.com/foo/bar:latest", "Asdf.com", "foo/bar", "latest", "",
       "Asdf.com/foo/bar:latest"},
      {"127.0.0.1:8000/private/moonbase", "127.0.0.1:8000/private/moonbase:latest",
       "127.0.0.1:8000", "private/moonbase", "latest", "",
       "127.0.0.1:8000/private/moonbase:latest"},
      {"127.0.0.1:8000/privatebase", "127.0.0.1:8000/privatebase:latest", "127.0.0.1:8000",
       "privatebase", "latest", "", "127.0.0.1:8000/privatebase:latest"},
      {"127.0.0.1:5000/docker/docker", "127.0.0.1:5000/docker/docker:latest", "127.0.0.1:5000",
       "docker/docker", "latest", "", "127.0.0.1:5000/docker/docker:latest"},
      {"example.com/private/moonbase", "example.com/private/moonbase:latest", "example.com",
       "private/moonbase", "latest", "", "example.com/private/moonbase:latest"},
      {"example.com:8000/privatebasee", "example.com:8000/privatebasee:latest", "example.com:8000",
       "privatebasee", "latest", "", "example.com:8000/privatebasee:latest"},
      {"test.com/repo:tag", "test.com/repo:tag", "test.com", "repo", "tag", "",
       "test.com/repo:tag"},
      {"test:5000/repo", "test:5000/repo:latest", "test:5000", "repo", "latest", "",
       "test:5000/repo:latest"},
      {"test:5000/repo:tag", "test:5000/repo:tag", "test:5000", "repo", "tag", "",
       "test:5000/repo:tag"},
      {"test-com:8080/foo", "test-com:8080/foo:latest", "test-com:8080", "foo", "latest", "",
       "test-com:8080/foo:latest"},
      {"xn--n3h.com:18080/foo", "xn--n3h.com:18080/foo:latest", "xn--n3h.com:18080", "foo",
       "latest", "", "xn--n3h.com:18080/foo:latest"},
      {"sub-dom1.foo.com/bar/baz/quux:some-long-tag", "sub-dom1.foo.com/bar/baz/quux:some-long-tag",
       "sub-dom1.foo.com", "bar/baz/quux", "some-long-tag", "",
       "sub-dom1.foo.com/bar/baz/quux:some-long-tag"},
      {"b.gcr.io/test.example.com/my-app:test.example.com",
       "b.gcr.io/test.example.com/my-app:test.example.com", "b.gcr.io", "test.example.com/my-app",
       "test.example.com", "", "b.gcr.io/test.example.com/my-app:test.example.com"},
      {"xn--n3h.com/myimage:xn--n3h.com", "xn--n3h.com/myimage:xn--n3h.com", "xn--n3h.com",
       "myimage", "xn--n3h.com", "", "xn--n3h.com/myimage:xn--n3h.com"},
      {"xn--7o8h.com/myimage:xn--7o8h.com@" + kSha, "xn--7o8h.com/myimage:xn--7o8h.com@" + kSha,
       "xn--7o8h.com", "myimage", "xn--7o8h.com", kSha,
       "xn--7o8h.com/myimage:xn--7o8h.com@" + kSha},
      {"192.168.1.1/repo", "192.168.1.1/repo:latest", "192.168.1.1", "repo", "latest", "",
       "192.168.1.1/repo:latest"},
      {"192.168.1.1:5000/repo:5050", "192.168.1.1:5000/repo:5050", "192.168.1.1:5000", "repo",
       "5050", "", "192.168.1.1:5000/repo:5050"},
      {"192.168.0.1:8/debian", "192.168.0.1:8/debian:latest", "192.168.0.1:8", "debian", "latest",
       "", "192.168.0.1:8/debian:latest"},
      {"a.b/c", "a.b/c:latest", "a.b", "c", "latest", "", "a.b/c:latest"},
      {"0101.com/x", "0101.com/x:latest", "0101.com", "x", "latest", "", "0101.com/x:latest"},
      // Bracketed IPv6, with and without a port.
      {"[2001:db8::1]/repo", "[2001:db8::1]/repo:latest", "[2001:db8::1]", "repo", "latest", "",
       "[2001:db8::1]/repo:latest"},
      {"[2001:db8:1:2:3:4:5:6]/repo:tag", "[2001:db8:1:2:3:4:5:6]/repo:tag",
       "[2001:db8:1:2:3:4:5:6]", "repo", "tag", "", "[2001:db8:1:2:3:4:5:6]/repo:tag"},
      {"[2001:db8::1]:5000/repo@" + kSha, "[2001:db8::1]:5000/repo@" + kSha, "[2001:db8::1]:5000",
       "repo", "", kSha, "[2001:db8::1]:5000/repo@" + kSha},
      {"[2001:db8::]:5000/repo", "[2001:db8::]:5000/repo:latest", "[2001:db8::]:5000", "repo",
       "latest", "", "[2001:db8::]:5000/repo:latest"},
      {"[::1]:5000/repo:tag@" + kSha, "[::1]:5000/repo:tag@" + kSha, "[::1]:5000", "repo", "tag",
       kSha, "[::1]:5000/repo:tag@" + kSha},
      {"[fc00:1:2:3:4:5:6:7]:5000/library/debian",
       "[fc00:1:2:3:4:5:6:7]:5000/library/debian:latest", "[fc00:1:2:3:4:5:6:7]:5000",
       "library/debian", "latest", "", "[fc00:1:2:3:4:5:6:7]:5000/library/debian:latest"},
      {"[2001:0DB8:85a3:0000:0000:8a2e:0370:7334]:443/x",
       "[2001:0DB8:85a3:0000:0000:8a2e:0370:7334]:443/x:latest",
       "[2001:0DB8:85a3:0000:0000:8a2e:0370:7334]:443", "x", "latest", "",
       "[2001:0DB8:85a3:0000:0000:8a2e:0370:7334]:443/x:latest"},
  };
  for (const auto& c : cases) expect_valid(c);
}

// Without a '/', the text is a Hub name however host-like it looks; a
// trailing ":5000" is then a tag. Docker does the same (a FIXME upstream).
TEST(ReferenceParse, SingleComponentIsAlwaysHubName) {
  const std::vector<Valid> cases = {
      {"test_com", "docker.io/library/test_com:latest", "docker.io", "library/test_com", "latest",
       "", "test_com:latest"},
      {"test.com:tag", "docker.io/library/test.com:tag", "docker.io", "library/test.com", "tag", "",
       "test.com:tag"},
      {"test.com:5000", "docker.io/library/test.com:5000", "docker.io", "library/test.com", "5000",
       "", "test.com:5000"},
      {"foo_bar.com:8080", "docker.io/library/foo_bar.com:8080", "docker.io", "library/foo_bar.com",
       "8080", "", "foo_bar.com:8080"},
      {"foo/foo_bar.com:8080", "docker.io/foo/foo_bar.com:8080", "docker.io", "foo/foo_bar.com",
       "8080", "", "foo/foo_bar.com:8080"},
      {"192.168.1.1", "docker.io/library/192.168.1.1:latest", "docker.io", "library/192.168.1.1",
       "latest", "", "192.168.1.1:latest"},
      {"192.168.1.1:5000", "docker.io/library/192.168.1.1:5000", "docker.io", "library/192.168.1.1",
       "5000", "", "192.168.1.1:5000"},
      {"localhost", "docker.io/library/localhost:latest", "docker.io", "library/localhost",
       "latest", "", "localhost:latest"},
      {"localhost:8080@" + kSha, "docker.io/library/localhost:8080@" + kSha, "docker.io",
       "library/localhost", "8080", kSha, "localhost:8080@" + kSha},
      {"localhost@" + kSha, "docker.io/library/localhost@" + kSha, "docker.io", "library/localhost",
       "", kSha, "localhost@" + kSha},
      // "sha256:<hex>" reads as name sha256, tag <hex> (ParseNormalizedNamed agrees).
      {kSha, "docker.io/library/sha256:" + kHex64, "docker.io", "library/sha256", kHex64, "",
       "sha256:" + kHex64},
  };
  for (const auto& c : cases) expect_valid(c);
}

TEST(ReferenceParse, TagsAndDigests) {
  const std::vector<Valid> cases = {
      {"lowercase:Uppercase", "docker.io/library/lowercase:Uppercase", "docker.io",
       "library/lowercase", "Uppercase", "", "lowercase:Uppercase"},
      {"a:_tag", "docker.io/library/a:_tag", "docker.io", "library/a", "_tag", "", "a:_tag"},
      {"a:0", "docker.io/library/a:0", "docker.io", "library/a", "0", "", "a:0"},
      {"a:v1.2.3-rc.1_b", "docker.io/library/a:v1.2.3-rc.1_b", "docker.io", "library/a",
       "v1.2.3-rc.1_b", "", "a:v1.2.3-rc.1_b"},
      {"a:x..--__", "docker.io/library/a:x..--__", "docker.io", "library/a", "x..--__", "",
       "a:x..--__"},
      {"redis@sha256:dbcc1c35ac38df41fd2f5e4130b32ffdb93ebae8b3dbe638c23575912276fc9c",
       "docker.io/library/"
       "redis@sha256:dbcc1c35ac38df41fd2f5e4130b32ffdb93ebae8b3dbe638c23575912276fc9c",
       "docker.io", "library/redis", "",
       "sha256:dbcc1c35ac38df41fd2f5e4130b32ffdb93ebae8b3dbe638c23575912276fc9c",
       "redis@sha256:dbcc1c35ac38df41fd2f5e4130b32ffdb93ebae8b3dbe638c23575912276fc9c"},
      // Tag and digest together: both kept, both printed; the digest is pulled.
      {"busybox:latest@" + kSha2, "docker.io/library/busybox:latest@" + kSha2, "docker.io",
       "library/busybox", "latest", kSha2, "busybox:latest@" + kSha2},
      {"gcr.io/library/busybox:latest@" + kSha2, "gcr.io/library/busybox:latest@" + kSha2, "gcr.io",
       "library/busybox", "latest", kSha2, "gcr.io/library/busybox:latest@" + kSha2},
      {"test:5000/repo@" + kSha, "test:5000/repo@" + kSha, "test:5000", "repo", "", kSha,
       "test:5000/repo@" + kSha},
      {"test:5000/repo:tag@" + kSha, "test:5000/repo:tag@" + kSha, "test:5000", "repo", "tag", kSha,
       "test:5000/repo:tag@" + kSha},
      {"x@" + kSha512, "docker.io/library/x@" + kSha512, "docker.io", "library/x", "", kSha512,
       "x@" + kSha512},
      {"other.com/named@sha256:1234567890098765432112345667890098765432112345667890098765432112",
       "other.com/named@sha256:1234567890098765432112345667890098765432112345667890098765432112",
       "other.com", "named", "",
       "sha256:1234567890098765432112345667890098765432112345667890098765432112",
       "other.com/named@sha256:1234567890098765432112345667890098765432112345667890098765432112"},
  };
  for (const auto& c : cases) expect_valid(c);
}

TEST(ReferenceParse, PathComponents) {
  auto hub = [](const std::string& input, const std::string& path, const std::string& familiar) {
    return Valid{input,
                 "docker.io/" + path + ":latest",
                 "docker.io",
                 path,
                 "latest",
                 "",
                 familiar + ":latest"};
  };
  const std::vector<Valid> cases = {
      hub("docker-rules/docker", "docker-rules/docker", "docker-rules/docker"),
      hub("docker---rules/docker", "docker---rules/docker", "docker---rules/docker"),
      hub("dock__er/docker", "dock__er/docker", "dock__er/docker"),
      hub("do__cker/docker", "do__cker/docker", "do__cker/docker"),
      hub("d/docker", "d/docker", "d/docker"),
      hub("jess/t", "jess/t", "jess/t"),
      hub("0/0", "0/0", "0/0"),
      hub("a/a/a/a", "a/a/a/a", "a/a/a/a"),
      hub("aa-a/a", "aa-a/a", "aa-a/a"),
      hub("foo_bar", "library/foo_bar", "foo_bar"),
      hub("foo.bar", "library/foo.bar", "foo.bar"),
      hub("thisisthesongthatneverendsitgoesonandonandonthisisthesongthatnev",
          "library/thisisthesongthatneverendsitgoesonandonandonthisisthesongthatnev",
          "thisisthesongthatneverendsitgoesonandonandonthisisthesongthatnev"),
      // A 64-hex name is fine once it cannot be mistaken for an image ID.
      hub("docker.io/" + kImageId, "library/" + kImageId, kImageId),
      hub(kImageId.substr(0, 63), "library/" + kImageId.substr(0, 63), kImageId.substr(0, 63)),
      hub("dbcc1", "library/dbcc1", "dbcc1"),
      {"registry.io/foo/project--id.module--name.ver---sion--name",
       "registry.io/foo/project--id.module--name.ver---sion--name:latest", "registry.io",
       "foo/project--id.module--name.ver---sion--name", "latest", "",
       "registry.io/foo/project--id.module--name.ver---sion--name:latest"},
      {"example.com/some_separator__underscore/myimage",
       "example.com/some_separator__underscore/myimage:latest", "example.com",
       "some_separator__underscore/myimage", "latest", "",
       "example.com/some_separator__underscore/myimage:latest"},
  };
  for (const auto& c : cases) expect_valid(c);
}

TEST(ReferenceParse, LengthLimits) {
  // The 255 limit is on the path, with the library/ Docker adds; the domain
  // does not count (as in current distribution/reference).
  const std::string a255(255, 'a');
  const std::string nested = repeat("a/", 127) + "a";  // 255 characters
  const std::string tag128 = "t" + std::string(127, '1');
  const std::vector<Valid> cases = {
      {"example.com/" + a255 + ":tag", "example.com/" + a255 + ":tag", "example.com", a255, "tag",
       "", "example.com/" + a255 + ":tag"},
      {nested + ":tag-puts-this-over-max", "docker.io/" + nested + ":tag-puts-this-over-max",
       "docker.io", nested, "tag-puts-this-over-max", "", nested + ":tag-puts-this-over-max"},
      {std::string(247, 'a'), "docker.io/library/" + std::string(247, 'a') + ":latest", "docker.io",
       "library/" + std::string(247, 'a'), "latest", "", std::string(247, 'a') + ":latest"},
      {"x:" + tag128, "docker.io/library/x:" + tag128, "docker.io", "library/x", tag128, "",
       "x:" + tag128},
  };
  for (const auto& c : cases) expect_valid(c);

  expect_invalid({"example.com/" + std::string(256, 'a'), "longer than 255 characters"});
  expect_invalid({"domain/" + std::string(256, 'a') + ":tag", "longer than 255 characters"});
  expect_invalid({std::string(248, 'a'), "longer than 255 characters"});
  expect_invalid({repeat("a/", 128) + "a", "longer than 255 characters"});
  expect_invalid({"x:" + tag128 + "1", "tag is longer than 128 characters"});
}

TEST(ReferenceParse, ExactMessages) {
  struct Case {
    std::string input, message;
  };
  const std::vector<Case> cases = {
      {"Foo", "invalid reference \"Foo\": repository name must be lowercase"},
      {"foo/Bar", "invalid reference \"foo/Bar\": repository name must be lowercase"},
      {"x:" + std::string(129, 'a'),
       "invalid reference \"x:" + std::string(129, 'a') + "\": tag is longer than 128 characters"},
      {"a//b", "invalid reference \"a//b\": empty path component"},
      {"x@sha256:abc",
       "invalid reference \"x@sha256:abc\": sha256 digest needs 64 hex characters, got 3"},
      {"", "invalid reference \"\": reference is empty"},
      {"nginx:", "invalid reference \"nginx:\": empty tag after ':'"},
      {"a b", "invalid reference \"a b\": invalid character \" \" in repository name"},
      {"a\nb", "invalid reference \"a\\x0ab\": invalid character \"\\x0a\" in repository name"},
      {"x@md5:d41d8cd98f00b204e9800998ecf8427e",
       "invalid reference \"x@md5:d41d8cd98f00b204e9800998ecf8427e\": unsupported digest "
       "algorithm \"md5\" (imgpull handles sha256 and sha512)"},
      {"a\"b", "invalid reference \"a\\\"b\": invalid character \"\\\"\" in repository name"},
  };
  for (const auto& c : cases) {
    auto ref = Reference::parse(c.input);
    ASSERT_FALSE(ref.ok()) << c.input;
    EXPECT_EQ(ref.error().message(), c.message);
  }
}

TEST(ReferenceParse, Invalid) {
  const ErrorCode kUnsupported = ErrorCode::kUnsupported;
  const std::vector<Invalid> cases = {
      // Empty and missing parts.
      {"", "reference is empty"},
      {":justtag", "repository name is missing"},
      {":", "repository name is missing"},
      {"@" + kSha, "repository name is missing"},
      {"nginx:", "empty tag after ':'"},
      {"nginx:@" + kSha, "empty tag after ':'"},
      {"nginx@", "empty digest after '@'"},
      {"nginx:latest@", "empty digest after '@'"},
      {"foo.com/", "repository path is missing after domain \"foo.com\""},
      {"localhost:5000/", "repository path is missing after domain"},
      {"docker.io/", "repository path is missing after domain"},
      {"docker/", "empty path component"},
      {"/nginx", "empty path component"},
      {"a/b/", "empty path component"},
      {"docker///docker", "empty path component"},
      {"docker.io/docker///docker", "empty path component"},
      {"a/a/a/a/", "empty path component"},
      // Case.
      {"Uppercase:tag", "repository name must be lowercase"},
      {"Nginx", "repository name must be lowercase"},
      {"docker/Docker", "repository name must be lowercase"},
      {"docker.io/docker/Docker", "repository name must be lowercase"},
      {"test:5000/Uppercase/lowercase:tag", "repository name must be lowercase"},
      {"Foo/FarB", "repository name must be lowercase"},
      // An image ID is not a name.
      {kImageId, "image ID"},
      {"dbcc1c35ac38df41fd2f5e4130b32ffdb93ebae8b3dbe638c23575912276fc9c", "image ID"},
      // Path characters and separators.
      {"aa/asdf$$^/aa", "invalid character \"$\" in repository name"},
      {"a^a", "invalid character \"^\" in repository name"},
      {"foo:bar:baz", "invalid character \":\" in repository name"},
      {" nginx", "invalid character \" \" in repository name"},
      {"nginx\t", "invalid character \"\\x09\" in repository name"},
      {"ngi\xffnx", "invalid character \"\\xff\" in repository name"},
      {"-docker", "must start and end with a lowercase letter or digit"},
      {"-docker/docker", "must start and end"},
      {"docker-/docker", "must start and end"},
      {"-docker-/docker", "must start and end"},
      {"foo/-bar", "must start and end"},
      {"foo/bar-", "must start and end"},
      {"a-/a/a/a", "must start and end"},
      {"foo.com/a-/a/a", "must start and end"},
      {"____/____", "must start and end"},
      {"_docker/_docker", "must start and end"},
      {"docker_/docker_", "must start and end"},
      {"example.com/__underscore/myimage", "must start and end"},
      {"example.com/.dots/myimage", "must start and end"},
      {"example.com/..dots/myimage", "must start and end"},
      // Docker's "dock..er/docker" cases fail as host names (a '.' makes the
      // first component a domain), so the separators are also tried deeper.
      {"dock..er/docker", "is not a valid host name"},
      {"dock_.er/docker", "is not a valid host name"},
      {"dock-.er/docker", "is not a valid host name"},
      {"user/dock..er", "invalid separator \"..\""},
      {"user/dock_.er", "invalid separator \"_.\""},
      {"user/dock-.er", "invalid separator \"-.\""},
      {"example.com/nodouble..dots/myimage", "invalid separator \"..\""},
      {"a___b", "invalid separator \"___\""},
      // Domains.
      {"https://github.com/docker/docker", "domain \"https:\" has an invalid port \"\""},
      {"test.com:http/bar", "invalid port \"http\""},
      {"foo.com:http/bar", "invalid port \"http\""},
      {"localhost:http/name@" + kSha, "invalid port \"http\""},
      {"fc00::1:5000/debian", "invalid port \":1:5000\""},
      {"-docker.io/docker/docker", "is not a valid host name"},
      {"docker./docker", "is not a valid host name"},
      {".docker/docker", "is not a valid host name"},
      {"do..cker/docker", "is not a valid host name"},
      {"do__cker:8080/docker", "is not a valid host name"},
      {"foo_bar.com:8080/app", "is not a valid host name"},
      {"bad_hostname.com:8080/myapp:tag", "is not a valid host name"},
      // Docker's name regexp quietly falls back to no domain here, giving a
      // reference whose registry is "" and path "foo_bar.com/app"; no
      // registry can be reached from that, so imgpull says what is wrong.
      {"foo_bar.com/app", "is not a valid host name"},
      {"ab-.com/x", "is not a valid host name"},
      {"ab.-com/x", "is not a valid host name"},
      {"ab.com-/x", "is not a valid host name"},
      {"[fe80::1%eth0]:5000/repo", "bracketed IPv6 address"},
      {"[fe80::1%eth0]:5000/debian", "bracketed IPv6 address"},
      {"[2001:db8:3:4::192.0.2.33]:5000/debian", "bracketed IPv6 address"},
      {"[]:5000/x", "bracketed IPv6 address"},
      {"[::1/x", "bracketed IPv6 address"},
      {"[fd00:1:2::3]75050/x", "has text after ']'"},
      {"[fd00:1:2::3]::75050/x", "invalid port \":75050\""},
      {"[fd00:1:2::3]:/x", "invalid port \"\""},
      // An IPv6 domain needs a path after it, else it is read as a Hub name.
      {"[2001:db8::1]", "invalid character \"[\" in repository name"},
      {"[2001:db8::1]:5000", "invalid character \"[\" in repository name"},
      {"[2001:db8::1]:tag", "invalid character \"[\" in repository name"},
      {"[fc00::1]", "invalid character \"[\" in repository name"},
      {"[fe80::1%@invalidzone]:5000/repo", "invalid character \"[\" in repository name"},
      // Tags.
      {"x:-tag", "tag must start with a letter, digit or '_', not \"-\""},
      {"x:.tag", "tag must start with a letter, digit or '_'"},
      {"registry.com:8080/myapp:invalid~tag", "invalid character \"~\" in tag"},
      {"x:ta g", "invalid character \" \" in tag"},
      {"x:tag+1", "invalid character \"+\" in tag"},
      // Digests.
      {"repo@sha256:ffffffffffffffffffffffffffffffffff",
       "sha256 digest needs 64 hex characters, got 34"},
      {"registry.com:8080/myapp@sha256:badbadbadbad", "needs 64 hex characters, got 12"},
      {"x@sha256:" + kHex64 + "0", "needs 64 hex characters, got 65"},
      {"x@sha256:", "needs 64 hex characters, got 0"},
      {"x@sha512:" + kHex64, "sha512 digest needs 128 hex characters, got 64"},
      {"x@sha256:" + std::string(64, 'F'), "sha256 digest must be lowercase hex, found \"F\""},
      {"x@sha256:" + std::string(63, 'f') + "g", "must be lowercase hex, found \"g\""},
      {"registry.com:8080/myapp@bad", "digest \"bad\" must be ALGORITHM:HEX"},
      {"registry.com:8080/myapp@2bad", "must be ALGORITHM:HEX"},
      {"x@:" + kHex64, "must be ALGORITHM:HEX"},
      {"x@" + kSha + "@" + kSha, "needs 64 hex characters, got 136"},
      {"validname@invaliddigest:" + kHex64, "unsupported digest algorithm \"invaliddigest\"",
       kUnsupported},
      {"x@md5:d41d8cd98f00b204e9800998ecf8427e", "unsupported digest algorithm \"md5\"",
       kUnsupported},
      {"x@SHA256:" + kHex64, "unsupported digest algorithm \"SHA256\"", kUnsupported},
      {"x@sha384:" + std::string(96, 'a'), "unsupported digest algorithm", kUnsupported},
  };
  for (const auto& c : cases) expect_invalid(c);
}

// ---------------------------------------------------------------------------
// Generated sweeps.

// Every domain form × every path form × every tag/digest form.
TEST(ReferenceGenerated, DomainsPathsSuffixes) {
  struct Domain {
    std::string input, domain;
  };
  const std::vector<Domain> domains = {
      {"", "docker.io"},
      {"docker.io", "docker.io"},
      {"index.docker.io", "docker.io"},
      {"localhost", "localhost"},
      {"localhost:5000", "localhost:5000"},
      {"example.com", "example.com"},
      {"registry.example.com:443", "registry.example.com:443"},
      {"192.168.1.1:5000", "192.168.1.1:5000"},
      {"[::1]", "[::1]"},
      {"[::1]:5000", "[::1]:5000"},
      {"[2001:db8::1]:5000", "[2001:db8::1]:5000"},
      {"LOCALDOMAIN", "LOCALDOMAIN"},
      {"test-com:8080", "test-com:8080"},
  };
  // The input path; its path and familiar name on Docker Hub.
  struct Path {
    std::string input, hub_path, hub_familiar;
  };
  const std::vector<Path> paths = {
      {"nginx", "library/nginx", "nginx"},
      {"library/nginx", "library/nginx", "nginx"},
      {"user/app", "user/app", "user/app"},
      {"library/foo/bar", "library/foo/bar", "library/foo/bar"},
      {"a/b/c/d", "a/b/c/d", "a/b/c/d"},
      {"foo_bar", "library/foo_bar", "foo_bar"},
      {"foo__bar.baz", "library/foo__bar.baz", "foo__bar.baz"},
      {"x---y/z-9", "x---y/z-9", "x---y/z-9"},
      {"0", "library/0", "0"},
  };
  struct Suffix {
    std::string input, tag, digest;  // the tag parse gives ("latest" if none given)
  };
  const std::vector<Suffix> suffixes = {
      {"", "latest", ""},           {":tag", "tag", ""},
      {":Latest", "Latest", ""},    {":1.2.3-rc_1", "1.2.3-rc_1", ""},
      {"@" + kSha, "", kSha},       {":v1@" + kSha, "v1", kSha},
      {"@" + kSha512, "", kSha512},
  };
  int count = 0;
  for (const auto& d : domains) {
    for (const auto& p : paths) {
      for (const auto& s : suffixes) {
        bool hub = d.domain == "docker.io";
        std::string path = hub ? p.hub_path : p.input;
        std::string familiar_name = hub ? p.hub_familiar : d.domain + "/" + p.input;
        std::string suffix =
            (s.tag.empty() ? "" : ":" + s.tag) + (s.digest.empty() ? "" : "@" + s.digest);
        expect_valid({(d.input.empty() ? "" : d.input + "/") + p.input + s.input,
                      d.domain + "/" + path + suffix, d.domain, path, s.tag, s.digest,
                      familiar_name + suffix});
        ++count;
      }
    }
  }
  EXPECT_EQ(count, 13 * 9 * 7);
}

// Every separator of up to three characters between two alphanumerics, and
// every one of them at either end of a component.
TEST(ReferenceGenerated, Separators) {
  const std::string chars = "._-";
  std::vector<std::string> seps;
  for (char a : chars) {
    seps.push_back(std::string(1, a));
    for (char b : chars) {
      seps.push_back(std::string{a, b});
      for (char c : chars) seps.push_back(std::string{a, b, c});
    }
  }
  ASSERT_EQ(seps.size(), 39u);
  for (const auto& sep : seps) {
    bool allowed =
        sep == "." || sep == "_" || sep == "__" || sep.find_first_not_of('-') == std::string::npos;
    std::string input = "example.com/a" + sep + "b";
    if (allowed) {
      expect_valid({input, input + ":latest", "example.com", "a" + sep + "b", "latest", "",
                    input + ":latest"});
    } else {
      expect_invalid({input, "invalid separator \"" + sep + "\""});
    }
    expect_invalid({"example.com/" + sep + "a", "must start and end"});
    expect_invalid({"example.com/a" + sep, "must start and end"});
    expect_invalid({"user/" + sep + "/x", "must start and end"});
  }
}

// Every byte but NUL inside a path component and inside a tag.
TEST(ReferenceGenerated, Characters) {
  for (int i = 1; i < 256; ++i) {
    char c = static_cast<char>(i);
    bool lower_alnum = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
    bool upper = c >= 'A' && c <= 'Z';
    bool word = lower_alnum || upper || c == '_';
    std::string in_path = std::string("user/a") + c + "b";
    std::string in_tag = std::string("user/x:a") + c + "b";
    if (c == '/') continue;  // structural: covered by the tables above
    if (lower_alnum || c == '.' || c == '_' || c == '-') {
      std::string path = std::string("user/a") + c + "b";
      expect_valid({in_path, "docker.io/" + path + ":latest", "docker.io", path, "latest", "",
                    path + ":latest"});
    } else if (upper) {
      expect_invalid({in_path, "repository name must be lowercase"});
    } else if (c != ':' && c != '@') {
      expect_invalid({in_path, "in repository name"});
    }
    if (word || c == '.' || c == '-') {
      std::string tag = std::string("a") + c + "b";
      expect_valid(
          {in_tag, "docker.io/user/x:" + tag, "docker.io", "user/x", tag, "", "user/x:" + tag});
    } else if (c != ':' && c != '@') {
      expect_invalid({in_tag, "in tag"});
    } else {
      expect_invalid({in_tag, ""});  // ':' and '@' re-split the text; still invalid
    }
  }
}

// Tag lengths around the limit, and path lengths around 255 with and
// without the library/ prefix and with a domain.
TEST(ReferenceGenerated, Lengths) {
  for (size_t n = 1; n <= 131; n += (n < 125 ? 31 : 1)) {
    std::string tag = std::string(n, 'v');
    if (n <= 128) {
      expect_valid({"x:" + tag, "docker.io/library/x:" + tag, "docker.io", "library/x", tag, "",
                    "x:" + tag});
    } else {
      expect_invalid({"x:" + tag, "tag is longer than 128 characters"});
    }
  }
  for (size_t n = 250; n <= 258; ++n) {
    std::string name(n, 'a');
    std::string path = "library/" + std::string(n - 8, 'a');  // 'library/' is 8 characters
    // On Hub a one-component name grows by "library/".
    if (path.size() <= 255) {
      expect_valid({name.substr(0, n - 8), "docker.io/" + path + ":latest", "docker.io", path,
                    "latest", "", name.substr(0, n - 8) + ":latest"});
    } else {
      expect_invalid({name.substr(0, n - 8), "longer than 255 characters"});
    }
    std::string deep = "ns/" + std::string(n - 3, 'b');
    if (n <= 255) {
      expect_valid({"registry.example.com:5000/" + deep,
                    "registry.example.com:5000/" + deep + ":latest", "registry.example.com:5000",
                    deep, "latest", "", "registry.example.com:5000/" + deep + ":latest"});
    } else {
      expect_invalid({"registry.example.com:5000/" + deep, "longer than 255 characters"});
    }
  }
}

// Each bad domain, before each of a few good paths and suffixes.
TEST(ReferenceGenerated, BadDomains) {
  const std::vector<std::pair<std::string, std::string>> domains = {
      {"https:", "invalid port"},
      {"example.com:", "invalid port"},
      {"example.com:80a", "invalid port"},
      {"example.com:-1", "invalid port"},
      {"localhost:5000:1", "invalid port"},
      {"exa_mple.com", "not a valid host name"},
      {"-example.com", "not a valid host name"},
      {"example-.com", "not a valid host name"},
      {"example..com", "not a valid host name"},
      {".example.com", "not a valid host name"},
      {"example.com.", "not a valid host name"},
      {"ex ample.com", "not a valid host name"},
      {"[::g]:5000", "bracketed IPv6"},
      {"[fe80::1%25eth0]", "bracketed IPv6"},
      {"[1.2.3.4]", "bracketed IPv6"},
      {"[::1]x", "text after ']'"},
      {"[::1]:x", "invalid port"},
  };
  const std::vector<std::string> rests = {"x", "user/app:tag", "a/b@" + kSha};
  for (const auto& [domain, message] : domains) {
    for (const auto& rest : rests) expect_invalid({domain + "/" + rest, message});
  }
}

// Digest lengths around each algorithm's, and the algorithms imgpull lacks.
TEST(ReferenceGenerated, Digests) {
  struct Algorithm {
    std::string name;
    size_t hex;
  };
  for (const auto& alg : {Algorithm{"sha256", 64}, Algorithm{"sha512", 128}}) {
    for (size_t n :
         {size_t{0}, size_t{1}, size_t{32}, alg.hex - 1, alg.hex, alg.hex + 1, size_t{200}}) {
      std::string digest = alg.name + ":" + std::string(n, '0');
      std::string input = "localhost:5000/x@" + digest;
      if (n == alg.hex) {
        expect_valid({input, input, "localhost:5000", "x", "", digest, input});
      } else {
        expect_invalid({input, alg.name + " digest needs " + std::to_string(alg.hex) +
                                   " hex characters, got " + std::to_string(n)});
      }
    }
  }
  for (const std::string alg : {"md5", "sha1", "sha384", "blake3", "sha256+b64", "Sha256"}) {
    expect_invalid(
        {"x@" + alg + ":" + kHex64, "unsupported digest algorithm", ErrorCode::kUnsupported});
  }
}

// ---------------------------------------------------------------------------
// Accessors on parsed references.

TEST(ReferenceAccessors, RegistryHostAndSelector) {
  struct Case {
    std::string input, registry_host, manifest_selector, name, familiar_name;
  };
  const std::vector<Case> cases = {
      {"nginx", "registry-1.docker.io", "latest", "docker.io/library/nginx", "nginx"},
      {"index.docker.io/user/x:1", "registry-1.docker.io", "1", "docker.io/user/x", "user/x"},
      {"localhost:5000/x@" + kSha, "localhost:5000", kSha, "localhost:5000/x", "localhost:5000/x"},
      {"[::1]:5000/x:t@" + kSha, "[::1]:5000", kSha, "[::1]:5000/x", "[::1]:5000/x"},
      {"ghcr.io/o/r:v2", "ghcr.io", "v2", "ghcr.io/o/r", "ghcr.io/o/r"},
      {"registry-1.docker.io/library/x", "registry-1.docker.io", "latest",
       "registry-1.docker.io/library/x", "registry-1.docker.io/library/x"},
  };
  for (const auto& c : cases) {
    auto ref = Reference::parse(c.input);
    ASSERT_TRUE(ref.ok()) << ref.error().message();
    EXPECT_EQ(ref->registry_host(), c.registry_host) << c.input;
    EXPECT_EQ(ref->manifest_selector(), c.manifest_selector) << c.input;
    EXPECT_EQ(ref->name(), c.name) << c.input;
    EXPECT_EQ(ref->familiar_name(), c.familiar_name) << c.input;
  }
}

TEST(ReferenceAccessors, EqualityIsOnNormalisedForm) {
  auto a = Reference::parse("nginx");
  auto b = Reference::parse("index.docker.io/library/nginx:latest");
  auto c = Reference::parse("nginx:1");
  ASSERT_TRUE(a.ok() && b.ok() && c.ok());
  EXPECT_EQ(*a, *b);
  EXPECT_NE(*a, *c);
}

// A Hub namespace that reads as a registry keeps "docker.io/" in its familiar
// form, or printing it and typing it back would name another registry's image
// (Docker drops it; fuzz/reference_fuzz found "docker.io/02w.w.w1.2/x").
TEST(ReferenceFuzzRegression, FamiliarFormOfHostLikeHubNamespaceParsesBack) {
  const std::vector<Valid> cases = {
      {"docker.io/02w.w.w1.2/x", "docker.io/02w.w.w1.2/x:latest", "docker.io", "02w.w.w1.2/x",
       "latest", "", "docker.io/02w.w.w1.2/x:latest"},
      {"docker.io/localhost/x:1", "docker.io/localhost/x:1", "docker.io", "localhost/x", "1", "",
       "docker.io/localhost/x:1"},
      {"index.docker.io/a.b/c/d@" + kSha, "docker.io/a.b/c/d@" + kSha, "docker.io", "a.b/c/d", "",
       kSha, "docker.io/a.b/c/d@" + kSha},
      // Still familiar: library/x.y is one component, and so is a dotted repo name.
      {"docker.io/library/a.b", "docker.io/library/a.b:latest", "docker.io", "library/a.b",
       "latest", "", "a.b:latest"},
      {"docker.io/user/a.b", "docker.io/user/a.b:latest", "docker.io", "user/a.b", "latest", "",
       "user/a.b:latest"},
      {"docker.io/localhostx/y", "docker.io/localhostx/y:latest", "docker.io", "localhostx/y",
       "latest", "", "localhostx/y:latest"},
  };
  for (const auto& c : cases) expect_valid(c);
}

}  // namespace
}  // namespace imgpull
