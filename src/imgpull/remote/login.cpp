// imgpull login / logout: writing credentials into docker's config.json (or
// a helper) as docker login does, every other key of the file kept.
#include "imgpull/credentials.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>
#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <vector>

#include "base/atomic_file.h"
#include "base/sys_error.h"
#include "remote/auth.h"  // base64_encode
#include "remote/docker_json.h"

namespace imgpull {
namespace {

// The config document as it is (every key kept, in its order); an empty
// object when the file does not exist.
Result<nlohmann::ordered_json> read_config_document(const std::string& path) {
  IMGPULL_ASSIGN_OR_RETURN(std::optional<std::string> text, read_docker_config_file(path));
  if (!text || text->find_first_not_of(" \t\r\n") == std::string::npos) return nlohmann::ordered_json::object();
  auto doc = nlohmann::ordered_json::parse(*text, nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded() || !doc.is_object()) return docker_config_corrupt(path, "not a JSON object (left untouched)");
  return doc;
}

// Replaces `path` with `text` through an AtomicFile (mode 0600, the old
// file's owner, fsync'ed before the rename), so a reader sees the old or the
// new file, never half of one. A symlinked config.json is written where the
// link points, as Docker does.
Status write_config_atomically(std::string path, const std::string& text) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (fs::is_symlink(path, ec)) {
    fs::path target = fs::read_symlink(path, ec);
    if (!ec) path = (target.is_absolute() ? target : fs::path(path).parent_path() / target).string();
  }
  const std::string writing = "writing docker config " + path;
  fs::path dir = fs::path(path).parent_path();
  if (!dir.empty() && !fs::exists(dir, ec)) {
    if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) {
      fs::create_directories(dir, ec);  // deeper paths: DOCKER_CONFIG=/new/a/b
      if (ec) return sys_error(writing + ": creating its directory", ec.value());
      ::chmod(dir.c_str(), 0700);
    }
  }
  struct stat old {};
  bool existed = ::stat(path.c_str(), &old) == 0;
  auto file = AtomicFile::create(path, {.mode = 0600, .sync = true});
  if (!file) return std::move(file).error().wrap(writing);
  // Exactly 0600 whatever the umask: the file holds secrets.
  if (::fchmod(file->fd(), 0600) != 0) return sys_error(writing + ": fchmod");
  if (existed && (old.st_uid != ::geteuid() || old.st_gid != ::getegid())) {
    (void)::fchown(file->fd(), old.st_uid, old.st_gid);  // only root may; others keep their own
  }
  Status written = file->write(text);
  if (written) written = file->commit();
  if (!written) return std::move(written).error().wrap(writing);
  return ok_status();
}

std::string serialise_config(const nlohmann::ordered_json& doc) { return doc.dump(1, '\t') + "\n"; }

}  // namespace

Status save_login(const std::string& config_path, const std::string& key, const Credentials& credentials) {
  IMGPULL_ASSIGN_OR_RETURN(nlohmann::ordered_json doc, read_config_document(config_path));
  IMGPULL_ASSIGN_OR_RETURN(std::string helper, credential_helper_for(config_path, key));
  nlohmann::ordered_json entry = nlohmann::ordered_json::object();
  if (!helper.empty()) {
    IMGPULL_TRY(store_in_credential_helper(helper, key, credentials));
    // As docker's native store: config.json keeps the entry, without secrets.
  } else if (!credentials.identity_token.empty()) {
    entry["auth"] = "";
    entry["identitytoken"] = credentials.identity_token;
  } else {
    entry["auth"] = base64_encode(credentials.username + ":" + credentials.password);
  }
  if (!doc.contains("auths") || !doc["auths"].is_object()) doc["auths"] = nlohmann::ordered_json::object();
  doc["auths"][key] = entry;
  return write_config_atomically(config_path, serialise_config(doc));
}

Result<bool> remove_login(const std::string& config_path, const std::string& key) {
  IMGPULL_ASSIGN_OR_RETURN(nlohmann::ordered_json doc, read_config_document(config_path));
  IMGPULL_ASSIGN_OR_RETURN(std::string helper, credential_helper_for(config_path, key));
  bool removed = false;
  if (!helper.empty()) {
    IMGPULL_ASSIGN_OR_RETURN(removed, erase_from_credential_helper(helper, key));
  }
  if (doc.contains("auths") && doc["auths"].is_object()) {
    auto& auths = doc["auths"];
    // Entries docker wrote long ago under a URL ("https://host:5000/v1/") go too.
    std::vector<std::string> doomed;
    for (auto it = auths.begin(); it != auths.end(); ++it) {
      if (it.key() == key || credential_key(it.key()) == key) doomed.push_back(it.key());
    }
    for (const auto& k : doomed) auths.erase(k);
    if (!doomed.empty()) {
      IMGPULL_TRY(write_config_atomically(config_path, serialise_config(doc)));
      removed = true;
    }
  }
  return removed;
}

}  // namespace imgpull
