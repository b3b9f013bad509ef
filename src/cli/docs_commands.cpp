// `imgpull completion` and `imgpull man`: the bash completion and the manual,
// written from the app's own definitions (docs.h).
#include <iostream>
#include <memory>
#include <string>

#include "commands.h"
#include "docs.h"

namespace imgpull::cli {

void add_completion_command(CLI::App& app, const GlobalOptions& /*g*/, Runner& run) {
  auto shell = std::make_shared<std::string>();
  auto* completion = app.add_subcommand("completion", "Print a shell completion script");
  completion->add_option("shell", *shell, "Shell: bash")->required()->check(CLI::IsMember({"bash"}));
  completion->footer("Examples:\n  source <(imgpull completion bash)\n"
                     "  imgpull completion bash > /etc/bash_completion.d/imgpull");
  run_when_parsed(*completion, run, [&app] {
    std::cout << bash_completion(app);
    return 0;
  });
}

void add_man_command(CLI::App& app, const GlobalOptions& /*g*/, Runner& run) {
  auto* man = app.add_subcommand("man", "Print the manual page, imgpull(1), made from the same text as --help");
  man->footer("Example:\n  imgpull man | man -l -");
  run_when_parsed(*man, run, [&app] {
    std::cout << man_page(app, IMGPULL_VERSION);
    return 0;
  });
}

}  // namespace imgpull::cli
