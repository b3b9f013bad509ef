#include "bundle_cmd.h"

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

namespace imgpull::cli {

Result<std::vector<std::string>> parse_bundle_cmd(std::string_view text) {
  auto invalid = [&] {
    return Error(ErrorCode::kInvalidArgument,
                 "--bundle-cmd " + std::string(text) +
                     ": expected a JSON array of strings, as a Dockerfile's CMD [\"executable\", \"param\"], "
                     "e.g. --bundle-cmd '[\"nginx\", \"-g\", \"daemon off;\"]'");
  };
  nlohmann::json doc = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (!doc.is_array()) return invalid();
  std::vector<std::string> cmd;
  for (const auto& item : doc) {
    if (!item.is_string()) return invalid();
    cmd.push_back(item.get<std::string>());
  }
  return cmd;
}

void add_bundle_cmd_option(CLI::App& command, std::string& text, CLI::Option* bundle) {
  command
      .add_option("--bundle-cmd", text,
                  "With --bundle: run this instead of the image's Cmd (its Entrypoint kept), a JSON array: "
                  "'[\"nginx\", \"-g\", \"daemon off;\"]'")
      ->needs(bundle);
}

}  // namespace imgpull::cli
