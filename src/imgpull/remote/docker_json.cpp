#include "remote/docker_json.h"

#include <fmt/format.h>

#include "base/file_io.h"
#include "base/text.h"
#include "imgpull/credentials.h"

namespace imgpull {

const nlohmann::json* json_field(const nlohmann::json& object, std::string_view name) {
  if (auto it = object.find(std::string(name)); it != object.end()) return &*it;
  for (auto it = object.begin(); it != object.end(); ++it) {
    if (iequals(it.key(), name)) return &it.value();
  }
  return nullptr;
}

std::optional<std::string> json_string_field(const nlohmann::json& object, std::string_view name) {
  const nlohmann::json* value = json_field(object, name);
  if (value == nullptr || value->is_null()) return std::string();
  if (!value->is_string()) return std::nullopt;
  return value->get<std::string>();
}

Error docker_config_corrupt(const std::string& origin, std::string_view what) {
  return Error(ErrorCode::kCorrupt, fmt::format("docker config {}: {}", origin, what));
}

Result<std::optional<std::string>> read_docker_config_file(const std::string& path) {
  auto text = read_file(path, kMaxDockerConfigSize);
  if (text) return std::optional<std::string>(std::move(text).value());
  if (text.error().code() == ErrorCode::kNotFound) return std::optional<std::string>();
  return std::move(text).error().wrap("reading docker config");
}

}  // namespace imgpull
