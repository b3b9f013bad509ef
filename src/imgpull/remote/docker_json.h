// Reading docker's JSON as docker reads it: config.json (by the credentials
// lookup and by login/logout, which rewrite it) and a credential helper's
// answer. Shared by credentials.cpp, credential_helpers.cpp and login.cpp.
//
//   IMGPULL_ASSIGN_OR_RETURN(std::optional<std::string> text, read_docker_config_file(path));
//   nlohmann::json doc = nlohmann::json::parse(text.value_or("{}"));
//   std::optional<std::string> store = json_string_field(doc, "credsstore");  // finds "credsStore"
//   if (!store) return docker_config_corrupt(path, "credsStore is not a string");
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "imgpull/error.h"

namespace imgpull {

// Docker reads config.json (and helper output) with Go's encoding/json, which
// matches keys to struct fields case-insensitively, preferring an exact match:
// "credsstore" works for docker, so it works here. nullptr when absent.
const nlohmann::json* json_field(const nlohmann::json& object, std::string_view name);

// A string field: absent and null mean "" (Go leaves the field alone);
// std::nullopt for any other type, which fails docker's whole decode.
std::optional<std::string> json_string_field(const nlohmann::json& object, std::string_view name);

// kCorrupt: "docker config <origin>: <what>".
Error docker_config_corrupt(const std::string& origin, std::string_view what);

// The text of config.json at `path` (at most kMaxDockerConfigSize bytes);
// std::nullopt when it does not exist.
Result<std::optional<std::string>> read_docker_config_file(const std::string& path);

}  // namespace imgpull
