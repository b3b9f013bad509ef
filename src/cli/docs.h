// The command line's own description, turned into a bash completion script
// and a man page, so that --help, completion and the manual never disagree:
// all three are read off the same CLI11 tree.
#pragma once

#include <CLI/CLI.hpp>
#include <string>

namespace imgpull::cli {

// A bash script defining and registering `_imgpull`: completes subcommand
// names (aliases too), then each subcommand's flags, and directories or
// files for the options that take them.
std::string bash_completion(const CLI::App& app);

// The whole manual, imgpull(1), in roff -man: NAME, SYNOPSIS, DESCRIPTION,
// GLOBAL OPTIONS, then a section per command with its options and examples.
std::string man_page(const CLI::App& app, const std::string& version);

}  // namespace imgpull::cli
