// Reading docker's client config: config.json's auths, credsStore and
// credHelpers, and the lookup docker makes with them. Running the helpers is
// credential_helpers.cpp; writing logins into config.json is login.cpp.
#include "imgpull/credentials.h"

#include <pwd.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cstdint>
#include <cstdlib>
#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <utility>
#include <vector>

#include "base/text.h"
#include "remote/docker_json.h"

namespace imgpull {
namespace {

using nlohmann::json;

// Go's base64.StdEncoding, as docker decodes "auth": padding required, '\r'
// and '\n' skipped, nothing after the padding.
std::optional<std::string> base64_decode(std::string_view text) {
  std::string out;
  uint32_t bits = 0;
  int nbits = 0;
  size_t symbols = 0;
  size_t padding = 0;
  for (char c : text) {
    if (c == '\r' || c == '\n') continue;
    ++symbols;
    if (c == '=') {
      ++padding;
      continue;
    }
    int v = (c >= 'A' && c <= 'Z')   ? c - 'A'
            : (c >= 'a' && c <= 'z') ? c - 'a' + 26
            : (c >= '0' && c <= '9') ? c - '0' + 52
            : c == '+'               ? 62
            : c == '/'               ? 63
                                     : -1;
    if (v < 0 || padding > 0) return std::nullopt;
    bits = (bits << 6) | static_cast<uint32_t>(v);
    nbits += 6;
    if (nbits >= 8) {
      nbits -= 8;
      out += static_cast<char>((bits >> nbits) & 0xff);
      bits &= (1u << nbits) - 1;
    }
  }
  if (symbols % 4 != 0 || padding > 2) return std::nullopt;
  return out;
}

// docker's decodeAuth: "user:password", split on the first ':'. Go decodes
// into a buffer sized for the padded length, hence docker trims NULs from the
// password; so do we.
Result<Credentials> decode_auth(const std::string& auth, const std::string& origin, const std::string& where) {
  std::optional<std::string> decoded = base64_decode(auth);
  if (!decoded) return docker_config_corrupt(origin, where + "auth is not valid base64");
  size_t colon = decoded->find(':');
  if (colon == std::string::npos || colon == 0) {
    return docker_config_corrupt(origin, where + "auth does not hold \"username:password\"");
  }
  Credentials c;
  c.username = decoded->substr(0, colon);
  c.password = decoded->substr(colon + 1);
  size_t first = c.password.find_first_not_of('\0');
  c.password = first == std::string::npos ? std::string()
                                          : c.password.substr(first, c.password.find_last_not_of('\0') + 1 - first);
  return c;
}

bool is_docker_hub(std::string_view domain) {
  return domain == "docker.io" || domain == "index.docker.io" || domain == "registry-1.docker.io";
}

bool is_scheme(std::string_view s) {
  if (s.empty() || !std::isalpha(static_cast<unsigned char>(s[0]))) return false;
  for (char c : s) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '+' && c != '-' && c != '.') return false;
  }
  return true;
}

bool is_optional_port(std::string_view colon_port) {  // "", ":" or ":digits", as Go's url does
  if (colon_port.empty()) return true;
  if (colon_port[0] != ':') return false;
  for (char c : colon_port.substr(1)) {
    if (c < '0' || c > '9') return false;
  }
  return true;
}

// docker/cli's credentials.ConvertToHostname: the host[:port] an auths key
// names. A key that is a URL ("https://host:5000/v1/") gives Go's
// net.JoinHostPort(u.Hostname(), u.Port()) (so "https://[::1]/" gives "::1");
// anything else, or a URL Go would not parse, gives the text before the first '/'.
std::string convert_to_hostname(std::string_view key) {
  std::string_view fallback = key.substr(0, key.find('/'));
  size_t sep = key.find("://");
  if (sep == std::string_view::npos || !is_scheme(key.substr(0, sep))) return std::string(fallback);
  std::string_view authority = key.substr(sep + 3);
  authority = authority.substr(0, authority.find_first_of("/?#"));
  if (size_t at = authority.rfind('@'); at != std::string_view::npos) authority = authority.substr(at + 1);
  std::string_view host = authority;
  std::string_view port;
  if (authority.starts_with('[')) {
    size_t close = authority.find(']');
    if (close == std::string_view::npos || !is_optional_port(authority.substr(close + 1))) {
      return std::string(fallback);
    }
    host = authority.substr(1, close - 1);
    port = authority.substr(std::min(close + 2, authority.size()));
  } else if (size_t colon = authority.rfind(':'); colon != std::string_view::npos) {
    if (!is_optional_port(authority.substr(colon))) return std::string(fallback);
    host = authority.substr(0, colon);
    port = authority.substr(colon + 1);
  }
  if (host.empty()) return std::string(fallback);
  if (port.empty()) return std::string(host);
  // Go's JoinHostPort brackets only a host with a colon (IPv6) in it.
  return host.find(':') != std::string_view::npos ? fmt::format("[{}]:{}", host, port) : fmt::format("{}:{}", host, port);
}

std::string home_directory() {
  // As Go's os/user-backed homedir.Get(): $HOME, else the password database.
  if (const char* home = std::getenv("HOME"); home != nullptr && *home != '\0') return home;
  std::vector<char> buf(16 * 1024);
  passwd pw{};
  passwd* result = nullptr;
  if (getpwuid_r(getuid(), &pw, buf.data(), buf.size(), &result) == 0 && result != nullptr &&
      result->pw_dir != nullptr) {
    return result->pw_dir;
  }
  return "";
}

}  // namespace

std::string docker_config_path() {
  if (const char* env = std::getenv("DOCKER_CONFIG"); env != nullptr && *env != '\0') {
    return std::string(env) + "/config.json";
  }
  std::string home = home_directory();
  return home.empty() ? "" : home + "/.docker/config.json";
}

Result<DockerConfig> DockerConfig::load() {
  std::string path = docker_config_path();
  if (path.empty()) return parse("", "(no home directory)");
  return load_file(path);
}

Result<DockerConfig> DockerConfig::load_file(const std::string& path) {
  IMGPULL_ASSIGN_OR_RETURN(std::optional<std::string> text, read_docker_config_file(path));
  if (!text) return parse("", path);  // docker too treats a missing file as an empty config
  return parse(*text, path);
}

Result<DockerConfig> DockerConfig::parse(std::string_view text, std::string origin_for_errors) {
  DockerConfig config;
  config.origin_ = std::move(origin_for_errors);
  const std::string& origin = config.origin_;
  // Docker's decoder stops at end of input without complaint: an empty file
  // is an empty config.
  if (text.find_first_not_of(" \t\r\n") == std::string_view::npos) return config;
  json doc;
  try {
    doc = json::parse(text);
  } catch (const json::exception& e) {
    // Only the offset: nlohmann's own message quotes the input around the
    // error, which may be a password.
    const auto* parse_error = dynamic_cast<const json::parse_error*>(&e);
    return docker_config_corrupt(origin, parse_error ? fmt::format("malformed JSON at byte {}", parse_error->byte)
                                       : std::string("malformed JSON"));
  }
  if (doc.is_null()) return config;
  if (!doc.is_object()) return docker_config_corrupt(origin, "the document is not a JSON object");

  auto get_string = [&](const json& object, std::string_view name, const std::string& where) -> Result<std::string> {
    std::optional<std::string> value = json_string_field(object, name);
    if (!value) return docker_config_corrupt(origin, fmt::format("{}{} is not a string", where, name));
    return *value;
  };

  if (const nlohmann::json* auths = json_field(doc, "auths"); auths != nullptr && !auths->is_null()) {
    if (!auths->is_object()) return docker_config_corrupt(origin, "\"auths\" is not an object");
    for (auto it = auths->begin(); it != auths->end(); ++it) {
      const std::string where = fmt::format("auths[\"{}\"].", it.key());
      const json& entry = it.value();
      Credentials c;
      if (!entry.is_null()) {
        if (!entry.is_object()) return docker_config_corrupt(origin, fmt::format("auths[\"{}\"] is not an object", it.key()));
        IMGPULL_ASSIGN_OR_RETURN(std::string auth, get_string(entry, "auth", where));
        IMGPULL_ASSIGN_OR_RETURN(c.username, get_string(entry, "username", where));
        IMGPULL_ASSIGN_OR_RETURN(c.password, get_string(entry, "password", where));
        IMGPULL_ASSIGN_OR_RETURN(c.identity_token, get_string(entry, "identitytoken", where));
        if (!auth.empty()) {
          // As docker: "auth", when present, replaces username and password.
          IMGPULL_ASSIGN_OR_RETURN(Credentials decoded, decode_auth(auth, origin, where));
          c.username = std::move(decoded.username);
          c.password = std::move(decoded.password);
        }
      }
      config.auths_.emplace(it.key(), std::move(c));
    }
  }

  IMGPULL_ASSIGN_OR_RETURN(config.creds_store_, get_string(doc, "credsStore", ""));

  if (const nlohmann::json* helpers = json_field(doc, "credHelpers"); helpers != nullptr && !helpers->is_null()) {
    if (!helpers->is_object()) return docker_config_corrupt(origin, "\"credHelpers\" is not an object");
    for (auto it = helpers->begin(); it != helpers->end(); ++it) {
      if (!it.value().is_string() && !it.value().is_null()) {
        return docker_config_corrupt(origin, fmt::format("credHelpers[\"{}\"] is not a string", it.key()));
      }
      config.cred_helpers_.emplace(it.key(), it.value().is_string() ? it.value().get<std::string>() : "");
    }
  }
  return config;
}

Result<std::optional<Credentials>> DockerConfig::credentials_for(std::string_view registry_domain) const {
  // docker files Docker Hub under its old index URL, everything else under
  // the domain as the reference has it.
  const std::string key =
      is_docker_hub(registry_domain) ? std::string(kDockerHubCredentialKey) : std::string(registry_domain);

  // credHelpers[key] overrides credsStore even when it is "": that sends the
  // registry back to the plain-text auths.
  std::string helper = creds_store_;
  if (auto it = cred_helpers_.find(key); !key.empty() && it != cred_helpers_.end()) helper = it->second;
  if (!helper.empty()) {
    // The helper is then the only source, as for docker: its "not found"
    // means anonymous, not "look in auths".
    auto found = run_credential_helper(helper, key);
    if (!found) {
      return std::move(found).error().wrap(
          fmt::format("credentials for {} (helper configured in {})", registry_domain, origin_));
    }
    return found;
  }

  auto entry = auths_.find(key);
  if (entry == auths_.end()) {
    // Keys docker wrote long ago, or people write by hand, are URLs:
    // "https://host:5000/v1/" serves "host:5000".
    entry = std::find_if(auths_.begin(), auths_.end(),
                         [&](const auto& e) { return convert_to_hostname(e.first) == key; });
  }
  if (entry == auths_.end() || entry->second.empty()) return std::optional<Credentials>();
  return std::optional<Credentials>(entry->second);
}

std::string credential_key(std::string_view registry) {
  std::string host = ascii_lowered(convert_to_hostname(registry));
  if (host.empty() || is_docker_hub(host)) return std::string(kDockerHubCredentialKey);
  return host;
}

Result<std::string> credential_helper_for(const std::string& config_path, const std::string& key) {
  IMGPULL_ASSIGN_OR_RETURN(DockerConfig config, DockerConfig::load_file(config_path));
  if (auto it = config.cred_helpers_.find(key); it != config.cred_helpers_.end()) return it->second;
  return config.creds_store_;
}

}  // namespace imgpull
