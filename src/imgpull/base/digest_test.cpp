#include "imgpull/digest.h"

#include <gtest/gtest.h>

namespace imgpull {
namespace {

constexpr const char* kEmptySha256 =
    "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

TEST(Digest, HashesKnownVectors) {
  EXPECT_EQ(Digest::of("").str(), kEmptySha256);
  EXPECT_EQ(Digest::of("abc").str(),
            "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(Digest::of("abc", DigestAlgorithm::kSha512).hex().substr(0, 16), "ddaf35a193617aba");
}

TEST(Digest, StreamingEqualsOneShot) {
  Hasher h;
  h.update("a");
  h.update("bc");
  EXPECT_EQ(h.bytes_hashed(), 3u);
  EXPECT_EQ(h.finish(), Digest::of("abc"));
}

TEST(Digest, ParsesAndRoundTrips) {
  auto d = Digest::parse(kEmptySha256);
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->str(), kEmptySha256);
  EXPECT_EQ(d->short_hex(), "e3b0c44298fc");
  EXPECT_EQ(d->algorithm(), DigestAlgorithm::kSha256);
}

TEST(Digest, RejectsMalformed) {
  struct Case {
    const char* text;
    ErrorCode code;
  } cases[] = {
      {"", ErrorCode::kInvalidArgument},
      {"sha256", ErrorCode::kInvalidArgument},
      {"sha256:", ErrorCode::kInvalidArgument},
      {"sha256:abc", ErrorCode::kInvalidArgument},
      {"md5:d41d8cd98f00b204e9800998ecf8427e", ErrorCode::kUnsupported},
      {"sha256:E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855",
       ErrorCode::kInvalidArgument},
      {"sha256:../../../../etc/passwd000000000000000000000000000000000000000000",
       ErrorCode::kInvalidArgument},
      {"sha512:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
       ErrorCode::kInvalidArgument},
  };
  for (const auto& c : cases) {
    auto d = Digest::parse(c.text);
    ASSERT_FALSE(d.ok()) << c.text;
    EXPECT_EQ(d.error().code(), c.code) << c.text;
  }
}

}  // namespace
}  // namespace imgpull
