// Which hosts serve a registry, and how to speak TLS to them: containerd's
// hosts.toml and Docker's certs.d files, read from the same directories.
//
// A registry namespace ("docker.io", "127.0.0.1:5000") may have a directory
// in a certs.d-style root, named as containerd names it (first match wins,
// every root searched for each name before the next name):
//
//  <root>/<host>_<port>_/   <root>/<host:port>/   then <root>/_default/
//
// With a hosts.toml there, it lists mirrors to try in order, then `server`
// (the upstream, or the registry itself when `server` is absent):
//
//  server = "https://registry-1.docker.io"
//  [host."https://mirror.internal:5000"]
//    capabilities = ["pull", "resolve"]
//    ca = "mirror-ca.crt"                    # relative to the directory
//    client = [["client.cert", "client.key"]]
//    skip_verify = false
//
// Without one, Docker's files in the directory give the TLS settings of the
// registry itself: every *.crt is a CA, every X.cert needs its X.key.
//
//   IMGPULL_ASSIGN_OR_RETURN(HostsConfig config, load_hosts_config(roots, ref.domain, ref.registry_host()));
//   for (const RegistryEndpoint& e : config.endpoints) std::cout << e.base_url() << "\n";
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "imgpull/error.h"
#include "remote/http.h"

namespace imgpull {

// What a host may be asked for (containerd's HostCapabilities).
enum HostCapability : unsigned {
  kCapabilityPull = 1,     // manifests by digest, blobs
  kCapabilityResolve = 2,  // manifests by tag: trusting the host with what a name means
  kCapabilityPush = 4,     // accepted in hosts.toml; imgpull does not push
};
inline constexpr unsigned kAllCapabilities = kCapabilityPull | kCapabilityResolve | kCapabilityPush;

// A hosts.toml, a CA or key file is a small document.
inline constexpr size_t kMaxHostsFileSize = 1024 * 1024;

// One host to try for a registry namespace.
struct RegistryEndpoint {
  std::string scheme = "https";  // "https" or "http" (as written in hosts.toml)
  // hosts.toml wrote the scheme ("https://..."): no other is tried, not even
  // plain http for a loopback host.
  bool scheme_written = false;
  std::string host;              // "mirror:5000"
  std::string path = "/v2";      // the API root; another only with override_path
  unsigned capabilities = kAllCapabilities;
  // True for the `server` entry (or the registry itself): the upstream. The
  // others are mirrors: requests to them carry ?ns=<namespace>, and their
  // credentials are looked up under their own host name.
  bool upstream = true;
  // Set when hosts.toml gave ca, client or skip_verify for this host; null
  // leaves TLS to the certs.d files of the host.
  std::shared_ptr<const http::TlsSettings> tls;

  // "https://mirror:5000/v2"
  std::string base_url() const { return scheme + "://" + host + path; }
  bool can(HostCapability c) const { return (capabilities & c) != 0; }
};

struct HostsConfig {
  std::vector<RegistryEndpoint> endpoints;  // in the order to try them
  std::string source;                       // the hosts.toml read, "" when none
};

// Parses a hosts.toml; relative paths are resolved against `dir`, and CA
// files are read. `default_host` is the registry itself ("registry-1.docker.io"
// for "docker.io"), used when `server` is absent. Errors are kInvalidArgument
// naming `origin_for_errors` and, for syntax errors, the line.
Result<HostsConfig> parse_hosts_toml(std::string_view text, const std::string& dir,
                                     std::string_view default_host, const std::string& origin_for_errors);

// Finds the namespace's directory in `roots` and reads its hosts.toml. No
// directory, or one without hosts.toml, gives the registry itself as the
// only endpoint (its TLS left to tls_from_cert_dirs).
Result<HostsConfig> load_hosts_config(const std::vector<std::string>& roots, std::string_view registry_namespace,
                                      std::string_view default_host);

// Docker's certs.d files for an origin host ("127.0.0.1:5000"): the first
// root holding a <host> directory gives its *.crt CAs and X.cert/X.key
// client pairs (the first pair is used: libcurl takes one). A .cert
// without its .key is kInvalidArgument, as in Docker.
Result<http::TlsSettings> tls_from_cert_dirs(const std::vector<std::string>& roots, std::string_view host);

}  // namespace imgpull
