#include "remote/url.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <cctype>

#include "base/text.h"

namespace imgpull::http {
namespace {

// Query keys that are safe to show in a debug log; anything else (signed CDN
// URLs carry credentials in the query) is replaced by "…".
bool is_loggable_query_key(std::string_view key) {
  static constexpr std::array<std::string_view, 7> kSafe = {"service", "scope", "digest", "n",
                                                            "last",    "mount", "ns"};
  return std::find(kSafe.begin(), kSafe.end(), key) != kSafe.end();
}

}  // namespace

std::string loggable_url(std::string_view url) {
  auto q = url.find('?');
  if (q == std::string_view::npos) return std::string(url);
  std::string out(url.substr(0, q + 1));
  std::string_view query = url.substr(q + 1);
  bool first = true;
  while (!query.empty()) {
    auto amp = query.find('&');
    std::string_view pair = query.substr(0, amp);
    std::string_view key = pair.substr(0, pair.find('='));
    if (!first) out += '&';
    first = false;
    out += is_loggable_query_key(key) ? std::string(pair) : std::string(key) + "=…";
    if (amp == std::string_view::npos) break;
    query.remove_prefix(amp + 1);
  }
  return out;
}

std::string host_of_origin(std::string_view origin) {
  auto sep = origin.find("://");
  return sep == std::string_view::npos ? std::string(origin) : std::string(origin.substr(sep + 3));
}

std::string origin_of(std::string_view url) {
  CURLU* u = curl_url();
  std::string out;
  if (curl_url_set(u, CURLUPART_URL, std::string(url).c_str(), 0) == CURLUE_OK) {
    char* scheme = nullptr;
    char* host = nullptr;
    char* port = nullptr;
    curl_url_get(u, CURLUPART_SCHEME, &scheme, 0);
    curl_url_get(u, CURLUPART_HOST, &host, 0);
    curl_url_get(u, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT);
    if (scheme && host && port) {
      std::string s = ascii_lowered(scheme);
      std::string p = port;
      bool default_port = (s == "https" && p == "443") || (s == "http" && p == "80");
      out = s + "://" + ascii_lowered(host) + (default_port ? "" : ":" + p);
    }
    curl_free(scheme);
    curl_free(host);
    curl_free(port);
  }
  curl_url_cleanup(u);
  return out;
}

Result<std::string> resolve_url(std::string_view base, std::string_view location) {
  CURLU* u = curl_url();
  std::string out;
  bool ok = curl_url_set(u, CURLUPART_URL, std::string(base).c_str(), 0) == CURLUE_OK &&
            curl_url_set(u, CURLUPART_URL, std::string(location).c_str(), 0) == CURLUE_OK;
  char* full = nullptr;
  if (ok && curl_url_get(u, CURLUPART_URL, &full, 0) == CURLUE_OK) out = full;
  curl_free(full);
  curl_url_cleanup(u);
  if (out.empty()) {
    return Error(ErrorCode::kUnavailable,
                 fmt::format("cannot follow redirect from {} to \"{}\"", loggable_url(base),
                             loggable_url(location)));
  }
  return out;
}

std::string strip_port(std::string_view host) {
  if (host.starts_with('[')) {
    auto close = host.find(']');
    return std::string(host.substr(1, close == std::string_view::npos ? host.size() : close - 1));
  }
  auto colon = host.rfind(':');
  if (colon != std::string_view::npos && host.find(':') == colon) return std::string(host.substr(0, colon));
  return std::string(host);
}

bool is_loopback_host(std::string_view host) {
  std::string name = ascii_lowered(strip_port(host));
  if (name == "localhost" || name == "::1") return true;
  in_addr addr{};
  if (inet_pton(AF_INET, name.c_str(), &addr) == 1) return (ntohl(addr.s_addr) >> 24) == 127;
  return false;
}

std::string url_encode(std::string_view value) {
  std::string out;
  for (unsigned char c : value) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += fmt::format("%{:02X}", c);
    }
  }
  return out;
}

}  // namespace imgpull::http
