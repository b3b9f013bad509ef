#include "remote/hosts.h"

#include <curl/curl.h>
#include <fmt/format.h>

#include <algorithm>
#include <filesystem>
#include <map>
#include <optional>
#include <toml++/toml.h>

#include "base/file_io.h"
#include "base/text.h"

namespace imgpull {
namespace {

namespace fs = std::filesystem;

Error invalid(const std::string& origin, std::string_view what) {
  return Error(ErrorCode::kInvalidArgument, fmt::format("{}: {}", origin, what));
}

// A hosts.toml or a certificate: `what` says which, for the message.
Result<std::string> read_small_file(const std::string& path, std::string_view what) {
  auto text = read_file(path, kMaxHostsFileSize);
  if (!text) return std::move(text).error().wrap(what);
  return text;
}

std::string absolute_in(const std::string& path, const std::string& dir) {
  return fs::path(path).is_absolute() ? path : (fs::path(dir) / path).string();
}

// A string, or an array of strings (containerd's `ca`).
Result<std::vector<std::string>> string_or_strings(const toml::node& node, const std::string& where,
                                                   const std::string& origin) {
  std::vector<std::string> out;
  if (auto s = node.value<std::string>()) {
    out.push_back(*s);
    return out;
  }
  const toml::array* array = node.as_array();
  if (array == nullptr) return invalid(origin, where + " must be a string or an array of strings");
  for (const auto& item : *array) {
    auto s = item.value<std::string>();
    if (!s) return invalid(origin, where + " must be a string or an array of strings");
    out.push_back(*s);
  }
  return out;
}

// The API root of a host URL, as containerd makes it: "/v2" appended unless
// the URL already ends with it or override_path says the path is the root.
std::string api_path(std::string path, bool override_path) {
  while (path.size() > 1 && path.back() == '/') path.pop_back();
  if (path == "/") path.clear();
  if (override_path) return path;
  if (path.ends_with("/v2")) return path;
  return path + "/v2";
}

// One host entry: the `server` (top-level keys) or a [host."URL"] table.
Result<RegistryEndpoint> parse_endpoint(std::string url, const toml::table& table, bool upstream,
                                        const std::string& dir, const std::string& origin,
                                        const std::string& where) {
  RegistryEndpoint e;
  e.upstream = upstream;
  bool override_path = false;
  if (const toml::node* n = table.get("override_path")) {
    auto b = n->value<bool>();
    if (!b) return invalid(origin, where + "override_path must be true or false");
    override_path = *b;
  }
  e.scheme_written = url.find("://") != std::string::npos;
  if (!e.scheme_written) url = "https://" + url;  // "mirror:5000" means https
  CURLU* u = curl_url();
  char* scheme = nullptr;
  char* host = nullptr;
  char* port = nullptr;
  char* path = nullptr;
  bool parsed = curl_url_set(u, CURLUPART_URL, url.c_str(), 0) == CURLUE_OK &&
                curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) == CURLUE_OK &&
                curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK;
  if (parsed) {
    curl_url_get(u, CURLUPART_PORT, &port, 0);  // absent: none written
    curl_url_get(u, CURLUPART_PATH, &path, 0);
    e.scheme = scheme;
    e.host = std::string(host) + (port != nullptr ? std::string(":") + port : "");
    e.path = api_path(path != nullptr ? path : "", override_path);
  }
  curl_free(scheme);
  curl_free(host);
  curl_free(port);
  curl_free(path);
  curl_url_cleanup(u);
  if (!parsed || e.host.empty() || (e.scheme != "https" && e.scheme != "http")) {
    return invalid(origin, fmt::format("{}\"{}\" is not an http(s) URL of a host", where, url));
  }

  if (const toml::node* n = table.get("capabilities")) {
    IMGPULL_ASSIGN_OR_RETURN(auto names, string_or_strings(*n, where + "capabilities", origin));
    e.capabilities = 0;
    for (const auto& name : names) {
      std::string lower = ascii_lowered(name);
      if (lower == "pull") e.capabilities |= kCapabilityPull;
      else if (lower == "resolve") e.capabilities |= kCapabilityResolve;
      else if (lower == "push") e.capabilities |= kCapabilityPush;
      else return invalid(origin, fmt::format("{}capabilities: unknown capability \"{}\"", where, name));
    }
  }

  http::TlsSettings tls;
  bool tls_given = false;
  if (const toml::node* n = table.get("skip_verify")) {
    auto b = n->value<bool>();
    if (!b) return invalid(origin, where + "skip_verify must be true or false");
    tls.skip_verify = *b;
    tls_given = true;
  }
  if (const toml::node* n = table.get("ca")) {
    IMGPULL_ASSIGN_OR_RETURN(auto files, string_or_strings(*n, where + "ca", origin));
    for (const auto& f : files) {
      std::string file = absolute_in(f, dir);
      auto pem = read_small_file(file, "CA certificate");
      if (!pem) return std::move(pem).error().wrap(origin);
      tls.ca_pem += *pem;
      if (!tls.ca_pem.empty() && tls.ca_pem.back() != '\n') tls.ca_pem += '\n';
    }
    tls_given = true;
  }
  if (const toml::node* n = table.get("client")) {
    // A path (certificate and key in one file), an array of such paths, or
    // an array of [certificate, key] pairs. libcurl presents one certificate:
    // the first is used.
    std::vector<std::pair<std::string, std::string>> pairs;
    if (auto s = n->value<std::string>()) {
      pairs.emplace_back(*s, "");
    } else if (const toml::array* a = n->as_array()) {
      for (const auto& item : *a) {
        if (auto s = item.value<std::string>()) {
          pairs.emplace_back(*s, "");
        } else if (const toml::array* pair = item.as_array();
                   pair != nullptr && pair->size() == 2 && (*pair)[0].is_string() && (*pair)[1].is_string()) {
          pairs.emplace_back(*(*pair)[0].value<std::string>(), *(*pair)[1].value<std::string>());
        } else {
          return invalid(origin, where + "client entries must be paths or [certificate, key] pairs");
        }
      }
    } else {
      return invalid(origin, where + "client must be a path or an array");
    }
    if (!pairs.empty()) {
      tls.client_cert_file = absolute_in(pairs.front().first, dir);
      tls.client_key_file = pairs.front().second.empty() ? "" : absolute_in(pairs.front().second, dir);
      for (const std::string& f : {tls.client_cert_file, tls.client_key_file}) {
        std::error_code ec;
        if (!f.empty() && !fs::is_regular_file(f, ec)) {
          return invalid(origin, fmt::format("{}client: no such file {}", where, f));
        }
      }
    }
    tls_given = true;
  }
  if (tls_given) e.tls = std::make_shared<const http::TlsSettings>(std::move(tls));
  return e;
}

std::vector<std::string> directory_names(std::string_view ns) {
  std::vector<std::string> names;
  auto colon = ns.rfind(':');
  if (colon != std::string_view::npos && colon > 0 && ns.find(']', colon) == std::string_view::npos) {
    names.push_back(fmt::format("{}_{}_", ns.substr(0, colon), ns.substr(colon + 1)));
  }
  names.emplace_back(ns);
  return names;
}

}  // namespace

Result<HostsConfig> parse_hosts_toml(std::string_view text, const std::string& dir, std::string_view default_host,
                                     const std::string& origin) {
  toml::table doc;
  try {
    doc = toml::parse(text, origin);
  } catch (const toml::parse_error& e) {
    return invalid(origin, fmt::format("line {}: {}", e.source().begin.line, e.description()));
  }
  HostsConfig config;
  config.source = origin;
  if (const toml::node* hosts = doc.get("host")) {
    const toml::table* table = hosts->as_table();
    if (table == nullptr) return invalid(origin, "host must be a table of [host.\"URL\"] entries");
    // Tried in the order they are written; toml++ keeps keys sorted, so
    // order them by where they stand in the file.
    std::vector<std::pair<const toml::key*, const toml::node*>> ordered;
    for (const auto& [key, node] : *table) ordered.emplace_back(&key, &node);
    std::stable_sort(ordered.begin(), ordered.end(), [](const auto& a, const auto& b) {
      const auto& pa = a.first->source().begin;
      const auto& pb = b.first->source().begin;
      return pa.line != pb.line ? pa.line < pb.line : pa.column < pb.column;
    });
    for (const auto& [key, node] : ordered) {
      const toml::table* entry = node->as_table();
      std::string where = fmt::format("[host.\"{}\"] ", key->str());
      if (entry == nullptr) return invalid(origin, where + "must be a table");
      IMGPULL_ASSIGN_OR_RETURN(RegistryEndpoint e,
                               parse_endpoint(std::string(key->str()), *entry, false, dir, origin, where));
      config.endpoints.push_back(std::move(e));
    }
  }
  std::string server(default_host);
  if (const toml::node* n = doc.get("server")) {
    auto s = n->value<std::string>();
    if (!s || s->empty()) return invalid(origin, "server must be a URL string");
    server = *s;
  }
  IMGPULL_ASSIGN_OR_RETURN(RegistryEndpoint upstream, parse_endpoint(server, doc, true, dir, origin, ""));
  config.endpoints.push_back(std::move(upstream));
  return config;
}

Result<HostsConfig> load_hosts_config(const std::vector<std::string>& roots, std::string_view ns,
                                      std::string_view default_host) {
  // The namespace's own directory: with hosts.toml, that; without, a
  // certs.d directory of Docker's kind (the registry itself, its TLS from
  // the files, see tls_from_cert_dirs), and no _default mirrors either.
  auto find = [&](const std::string& name) -> std::optional<fs::path> {
    for (const auto& root : roots) {
      std::error_code ec;
      if (fs::is_directory(fs::path(root) / name, ec)) return fs::path(root) / name;
    }
    return std::nullopt;
  };
  std::optional<fs::path> dir;
  for (const auto& name : directory_names(ns)) {
    if ((dir = find(name))) break;
  }
  if (!dir) {
    // _default applies only through a hosts.toml.
    for (const auto& root : roots) {
      std::error_code ec;
      if (fs::exists(fs::path(root) / "_default" / "hosts.toml", ec)) {
        dir = fs::path(root) / "_default";
        break;
      }
    }
  }
  std::error_code ec;
  if (dir && fs::exists(*dir / "hosts.toml", ec)) {
    std::string file = (*dir / "hosts.toml").string();
    IMGPULL_ASSIGN_OR_RETURN(std::string text, read_small_file(file, "hosts file"));
    return parse_hosts_toml(text, dir->string(), default_host, file);
  }
  HostsConfig config;
  RegistryEndpoint self;
  self.host = std::string(default_host);
  config.endpoints.push_back(std::move(self));
  return config;
}

Result<http::TlsSettings> tls_from_cert_dirs(const std::vector<std::string>& roots, std::string_view host) {
  http::TlsSettings tls;
  for (const auto& name : directory_names(host)) {
    for (const auto& root : roots) {
      fs::path dir = fs::path(root) / name;
      std::error_code ec;
      if (!fs::is_directory(dir, ec)) continue;
      std::vector<fs::path> files;
      for (const auto& entry : fs::directory_iterator(dir, ec)) files.push_back(entry.path());
      std::sort(files.begin(), files.end());  // Docker reads them in name order
      for (const auto& f : files) {
        std::string ext = f.extension().string();
        if (ext == ".crt") {
          IMGPULL_ASSIGN_OR_RETURN(std::string pem, read_small_file(f.string(), "CA certificate"));
          tls.ca_pem += pem;
          if (!tls.ca_pem.empty() && tls.ca_pem.back() != '\n') tls.ca_pem += '\n';
        } else if (ext == ".cert") {
          fs::path key = f;
          key.replace_extension(".key");
          if (!fs::is_regular_file(key, ec)) {
            return Error(ErrorCode::kInvalidArgument,
                         fmt::format("client certificate {} has no key {} beside it (CA certificates "
                                     "must be named *.crt)",
                                     f.string(), key.filename().string()));
          }
          if (tls.client_cert_file.empty()) {
            tls.client_cert_file = f.string();
            tls.client_key_file = key.string();
          }
        } else if (ext == ".key") {
          fs::path cert = f;
          cert.replace_extension(".cert");
          if (!fs::is_regular_file(cert, ec)) {
            return Error(ErrorCode::kInvalidArgument,
                         fmt::format("client key {} has no certificate {} beside it", f.string(),
                                     cert.filename().string()));
          }
        }
      }
      return tls;
    }
  }
  return tls;
}

}  // namespace imgpull
