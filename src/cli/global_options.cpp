#include "global_options.h"

#include <chrono>
#include <cstdint>
#include <iostream>
#include <string_view>

namespace imgpull::cli {

void add_global_options(CLI::App& app, GlobalOptions& g) {
  app.add_option("--root", g.root, "Store directory (default: /var/lib/imgpull as root, else $XDG_DATA_HOME/imgpull)");
  app.add_flag("-D,--debug", g.debug, "Log every HTTP exchange to stderr");
  app.add_option("--insecure-registry", g.insecure_registries,
                 "Registry host that may use plain http or an unverified certificate (repeatable)");
  app.add_option("--retries", g.retries, "Attempts after the first for a failed request (5xx, 429, network)")
      ->default_val(5)->check(CLI::Range(0, 100));
  app.add_option("--retry-max-wait", g.retry_max_wait_seconds,
                 "Longest wait in seconds between attempts, Retry-After included")->default_val(30)->check(CLI::Range(0.0, 3600.0));
  app.add_option("--stall-timeout", g.stall_timeout_seconds,
                 "Seconds without a byte before a transfer counts as stalled and is resumed")->default_val(60)->check(CLI::Range(1, 3600));
  app.add_option("--certs-dir", g.certs_dirs,
                 "Directory of <host>/ directories (hosts.toml, ca.crt, client.cert/.key), searched before "
                 "/etc/imgpull/certs.d, /etc/docker/certs.d and /etc/containerd/certs.d (repeatable)");
  app.set_version_flag("--version", std::string("imgpull ") + IMGPULL_VERSION);
}

ClientOptions client_options(const GlobalOptions& g) {
  ClientOptions options;
  options.root = g.root;
  options.insecure_registries = g.insecure_registries;
  options.certs_dirs.assign(g.certs_dirs.begin(), g.certs_dirs.end());
  options.retries = g.retries;
  options.retry_max_wait = std::chrono::milliseconds(static_cast<int64_t>(g.retry_max_wait_seconds * 1000));
  options.stall_timeout_seconds = g.stall_timeout_seconds;
  if (g.debug) {
    options.debug_log = [](std::string_view line) { std::cerr << "DEBUG " << line << "\n"; };
  }
  return options;
}

}  // namespace imgpull::cli
