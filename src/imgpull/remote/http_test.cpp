#include "remote/http.h"

#include <gtest/gtest.h>
#include <stdlib.h>

namespace imgpull::http {
namespace {

TEST(HttpOrigin, NormalisesSchemeHostAndDefaultPorts) {
  EXPECT_EQ(origin_of("https://Registry.Example.com/v2/"), "https://registry.example.com");
  EXPECT_EQ(origin_of("https://registry.example.com:443/v2/x"), "https://registry.example.com");
  EXPECT_EQ(origin_of("http://127.0.0.1:80/v2/"), "http://127.0.0.1");
  EXPECT_EQ(origin_of("http://127.0.0.1:5000/v2/"), "http://127.0.0.1:5000");
  EXPECT_EQ(origin_of("https://[::1]:5000/v2/"), "https://[::1]:5000");
  EXPECT_EQ(origin_of("not a url"), "");
}

TEST(HttpOrigin, DifferentPortOrSchemeIsAnotherOrigin) {
  // The rule for Authorization: same scheme, host and port, or nothing.
  EXPECT_NE(origin_of("http://127.0.0.1:5000/a"), origin_of("http://127.0.0.1:5001/a"));
  EXPECT_NE(origin_of("http://h/a"), origin_of("https://h/a"));
  EXPECT_NE(origin_of("https://registry.example.com/"), origin_of("https://cdn.example.com/"));
  EXPECT_EQ(origin_of("https://h/a?x=1"), origin_of("https://h:443/b"));
}

TEST(HttpResolve, FollowsRelativeAndAbsoluteLocations) {
  EXPECT_EQ(*resolve_url("http://h:5000/v2/x/blobs/sha256:a", "/v2/y"), "http://h:5000/v2/y");
  EXPECT_EQ(*resolve_url("http://h:5000/v2/x/blobs/a", "b"), "http://h:5000/v2/x/blobs/b");
  EXPECT_EQ(*resolve_url("http://h/a", "https://cdn.example.com/blob?sig=1"),
            "https://cdn.example.com/blob?sig=1");
}

TEST(HttpFormat, BinaryUnits) {
  EXPECT_EQ(format_bytes_binary(0), "0 B");
  EXPECT_EQ(format_bytes_binary(1023), "1023 B");
  EXPECT_EQ(format_bytes_binary(1229), "1.2 KiB");
  EXPECT_EQ(format_bytes_binary(3 * 1024 * 1024 + 400 * 1024), "3.4 MiB");
}

TEST(HttpFormat, UrlEncode) {
  EXPECT_EQ(url_encode("repository:library/x:pull"), "repository%3Alibrary%2Fx%3Apull");
  EXPECT_EQ(url_encode("a b&c=d"), "a%20b%26c%3Dd");
  EXPECT_EQ(url_encode("safe-._~"), "safe-._~");
}

TEST(HttpClient, ConnectionRefusedIsUnavailableNamingTheUrl) {
  Client client;
  // Port 1 on loopback: nothing listens there in a test sandbox.
  Request request;
  request.url = "http://127.0.0.1:1/v2/";
  auto r = client.fetch(request);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code(), ErrorCode::kUnavailable);
  EXPECT_NE(r.error().message().find("http://127.0.0.1:1/v2/"), std::string::npos) << r.error().message();
}

TEST(HttpProxy, ChosenBySchemeAndNeverForLoopback) {
  ProxySettings p{.http_proxy = "http://plain-proxy:3128", .https_proxy = "http://tls-proxy:3128", .no_proxy = ""};
  EXPECT_EQ(p.proxy_for("https://registry.example/v2/"), "http://tls-proxy:3128");
  EXPECT_EQ(p.proxy_for("http://registry.example:5000/v2/"), "http://plain-proxy:3128");
  EXPECT_EQ(p.proxy_for("http://127.0.0.1:5000/v2/"), "");
  EXPECT_EQ(p.proxy_for("https://127.8.9.10/v2/"), "");
  EXPECT_EQ(p.proxy_for("https://localhost:5000/v2/"), "");
  EXPECT_EQ(p.proxy_for("https://[::1]:5000/v2/"), "");
  EXPECT_EQ(p.proxy_for("https://registry.localhost:5000/v2/"), "http://tls-proxy:3128");
}

TEST(HttpProxy, UpperCaseWinsAsInGo) {
  ::setenv("HTTPS_PROXY", "http://upper:1", 1);
  ::setenv("https_proxy", "http://lower:1", 1);
  ::unsetenv("HTTP_PROXY");
  ::setenv("http_proxy", "http://lower-plain:1", 1);
  ::setenv("no_proxy", "example.com", 1);
  ::unsetenv("NO_PROXY");
  ProxySettings p = ProxySettings::from_environment();
  EXPECT_EQ(p.https_proxy, "http://upper:1");
  EXPECT_EQ(p.http_proxy, "http://lower-plain:1");
  EXPECT_EQ(p.no_proxy, "example.com");
  for (const char* n : {"HTTPS_PROXY", "https_proxy", "http_proxy", "no_proxy"}) ::unsetenv(n);
}

TEST(HttpLoopback, Hosts) {
  EXPECT_TRUE(is_loopback_host("localhost:5000"));
  EXPECT_TRUE(is_loopback_host("127.0.0.1"));
  EXPECT_TRUE(is_loopback_host("[::1]:5000"));
  EXPECT_FALSE(is_loopback_host("registry.localhost:5000"));
  EXPECT_FALSE(is_loopback_host("128.0.0.1"));
}

}  // namespace
}  // namespace imgpull::http
