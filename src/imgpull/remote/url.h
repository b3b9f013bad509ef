// URLs as text, for the HTTP client and its users: an origin (what
// credentials are scoped to), a redirect's target, a host without its port,
// whether a host is loopback, query encoding, and a URL safe to log. Parsing
// goes through libcurl's URL API, as the transfers do, so both agree on what
// a URL means.
//
//   std::string origin = http::origin_of("https://Registry.example:443/v2/x");  // "https://registry.example"
//   IMGPULL_ASSIGN_OR_RETURN(std::string next, http::resolve_url(origin + "/v2/", "/token?scope=x"));
//   bool direct = http::is_loopback_host(http::strip_port("127.0.0.1:5000"));   // true
//   std::string shown = http::loggable_url(next);  // "...?scope=x", signatures hidden
#pragma once

#include <string>
#include <string_view>

#include "imgpull/error.h"

namespace imgpull::http {

// "https://Host:443/x" -> "https://host" ; "http://h:80" -> "http://h";
// other ports are kept. "" when the URL cannot be parsed.
std::string origin_of(std::string_view url);

// Resolves a Location header against the URL it came from.
Result<std::string> resolve_url(std::string_view base, std::string_view location);

// "host:port" -> "host"; "[::1]:5000" -> "::1".
std::string strip_port(std::string_view host);

// True for hosts that may use plain http without being listed as insecure,
// and that are never proxied: localhost and 127.0.0.0/8 and ::1, any port.
bool is_loopback_host(std::string_view host);

// Percent-encodes a query or form value.
std::string url_encode(std::string_view value);

// `url` with the value of every query parameter not known to be harmless
// replaced by "…" (signed CDN URLs carry credentials in their query).
std::string loggable_url(std::string_view url);

// "https://host:5000" -> "host:5000": what follows the scheme of an origin.
std::string host_of_origin(std::string_view origin);

}  // namespace imgpull::http
