// imgpull: the command-line tool over libimgpull. Output follows `docker pull`
// and `docker images` so that scripts and habits carry over.
//
// This file only assembles the tool: the global options, then each command
// (commands.h says how one is made; each lives in its own file), then parses
// the command line and runs the command it names.
#include <CLI/CLI.hpp>

#include "commands.h"
#include "global_options.h"

int main(int argc, char** argv) {
  using namespace imgpull::cli;
  CLI::App app{"imgpull: pull container images from any registry into a local OCI store"};
  app.require_subcommand(1);
  GlobalOptions g;
  add_global_options(app, g);

  // The order here is the order of --help, the man page and the completion.
  Runner run;
  add_pull_command(app, g, run);
  add_images_command(app, g, run);
  add_unpack_command(app, g, run);
  add_login_command(app, g, run);
  add_logout_command(app, g, run);
  add_inspect_command(app, g, run);
  add_history_command(app, g, run);
  add_tag_command(app, g, run);
  add_rmi_command(app, g, run);
  add_prune_command(app, g, run);
  add_verify_command(app, g, run);
  add_save_command(app, g, run);
  add_completion_command(app, g, run);
  add_man_command(app, g, run);

  CLI11_PARSE(app, argc, argv);
  return run ? run() : 0;
}
