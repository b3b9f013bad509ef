// Registry credentials as the docker CLI keeps them, so that a `docker login`
// (or a credential helper such as docker-credential-ecr-login, -gcloud,
// -desktop, -pass) works for imgpull unchanged.
//
// The client config file is $DOCKER_CONFIG/config.json, else
// ~/.docker/config.json. For a registry, docker asks in this order:
// credHelpers[registry] names a helper → else credsStore names a helper →
// else the plain-text "auths" entry. A configured helper is the only source
// for that registry (its "not found" means anonymous, not "try auths").
//
//   IMGPULL_ASSIGN_OR_RETURN(DockerConfig config, DockerConfig::load());
//   IMGPULL_ASSIGN_OR_RETURN(std::optional<Credentials> creds,
//                            config.credentials_for(ref.domain));  // "docker.io", "ghcr.io"
//   if (creds) authenticate_as(creds->username, creds->password);
//
// Credentials are secrets: nothing here puts one in an error message.
#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "imgpull/error.h"

namespace imgpull {

// What docker's config and helpers use as Docker Hub's key and server URL,
// whatever the reference said (docker.io, index.docker.io, registry-1.docker.io).
inline constexpr std::string_view kDockerHubCredentialKey = "https://index.docker.io/v1/";

// A helper answers with a small JSON document; more than this is not one.
inline constexpr size_t kMaxCredentialHelperOutput = 1024 * 1024;
// Helpers may prompt (a keychain unlock, a gpg pinentry), so this is generous;
// it only guards against a helper that hangs for good.
inline constexpr std::chrono::milliseconds kCredentialHelperTimeout = std::chrono::minutes(2);
// config.json holds a few entries; a bigger file is not a docker config.
inline constexpr size_t kMaxDockerConfigSize = 16 * 1024 * 1024;

struct Credentials {
  std::string username;
  std::string password;
  std::string identity_token;  // OAuth2 refresh token (config "identitytoken", or helper Username "<token>")

  bool empty() const { return username.empty() && password.empty() && identity_token.empty(); }
};

// Where credentials for a registry domain come from (a DockerConfig, a flag).
using CredentialLookup =
    std::function<Result<std::optional<Credentials>>(std::string_view registry_domain)>;

class DockerConfig {
 public:
  // $DOCKER_CONFIG/config.json, else $HOME/.docker/config.json. A missing
  // file is an empty config, not an error; malformed JSON is kCorrupt naming
  // the file; an unreadable one kIo.
  static Result<DockerConfig> load();
  static Result<DockerConfig> load_file(const std::string& path);
  // `origin_for_errors` names the document in messages (usually its path).
  static Result<DockerConfig> parse(std::string_view json, std::string origin_for_errors);

  // Credentials for a registry domain as written in a Reference ("docker.io",
  // "localhost:5000", "ghcr.io"), looked up as docker does: credHelpers[host]
  // → credsStore → auths. std::nullopt when nothing is configured (or the
  // helper has nothing) for it. Runs a helper program when one is configured.
  Result<std::optional<Credentials>> credentials_for(std::string_view registry_domain) const;

 private:
  DockerConfig() = default;
  friend Result<std::string> credential_helper_for(const std::string& config_path, const std::string& key);

  std::string origin_;                           // for messages
  std::map<std::string, Credentials> auths_;     // key as written in the file
  std::string creds_store_;                      // "" when none
  std::map<std::string, std::string> cred_helpers_;
};

// Runs `docker-credential-<helper_name> get` (found on PATH, no shell),
// writing `server_url` to its stdin and parsing {"ServerURL","Username","Secret"}.
// A helper answering "credentials not found in native keychain" → std::nullopt.
// A helper that cannot be run, hangs past `timeout` or answers garbage →
// kUnavailable; one that runs and reports a failure → kUnauthorized. Both
// name the helper.
Result<std::optional<Credentials>> run_credential_helper(
    const std::string& helper_name, const std::string& server_url,
    std::chrono::milliseconds timeout = kCredentialHelperTimeout);

// ---- Saving credentials: imgpull login / logout, as docker login does ----

// $DOCKER_CONFIG/config.json, else $HOME/.docker/config.json.
std::string docker_config_path();

// The key a registry's credentials are filed under: Docker Hub (docker.io,
// index.docker.io, registry-1.docker.io, or nothing) → kDockerHubCredentialKey;
// anything else its host[:port] ("https://host:5000/v1/" → "host:5000").
std::string credential_key(std::string_view registry);

// Where `key` is stored: the helper named by credHelpers[key], else by
// credsStore ("" = config.json's auths).
Result<std::string> credential_helper_for(const std::string& config_path, const std::string& key);

// Stores credentials as docker login does: with a helper, `docker-credential-X
// store` gets {"ServerURL","Username","Secret"} and config.json keeps an
// entry without secrets; without one, auths[key] = {"auth": base64(user:pass)}.
// config.json is rewritten atomically (temporary file + rename, mode 0600,
// the owner kept), every other key in it preserved.
Status save_login(const std::string& config_path, const std::string& key, const Credentials& credentials);

// Removes them (helper `erase`, and the auths entry); false when there was
// nothing to remove. config.json is only rewritten when it changes.
Result<bool> remove_login(const std::string& config_path, const std::string& key);

// `docker-credential-<helper> store` / `erase`.
Status store_in_credential_helper(const std::string& helper_name, const std::string& server_url,
                                  const Credentials& credentials);
Result<bool> erase_from_credential_helper(const std::string& helper_name, const std::string& server_url);

}  // namespace imgpull
