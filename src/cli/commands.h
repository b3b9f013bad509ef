// The commands of `imgpull`, and the one shape each of them has.
//
// A command is a function that adds it to the CLI11 app: its flags, bound to
// a struct it owns, and the body to run when it is the command on the command
// line. main() calls these in order (the order of --help, the man page and
// the completion), parses argv, then calls the body of the one named:
//
//   void add_tag_command(CLI::App& app, const GlobalOptions& g, Runner& run) {
//     auto flags = std::make_shared<TagFlags>();  // outlives parsing: the body reads it
//     CLI::App* tag = app.add_subcommand("tag", "Give a local image another name");
//     tag->add_option("source", flags->source, "SOURCE_IMAGE[:TAG] or image ID")->required();
//     run_when_parsed(*tag, run, [&g, flags] { return run_tag(g, *flags); });
//   }
//
// A new flag for a command is a field of its flags struct and one add_option
// line, both in that command's file (an option whose value is a path is also
// named in docs.cpp's value_completion, for bash to complete paths after it).
#pragma once

#include <CLI/CLI.hpp>
#include <functional>
#include <string_view>

#include "global_options.h"
#include "imgpull/error.h"
#include "imgpull/store.h"

namespace imgpull::cli {

// The work of the command on the command line; returns the exit status.
using Runner = std::function<int()>;

// Makes `body` the program's runner once `command` has been parsed.
void run_when_parsed(CLI::App& command, Runner& run, Runner body);

// Runs `body` on the local store the global options name; an error opening it
// is printed and the status is 1.
int with_store(const GlobalOptions& g, const std::function<int(Store&)>& body);

// "Error: <message>" on stderr; returns the exit status of a failed command, 1.
int fail(const Error& error);

// "Warning: <what>" on stderr: something skipped that does not fail the command.
void warn(std::string_view what);

// One per command, in the order main() adds them.
void add_pull_command(CLI::App& app, const GlobalOptions& g, Runner& run);       // pull.cpp
void add_images_command(CLI::App& app, const GlobalOptions& g, Runner& run);     // images.cpp
void add_unpack_command(CLI::App& app, const GlobalOptions& g, Runner& run);     // unpack.cpp
void add_login_command(CLI::App& app, const GlobalOptions& g, Runner& run);      // login.cpp
void add_logout_command(CLI::App& app, const GlobalOptions& g, Runner& run);     // login.cpp
void add_inspect_command(CLI::App& app, const GlobalOptions& g, Runner& run);    // images.cpp
void add_history_command(CLI::App& app, const GlobalOptions& g, Runner& run);    // images.cpp
void add_tag_command(CLI::App& app, const GlobalOptions& g, Runner& run);        // images.cpp
void add_rmi_command(CLI::App& app, const GlobalOptions& g, Runner& run);        // images.cpp
void add_prune_command(CLI::App& app, const GlobalOptions& g, Runner& run);      // store_maintenance.cpp
void add_verify_command(CLI::App& app, const GlobalOptions& g, Runner& run);     // store_maintenance.cpp
void add_save_command(CLI::App& app, const GlobalOptions& g, Runner& run);       // save.cpp
void add_completion_command(CLI::App& app, const GlobalOptions& g, Runner& run); // docs_commands.cpp
void add_man_command(CLI::App& app, const GlobalOptions& g, Runner& run);        // docs_commands.cpp

}  // namespace imgpull::cli
