// `--bundle-cmd`: the command a bundle runs instead of the image's Cmd, given
// as the image config and a Dockerfile's exec form write it, a JSON array of
// strings: '["nginx", "-g", "daemon off;"]'. No shell splitting is guessed at:
// what is written is what runs.
//
//   IMGPULL_ASSIGN_OR_RETURN(std::vector<std::string> cmd, parse_bundle_cmd(flag));
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "imgpull/error.h"

namespace CLI {
class App;
class Option;
}  // namespace CLI

namespace imgpull::cli {

// kInvalidArgument, with an example, for anything but a JSON array of strings.
Result<std::vector<std::string>> parse_bundle_cmd(std::string_view text);

// The --bundle-cmd option of `pull` and `unpack` (only with `bundle`, their --bundle).
void add_bundle_cmd_option(CLI::App& command, std::string& text, CLI::Option* bundle);

}  // namespace imgpull::cli
