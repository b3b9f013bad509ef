// The options given before the command (`imgpull --root DIR pull ...`), which
// every command shares, and the library settings they make.
#pragma once

#include <CLI/CLI.hpp>
#include <string>
#include <vector>

#include "imgpull/client.h"

namespace imgpull::cli {

struct GlobalOptions {
  std::string root;  // "" = the library's default (Store::default_root)
  bool debug = false;
  std::vector<std::string> insecure_registries;
  std::vector<std::string> certs_dirs;
  int retries = 5;
  double retry_max_wait_seconds = 30;
  long stall_timeout_seconds = 60;
};

// Adds the global options, and --version, to the top of the app.
void add_global_options(CLI::App& app, GlobalOptions& g);

// The Client settings the global options ask for.
ClientOptions client_options(const GlobalOptions& g);

}  // namespace imgpull::cli
