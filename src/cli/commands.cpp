#include "commands.h"

#include <iostream>
#include <utility>

#include "imgpull/client.h"

namespace imgpull::cli {

void run_when_parsed(CLI::App& command, Runner& run, Runner body) {
  // CLI11 calls a subcommand's callback after the whole command line parsed
  // without error, and only for the subcommand that was given.
  command.callback([&run, body = std::move(body)] { run = body; });
}

int with_store(const GlobalOptions& g, const std::function<int(Store&)>& body) {
  // Client::open picks the store (--root, else the library's default root),
  // so that choice is made in one place; it opens no connection.
  auto client = Client::open(client_options(g));
  if (!client) return fail(client.error());
  return body(client->store());
}

int fail(const Error& error) {
  std::cerr << "Error: " << error.message() << "\n";
  return 1;
}

void warn(std::string_view what) { std::cerr << "Warning: " << what << "\n"; }

}  // namespace imgpull::cli
