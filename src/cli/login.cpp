// `imgpull login` and `imgpull logout`: registry credentials kept as docker
// keeps them (~/.docker/config.json or its credential helpers).
#include <termios.h>
#include <unistd.h>

#include <iostream>
#include <iterator>
#include <memory>
#include <optional>
#include <string>

#include "commands.h"
#include "imgpull/client.h"
#include "imgpull/credentials.h"

namespace imgpull::cli {
namespace {

struct LoginFlags {
  std::string server;  // "" = Docker Hub
  std::string username;
  std::string password;
  bool password_stdin = false;
};

// One line from the terminal, echo off for secrets.
std::optional<std::string> prompt(const char* label, bool secret) {
  std::cerr << label << std::flush;
  termios old{};
  bool restore = secret && tcgetattr(STDIN_FILENO, &old) == 0;
  if (restore) {
    termios quiet = old;
    quiet.c_lflag &= ~static_cast<tcflag_t>(ECHO);
    tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet);
  }
  std::string line;
  bool got = static_cast<bool>(std::getline(std::cin, line));
  if (restore) {
    tcsetattr(STDIN_FILENO, TCSAFLUSH, &old);
    std::cerr << "\n";
  }
  if (!got) return std::nullopt;
  return line;
}

// The registry host to talk to for a credential key.
std::string login_host(const std::string& key) {
  return key == kDockerHubCredentialKey ? "registry-1.docker.io" : key;
}

// Where docker keeps logins; an error when there is no home directory for it.
Result<std::string> login_config_path() {
  std::string config_path = docker_config_path();
  if (config_path.empty()) {
    return Error(ErrorCode::kInvalidArgument, "no home directory for ~/.docker/config.json; set DOCKER_CONFIG");
  }
  return config_path;
}

int run_login(const GlobalOptions& g, LoginFlags flags) {
  if (flags.password_stdin && !flags.password.empty()) {
    return fail(Error(ErrorCode::kInvalidArgument, "--password and --password-stdin are mutually exclusive"));
  }
  if (flags.password_stdin && flags.username.empty()) {
    return fail(Error(ErrorCode::kInvalidArgument, "Must provide --username with --password-stdin"));
  }
  if (!flags.password.empty()) {
    std::cerr << "WARNING! Using --password via the CLI is insecure. Use --password-stdin.\n";
  }
  if (flags.password_stdin) {
    std::string all((std::istreambuf_iterator<char>(std::cin)), std::istreambuf_iterator<char>());
    if (all.ends_with('\n')) all.pop_back();
    if (all.ends_with('\r')) all.pop_back();
    flags.password = std::move(all);
  }
  const std::string key = credential_key(flags.server);
  bool tty = ::isatty(STDIN_FILENO) != 0;
  if (flags.username.empty() || (flags.password.empty() && !flags.password_stdin)) {
    if (!tty) return fail(Error(ErrorCode::kInvalidArgument, "Cannot perform an interactive login from a non TTY device"));
    if (flags.username.empty()) {
      auto user = prompt("Username: ", false);
      if (!user || user->empty()) return fail(Error(ErrorCode::kInvalidArgument, "Username is required"));
      flags.username = *user;
    }
    if (flags.password.empty()) {
      auto pass = prompt("Password: ", true);
      if (!pass) return fail(Error(ErrorCode::kInvalidArgument, "Password is required"));
      flags.password = *pass;
    }
  }
  if (flags.password.empty()) return fail(Error(ErrorCode::kInvalidArgument, "Password is required"));
  Credentials credentials{flags.username, flags.password, ""};
  std::string host = login_host(key);
  std::string domain = key == kDockerHubCredentialKey ? "docker.io" : key;
  Status verified = check_login(client_options(g), host, domain, credentials);
  if (!verified.ok()) return fail(std::move(verified).error().wrap("login to " + domain + " failed"));
  auto config_path = login_config_path();
  if (!config_path) return fail(config_path.error());
  auto helper = credential_helper_for(*config_path, key);
  if (!helper) return fail(helper.error());
  Status saved = save_login(*config_path, key, credentials);
  if (!saved.ok()) return fail(std::move(saved).error().wrap("storing credentials for " + domain));
  if (helper->empty()) {
    std::cerr << "WARNING! Your password will be stored unencrypted in " << *config_path << ".\n"
              << "Configure a credential helper (credsStore) to store it elsewhere.\n";
  }
  std::cout << "Login Succeeded\n";
  return 0;
}

int run_logout(const std::string& server) {
  const std::string key = credential_key(server);
  auto config_path = login_config_path();
  if (!config_path) return fail(config_path.error());
  auto removed = remove_login(*config_path, key);
  if (!removed) return fail(std::move(removed).error().wrap("logout from " + key));
  if (!*removed) {
    std::cout << "Not logged in to " << key << "\n";
    return 0;
  }
  std::cout << "Removing login credentials for " << key << "\n";
  return 0;
}

}  // namespace

void add_login_command(CLI::App& app, const GlobalOptions& g, Runner& run) {
  auto flags = std::make_shared<LoginFlags>();
  auto* login = app.add_subcommand("login", "Check credentials against a registry and store them as docker login does");
  login->add_option("server", flags->server, "Registry host[:port] (default: Docker Hub)");
  login->add_option("-u,--username", flags->username, "Username");
  login->add_option("-p,--password", flags->password, "Password (visible to other users: prefer --password-stdin)");
  login->add_flag("--password-stdin", flags->password_stdin, "Take the password from stdin");
  login->footer(
      "Stores the credentials in the credential helper config.json names (credHelpers, credsStore),\n"
      "else base64-encoded in $DOCKER_CONFIG/config.json (default ~/.docker/config.json), mode 0600.\n"
      "Examples:\n  imgpull login -u alice localhost:5000\n"
      "  echo \"$TOKEN\" | imgpull login -u alice --password-stdin registry.example.com\n"
      "  imgpull login -u alice   # Docker Hub");
  run_when_parsed(*login, run, [&g, flags] { return run_login(g, *flags); });
}

void add_logout_command(CLI::App& app, const GlobalOptions& /*g*/, Runner& run) {
  auto server = std::make_shared<std::string>();
  auto* logout = app.add_subcommand("logout", "Remove the credentials stored for a registry");
  logout->add_option("server", *server, "Registry host[:port] (default: Docker Hub)");
  logout->footer("Examples:\n  imgpull logout localhost:5000\n  imgpull logout   # Docker Hub");
  run_when_parsed(*logout, run, [server] { return run_logout(*server); });
}

}  // namespace imgpull::cli
