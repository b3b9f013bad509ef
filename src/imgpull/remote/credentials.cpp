#include "imgpull/credentials.h"

#include "remote/auth.h"  // base64_encode

#include <fcntl.h>
#include <poll.h>
#include <sys/stat.h>
#include <pwd.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <climits>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <utility>
#include <vector>

extern char** environ;

namespace imgpull {
namespace {

using nlohmann::json;

// A failing helper's own words, for the message: one line, this long at most.
constexpr size_t kMaxHelperMessage = 200;
// What a helper prints when it has nothing for the server (docker-credential-helpers).
constexpr std::string_view kHelperNotFoundMessage = "credentials not found in native keychain";
// The helper Username that says "Secret is an identity token" (docker's tokenUsername).
constexpr std::string_view kIdentityTokenUsername = "<token>";

Error corrupt(const std::string& origin, std::string_view what) {
  return Error(ErrorCode::kCorrupt, fmt::format("docker config {}: {}", origin, what));
}

char ascii_lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

bool iequals(std::string_view a, std::string_view b) {
  return std::equal(a.begin(), a.end(), b.begin(), b.end(),
                    [](char x, char y) { return ascii_lower(x) == ascii_lower(y); });
}

// Docker reads config.json (and helper output) with Go's encoding/json, which
// matches keys to struct fields case-insensitively, preferring an exact match:
// "credsstore" works for docker, so it works here.
const json* field(const json& object, std::string_view name) {
  if (auto it = object.find(std::string(name)); it != object.end()) return &*it;
  for (auto it = object.begin(); it != object.end(); ++it) {
    if (iequals(it.key(), name)) return &it.value();
  }
  return nullptr;
}

// A string field: absent and null mean "" (Go leaves the field alone);
// std::nullopt for any other type, which fails docker's whole decode.
std::optional<std::string> string_field(const json& object, std::string_view name) {
  const json* value = field(object, name);
  if (value == nullptr || value->is_null()) return std::string();
  if (!value->is_string()) return std::nullopt;
  return value->get<std::string>();
}

// Go's base64.StdEncoding, as docker decodes "auth": padding required, '\r'
// and '\n' skipped, nothing after the padding.
std::optional<std::string> base64_decode(std::string_view text) {
  std::string out;
  uint32_t bits = 0;
  int nbits = 0;
  size_t symbols = 0;
  size_t padding = 0;
  for (char c : text) {
    if (c == '\r' || c == '\n') continue;
    ++symbols;
    if (c == '=') {
      ++padding;
      continue;
    }
    int v = (c >= 'A' && c <= 'Z')   ? c - 'A'
            : (c >= 'a' && c <= 'z') ? c - 'a' + 26
            : (c >= '0' && c <= '9') ? c - '0' + 52
            : c == '+'               ? 62
            : c == '/'               ? 63
                                     : -1;
    if (v < 0 || padding > 0) return std::nullopt;
    bits = (bits << 6) | static_cast<uint32_t>(v);
    nbits += 6;
    if (nbits >= 8) {
      nbits -= 8;
      out += static_cast<char>((bits >> nbits) & 0xff);
      bits &= (1u << nbits) - 1;
    }
  }
  if (symbols % 4 != 0 || padding > 2) return std::nullopt;
  return out;
}

// docker's decodeAuth: "user:password", split on the first ':'. Go decodes
// into a buffer sized for the padded length, hence docker trims NULs from the
// password; so do we.
Result<Credentials> decode_auth(const std::string& auth, const std::string& origin, const std::string& where) {
  std::optional<std::string> decoded = base64_decode(auth);
  if (!decoded) return corrupt(origin, where + "auth is not valid base64");
  size_t colon = decoded->find(':');
  if (colon == std::string::npos || colon == 0) {
    return corrupt(origin, where + "auth does not hold \"username:password\"");
  }
  Credentials c;
  c.username = decoded->substr(0, colon);
  c.password = decoded->substr(colon + 1);
  size_t first = c.password.find_first_not_of('\0');
  c.password = first == std::string::npos ? std::string()
                                          : c.password.substr(first, c.password.find_last_not_of('\0') + 1 - first);
  return c;
}

bool is_docker_hub(std::string_view domain) {
  return domain == "docker.io" || domain == "index.docker.io" || domain == "registry-1.docker.io";
}

bool is_scheme(std::string_view s) {
  if (s.empty() || !std::isalpha(static_cast<unsigned char>(s[0]))) return false;
  for (char c : s) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '+' && c != '-' && c != '.') return false;
  }
  return true;
}

bool is_optional_port(std::string_view colon_port) {  // "", ":" or ":digits", as Go's url does
  if (colon_port.empty()) return true;
  if (colon_port[0] != ':') return false;
  for (char c : colon_port.substr(1)) {
    if (c < '0' || c > '9') return false;
  }
  return true;
}

// docker/cli's credentials.ConvertToHostname: the host[:port] an auths key
// names. A key that is a URL ("https://host:5000/v1/") gives Go's
// net.JoinHostPort(u.Hostname(), u.Port()) (so "https://[::1]/" gives "::1");
// anything else, or a URL Go would not parse, gives the text before the first '/'.
std::string convert_to_hostname(std::string_view key) {
  std::string_view fallback = key.substr(0, key.find('/'));
  size_t sep = key.find("://");
  if (sep == std::string_view::npos || !is_scheme(key.substr(0, sep))) return std::string(fallback);
  std::string_view authority = key.substr(sep + 3);
  authority = authority.substr(0, authority.find_first_of("/?#"));
  if (size_t at = authority.rfind('@'); at != std::string_view::npos) authority = authority.substr(at + 1);
  std::string_view host = authority;
  std::string_view port;
  if (authority.starts_with('[')) {
    size_t close = authority.find(']');
    if (close == std::string_view::npos || !is_optional_port(authority.substr(close + 1))) {
      return std::string(fallback);
    }
    host = authority.substr(1, close - 1);
    port = authority.substr(std::min(close + 2, authority.size()));
  } else if (size_t colon = authority.rfind(':'); colon != std::string_view::npos) {
    if (!is_optional_port(authority.substr(colon))) return std::string(fallback);
    host = authority.substr(0, colon);
    port = authority.substr(colon + 1);
  }
  if (host.empty()) return std::string(fallback);
  if (port.empty()) return std::string(host);
  // Go's JoinHostPort brackets only a host with a colon (IPv6) in it.
  return host.find(':') != std::string_view::npos ? fmt::format("[{}]:{}", host, port) : fmt::format("{}:{}", host, port);
}

// Owns a file descriptor.
class Fd {
 public:
  Fd() = default;
  explicit Fd(int fd) : fd_(fd) {}
  Fd(Fd&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  Fd& operator=(Fd&& other) noexcept {
    if (this != &other) {
      reset();
      fd_ = std::exchange(other.fd_, -1);
    }
    return *this;
  }
  ~Fd() { reset(); }
  int get() const { return fd_; }
  void reset() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

 private:
  int fd_ = -1;
};

// Reads a whole (small) file; std::nullopt when it does not exist.
Result<std::optional<std::string>> read_small_file(const std::string& path, size_t limit) {
  auto io_error = [&](int error) {
    return Error(ErrorCode::kIo, fmt::format("reading docker config {}: {}", path, std::strerror(error)));
  };
  Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.get() < 0) {
    if (errno == ENOENT) return std::optional<std::string>();
    return io_error(errno);
  }
  std::string text;
  char buf[16 * 1024];
  for (;;) {
    ssize_t n = ::read(fd.get(), buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return io_error(errno);
    if (n == 0) return std::optional<std::string>(std::move(text));
    text.append(buf, static_cast<size_t>(n));
    if (text.size() > limit) {
      return Error(ErrorCode::kTooLarge,
                   fmt::format("docker config {} is over the limit of {} bytes", path, limit));
    }
  }
}

std::string home_directory() {
  // As Go's os/user-backed homedir.Get(): $HOME, else the password database.
  if (const char* home = std::getenv("HOME"); home != nullptr && *home != '\0') return home;
  std::vector<char> buf(16 * 1024);
  passwd pw{};
  passwd* result = nullptr;
  if (getpwuid_r(getuid(), &pw, buf.data(), buf.size(), &result) == 0 && result != nullptr &&
      result->pw_dir != nullptr) {
    return result->pw_dir;
  }
  return "";
}

// ---- Running a helper ------------------------------------------------------

struct Pipe {
  Fd read;
  Fd write;
};

// Close-on-exec, so that no other program started meanwhile (by another
// thread) inherits an end and holds the pipe open. Never on 0-2 (possible
// when our own stdio is closed), so that the child's dup2s onto 0-2 cannot
// overwrite an end before it is itself dup2'ed, whatever order the pipes
// are made in.
Result<Pipe> make_pipe() {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) {
    return Error(ErrorCode::kUnavailable, fmt::format("creating a pipe: {}", std::strerror(errno)));
  }
  Pipe pipe{Fd(fds[0]), Fd(fds[1])};
  for (Fd* end : {&pipe.read, &pipe.write}) {
    if (end->get() > STDERR_FILENO) continue;
    int moved = ::fcntl(end->get(), F_DUPFD_CLOEXEC, STDERR_FILENO + 1);
    if (moved < 0) {
      return Error(ErrorCode::kUnavailable, fmt::format("creating a pipe: {}", std::strerror(errno)));
    }
    *end = Fd(moved);
  }
  return pipe;
}

// A started child that is killed and reaped if we give up on it (timeout,
// too much output, an error), so none is left running or as a zombie.
class Child {
 public:
  explicit Child(pid_t pid) : pid_(pid) {}
  Child(const Child&) = delete;
  Child& operator=(const Child&) = delete;
  ~Child() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGKILL);
    while (::waitpid(pid_, nullptr, 0) < 0 && errno == EINTR) {
    }
  }

  // The waitpid status once it exits; std::nullopt if it is still running at `deadline`.
  Result<std::optional<int>> wait_until(std::chrono::steady_clock::time_point deadline) {
    for (;;) {
      int status = 0;
      pid_t r = ::waitpid(pid_, &status, WNOHANG);
      if (r == pid_) {
        pid_ = 0;
        return std::optional<int>(status);
      }
      if (r < 0 && errno != EINTR) {
        pid_ = 0;  // not ours to reap (SIGCHLD ignored?); nothing left to kill either
        return Error(ErrorCode::kUnavailable, fmt::format("waiting for a child: {}", std::strerror(errno)));
      }
      if (std::chrono::steady_clock::now() >= deadline) return std::optional<int>();
      ::poll(nullptr, 0, 10);  // it closed its output and is about to exit: a short nap
    }
  }

 private:
  pid_t pid_;
};

int milliseconds_until(std::chrono::steady_clock::time_point deadline) {
  auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
  return static_cast<int>(std::clamp<int64_t>(left.count(), 0, INT_MAX));
}

struct ProcessResult {
  int status = 0;  // from waitpid
  std::string out;
  std::string err;
};

// Runs `program` (searched on PATH, no shell) with `args`, `input` on its
// stdin, collecting stdout and stderr, bounded in size and time.
Result<ProcessResult> run_process(const std::string& program, const std::vector<std::string>& args,
                                  std::string_view input, std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  auto unavailable = [&](std::string_view what) {
    return Error(ErrorCode::kUnavailable, fmt::format("{}: {}", program, what));
  };
  IMGPULL_ASSIGN_OR_RETURN(Pipe in, make_pipe());
  IMGPULL_ASSIGN_OR_RETURN(Pipe out, make_pipe());
  IMGPULL_ASSIGN_OR_RETURN(Pipe err, make_pipe());

  // The input goes into the pipe before the child exists: up to PIPE_BUF it
  // fits without blocking, and a child that exits without reading it cannot
  // get us killed by SIGPIPE.
  if (input.size() > PIPE_BUF) return unavailable("input too long for a pipe");
  while (!input.empty()) {
    ssize_t n = ::write(in.write.get(), input.data(), input.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return unavailable(fmt::format("writing its input: {}", std::strerror(errno)));
    input.remove_prefix(static_cast<size_t>(n));
  }
  in.write.reset();

  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, in.read.get(), STDIN_FILENO);
  posix_spawn_file_actions_adddup2(&actions, out.write.get(), STDOUT_FILENO);
  posix_spawn_file_actions_adddup2(&actions, err.write.get(), STDERR_FILENO);
  std::vector<char*> argv;
  argv.push_back(const_cast<char*>(program.c_str()));  // posix_spawn does not write to them
  for (const std::string& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  pid_t pid = 0;
  int rc = ::posix_spawnp(&pid, program.c_str(), &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  if (rc == ENOENT) return unavailable("not found on PATH");
  if (rc != 0) return unavailable(fmt::format("cannot run it: {}", std::strerror(rc)));
  Child child(pid);
  // Our copies of the child's ends would keep its output pipes from ever
  // reaching end-of-file.
  in.read.reset();
  out.write.reset();
  err.write.reset();

  ProcessResult result;
  pollfd fds[2] = {{out.read.get(), POLLIN, 0}, {err.read.get(), POLLIN, 0}};
  std::string* sinks[2] = {&result.out, &result.err};
  auto timed_out = [&] {
    return unavailable(fmt::format("did not finish within {} ms (killed)", timeout.count()));
  };
  while (fds[0].fd >= 0 || fds[1].fd >= 0) {
    int wait_ms = milliseconds_until(deadline);
    if (wait_ms == 0) return timed_out();
    int n = ::poll(fds, 2, wait_ms);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return unavailable(fmt::format("waiting for its output: {}", std::strerror(errno)));
    for (int i = 0; i < 2; ++i) {
      if (fds[i].fd < 0 || fds[i].revents == 0) continue;
      char buf[4096];
      ssize_t r = ::read(fds[i].fd, buf, sizeof buf);
      if (r < 0 && errno == EINTR) continue;
      if (r < 0) return unavailable(fmt::format("reading its output: {}", std::strerror(errno)));
      if (r == 0) {
        fds[i].fd = -1;  // end of file; poll skips negative descriptors
        continue;
      }
      sinks[i]->append(buf, static_cast<size_t>(r));
      if (result.out.size() + result.err.size() > kMaxCredentialHelperOutput) {
        return unavailable(fmt::format("wrote more than {} bytes (killed)", kMaxCredentialHelperOutput));
      }
    }
  }
  IMGPULL_ASSIGN_OR_RETURN(std::optional<int> status, child.wait_until(deadline));
  if (!status) return timed_out();
  result.status = *status;
  return result;
}

std::string trim_space(std::string_view s) {
  const char* space = " \t\r\n\v\f";
  size_t first = s.find_first_not_of(space);
  if (first == std::string_view::npos) return "";
  return std::string(s.substr(first, s.find_last_not_of(space) + 1 - first));
}

// A helper's complaint for our message: its first line, printable, short.
std::string first_line(std::string_view s) {
  s = s.substr(0, s.find('\n'));
  std::string out;
  for (char c : s.substr(0, kMaxHelperMessage)) {
    out += (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) ? '?' : c;
  }
  if (s.size() > kMaxHelperMessage) out += "...";
  return out;
}

}  // namespace

std::string docker_config_path() {
  if (const char* env = std::getenv("DOCKER_CONFIG"); env != nullptr && *env != '\0') {
    return std::string(env) + "/config.json";
  }
  std::string home = home_directory();
  return home.empty() ? "" : home + "/.docker/config.json";
}

Result<DockerConfig> DockerConfig::load() {
  std::string path = docker_config_path();
  if (path.empty()) return parse("", "(no home directory)");
  return load_file(path);
}

Result<DockerConfig> DockerConfig::load_file(const std::string& path) {
  IMGPULL_ASSIGN_OR_RETURN(std::optional<std::string> text, read_small_file(path, kMaxDockerConfigSize));
  if (!text) return parse("", path);  // docker too treats a missing file as an empty config
  return parse(*text, path);
}

Result<DockerConfig> DockerConfig::parse(std::string_view text, std::string origin_for_errors) {
  DockerConfig config;
  config.origin_ = std::move(origin_for_errors);
  const std::string& origin = config.origin_;
  // Docker's decoder stops at end of input without complaint: an empty file
  // is an empty config.
  if (text.find_first_not_of(" \t\r\n") == std::string_view::npos) return config;
  json doc;
  try {
    doc = json::parse(text);
  } catch (const json::exception& e) {
    // Only the offset: nlohmann's own message quotes the input around the
    // error, which may be a password.
    const auto* parse_error = dynamic_cast<const json::parse_error*>(&e);
    return corrupt(origin, parse_error ? fmt::format("malformed JSON at byte {}", parse_error->byte)
                                       : std::string("malformed JSON"));
  }
  if (doc.is_null()) return config;
  if (!doc.is_object()) return corrupt(origin, "the document is not a JSON object");

  auto get_string = [&](const json& object, std::string_view name, const std::string& where) -> Result<std::string> {
    std::optional<std::string> value = string_field(object, name);
    if (!value) return corrupt(origin, fmt::format("{}{} is not a string", where, name));
    return *value;
  };

  if (const json* auths = field(doc, "auths"); auths != nullptr && !auths->is_null()) {
    if (!auths->is_object()) return corrupt(origin, "\"auths\" is not an object");
    for (auto it = auths->begin(); it != auths->end(); ++it) {
      const std::string where = fmt::format("auths[\"{}\"].", it.key());
      const json& entry = it.value();
      Credentials c;
      if (!entry.is_null()) {
        if (!entry.is_object()) return corrupt(origin, fmt::format("auths[\"{}\"] is not an object", it.key()));
        IMGPULL_ASSIGN_OR_RETURN(std::string auth, get_string(entry, "auth", where));
        IMGPULL_ASSIGN_OR_RETURN(c.username, get_string(entry, "username", where));
        IMGPULL_ASSIGN_OR_RETURN(c.password, get_string(entry, "password", where));
        IMGPULL_ASSIGN_OR_RETURN(c.identity_token, get_string(entry, "identitytoken", where));
        if (!auth.empty()) {
          // As docker: "auth", when present, replaces username and password.
          IMGPULL_ASSIGN_OR_RETURN(Credentials decoded, decode_auth(auth, origin, where));
          c.username = std::move(decoded.username);
          c.password = std::move(decoded.password);
        }
      }
      config.auths_.emplace(it.key(), std::move(c));
    }
  }

  IMGPULL_ASSIGN_OR_RETURN(config.creds_store_, get_string(doc, "credsStore", ""));

  if (const json* helpers = field(doc, "credHelpers"); helpers != nullptr && !helpers->is_null()) {
    if (!helpers->is_object()) return corrupt(origin, "\"credHelpers\" is not an object");
    for (auto it = helpers->begin(); it != helpers->end(); ++it) {
      if (!it.value().is_string() && !it.value().is_null()) {
        return corrupt(origin, fmt::format("credHelpers[\"{}\"] is not a string", it.key()));
      }
      config.cred_helpers_.emplace(it.key(), it.value().is_string() ? it.value().get<std::string>() : "");
    }
  }
  return config;
}

Result<std::optional<Credentials>> DockerConfig::credentials_for(std::string_view registry_domain) const {
  // docker files Docker Hub under its old index URL, everything else under
  // the domain as the reference has it.
  const std::string key =
      is_docker_hub(registry_domain) ? std::string(kDockerHubCredentialKey) : std::string(registry_domain);

  // credHelpers[key] overrides credsStore even when it is "": that sends the
  // registry back to the plain-text auths.
  std::string helper = creds_store_;
  if (auto it = cred_helpers_.find(key); !key.empty() && it != cred_helpers_.end()) helper = it->second;
  if (!helper.empty()) {
    // The helper is then the only source, as for docker: its "not found"
    // means anonymous, not "look in auths".
    auto found = run_credential_helper(helper, key);
    if (!found) {
      return std::move(found).error().wrap(
          fmt::format("credentials for {} (helper configured in {})", registry_domain, origin_));
    }
    return found;
  }

  auto entry = auths_.find(key);
  if (entry == auths_.end()) {
    // Keys docker wrote long ago, or people write by hand, are URLs:
    // "https://host:5000/v1/" serves "host:5000".
    entry = std::find_if(auths_.begin(), auths_.end(),
                         [&](const auto& e) { return convert_to_hostname(e.first) == key; });
  }
  if (entry == auths_.end() || entry->second.empty()) return std::optional<Credentials>();
  return std::optional<Credentials>(entry->second);
}

Result<std::optional<Credentials>> run_credential_helper(const std::string& helper_name,
                                                         const std::string& server_url,
                                                         std::chrono::milliseconds timeout) {
  const std::string program = "docker-credential-" + helper_name;
  // The config names a helper by suffix; with a '/' posix_spawnp would run a
  // path instead of searching PATH, which is not what a helper name means.
  if (helper_name.empty() || helper_name.find('/') != std::string::npos) {
    return Error(ErrorCode::kInvalidArgument, fmt::format("invalid credential helper name \"{}\"", helper_name));
  }
  if (server_url.size() > PIPE_BUF) {
    return Error(ErrorCode::kInvalidArgument,
                 fmt::format("server URL for {} is over {} bytes", program, PIPE_BUF));
  }
  IMGPULL_ASSIGN_OR_RETURN(ProcessResult run, run_process(program, {"get"}, server_url, timeout));
  if (!WIFEXITED(run.status)) {
    return Error(ErrorCode::kUnavailable,
                 fmt::format("{} get was killed by signal {}", program, WTERMSIG(run.status)));
  }
  if (WEXITSTATUS(run.status) != 0) {
    // Helpers report on stdout (docker-credential-helpers' Serve does);
    // stderr is the fallback for those that do not.
    std::string said = trim_space(run.out);
    if (said == kHelperNotFoundMessage) return std::optional<Credentials>();
    if (said.empty()) said = trim_space(run.err);
    return Error(ErrorCode::kUnauthorized,
                 fmt::format("{} get failed for {} (exit status {}){}", program, server_url,
                             WEXITSTATUS(run.status), said.empty() ? "" : ": " + first_line(said)));
  }
  // From here on the output holds secrets: messages describe it, never quote it.
  json doc = json::parse(run.out, nullptr, /*allow_exceptions=*/false);
  std::optional<std::string> username;
  std::optional<std::string> secret;
  if (doc.is_object()) {
    username = string_field(doc, "Username");
    secret = string_field(doc, "Secret");
  }
  if (!username || !secret) {
    return Error(ErrorCode::kUnavailable,
                 fmt::format("{} get answered with something other than a credentials JSON object "
                             "({} bytes)",
                             program, run.out.size()));
  }
  Credentials c;
  if (*username == kIdentityTokenUsername) {
    c.identity_token = std::move(*secret);
  } else {
    c.username = std::move(*username);
    c.password = std::move(*secret);
  }
  if (c.empty()) return std::optional<Credentials>();
  return std::optional<Credentials>(std::move(c));
}

}  // namespace imgpull

namespace imgpull {
namespace {

// A helper's failure, in its own words (stdout, else stderr), never its input.
Error helper_failure(const std::string& program, std::string_view verb, const ProcessResult& run) {
  std::string said = trim_space(run.out);
  if (said.empty()) said = trim_space(run.err);
  if (!WIFEXITED(run.status)) {
    return Error(ErrorCode::kUnavailable, fmt::format("{} {} was killed by signal {}", program, verb, WTERMSIG(run.status)));
  }
  return Error(ErrorCode::kUnavailable, fmt::format("{} {} failed (exit status {}){}", program, verb,
                                                    WEXITSTATUS(run.status), said.empty() ? "" : ": " + first_line(said)));
}

Result<std::string> helper_program(const std::string& helper_name) {
  if (helper_name.empty() || helper_name.find('/') != std::string::npos) {
    return Error(ErrorCode::kInvalidArgument, fmt::format("invalid credential helper name \"{}\"", helper_name));
  }
  return "docker-credential-" + helper_name;
}

// The config document as it is (every key kept, in its order); an empty
// object when the file does not exist.
Result<nlohmann::ordered_json> read_config_document(const std::string& path) {
  IMGPULL_ASSIGN_OR_RETURN(std::optional<std::string> text, read_small_file(path, kMaxDockerConfigSize));
  if (!text || text->find_first_not_of(" \t\r\n") == std::string::npos) return nlohmann::ordered_json::object();
  auto doc = nlohmann::ordered_json::parse(*text, nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded() || !doc.is_object()) return corrupt(path, "not a JSON object (left untouched)");
  return doc;
}

// Replaces `path` with `text`: a temporary file beside it (mode 0600, the
// old file's owner), fsync'ed, then renamed over it, so a reader sees the
// old or the new file, never half of one. A symlinked config.json is
// written where the link points, as Docker does.
Status write_config_atomically(std::string path, const std::string& text) {
  namespace fs = std::filesystem;
  auto io = [&](std::string_view what, int error) {
    return Error(ErrorCode::kIo, fmt::format("writing docker config {}: {}: {}", path, what, std::strerror(error)));
  };
  std::error_code ec;
  if (fs::is_symlink(path, ec)) {
    fs::path target = fs::read_symlink(path, ec);
    if (!ec) path = (target.is_absolute() ? target : fs::path(path).parent_path() / target).string();
  }
  fs::path dir = fs::path(path).parent_path();
  if (!dir.empty() && !fs::exists(dir, ec)) {
    if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) {
      fs::create_directories(dir, ec);  // deeper paths: DOCKER_CONFIG=/new/a/b
      if (ec) return io("creating its directory", ec.value());
      ::chmod(dir.c_str(), 0700);
    }
  }
  struct stat old {};
  bool existed = ::stat(path.c_str(), &old) == 0;
  std::string tmp = (dir / (fs::path(path).filename().string() + ".tmp-XXXXXX")).string();
  Fd fd(::mkstemp(tmp.data()));  // mode 0600
  if (fd.get() < 0) return io("creating a temporary file", errno);
  auto fail = [&](std::string_view what) {
    int error = errno;
    ::unlink(tmp.c_str());
    return io(what, error);
  };
  if (::fchmod(fd.get(), 0600) != 0) return fail("fchmod");
  if (existed && (old.st_uid != ::geteuid() || old.st_gid != ::getegid())) {
    (void)::fchown(fd.get(), old.st_uid, old.st_gid);  // only root may; others keep their own
  }
  std::string_view rest = text;
  while (!rest.empty()) {
    ssize_t n = ::write(fd.get(), rest.data(), rest.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return fail("write");
    rest.remove_prefix(static_cast<size_t>(n));
  }
  if (::fsync(fd.get()) != 0) return fail("fsync");
  fd.reset();
  if (::rename(tmp.c_str(), path.c_str()) != 0) return fail("rename");
  return {};
}

std::string serialise_config(const nlohmann::ordered_json& doc) { return doc.dump(1, '\t') + "\n"; }

}  // namespace

std::string credential_key(std::string_view registry) {
  std::string host = convert_to_hostname(registry);
  std::transform(host.begin(), host.end(), host.begin(), [](unsigned char c) { return std::tolower(c); });
  if (host.empty() || is_docker_hub(host)) return std::string(kDockerHubCredentialKey);
  return host;
}

Result<std::string> credential_helper_for(const std::string& config_path, const std::string& key) {
  IMGPULL_ASSIGN_OR_RETURN(DockerConfig config, DockerConfig::load_file(config_path));
  if (auto it = config.cred_helpers_.find(key); it != config.cred_helpers_.end()) return it->second;
  return config.creds_store_;
}

Status store_in_credential_helper(const std::string& helper_name, const std::string& server_url,
                                  const Credentials& credentials) {
  IMGPULL_ASSIGN_OR_RETURN(std::string program, helper_program(helper_name));
  nlohmann::json input = {{"ServerURL", server_url},
                          {"Username", credentials.identity_token.empty() ? credentials.username
                                                                          : std::string(kIdentityTokenUsername)},
                          {"Secret", credentials.identity_token.empty() ? credentials.password
                                                                        : credentials.identity_token}};
  IMGPULL_ASSIGN_OR_RETURN(ProcessResult run, run_process(program, {"store"}, input.dump(), kCredentialHelperTimeout));
  if (!WIFEXITED(run.status) || WEXITSTATUS(run.status) != 0) return helper_failure(program, "store", run);
  return {};
}

Result<bool> erase_from_credential_helper(const std::string& helper_name, const std::string& server_url) {
  IMGPULL_ASSIGN_OR_RETURN(std::string program, helper_program(helper_name));
  IMGPULL_ASSIGN_OR_RETURN(ProcessResult run, run_process(program, {"erase"}, server_url, kCredentialHelperTimeout));
  if (WIFEXITED(run.status) && WEXITSTATUS(run.status) == 0) return true;
  if (trim_space(run.out) == kHelperNotFoundMessage) return false;
  return helper_failure(program, "erase", run);
}

Status save_login(const std::string& config_path, const std::string& key, const Credentials& credentials) {
  IMGPULL_ASSIGN_OR_RETURN(nlohmann::ordered_json doc, read_config_document(config_path));
  IMGPULL_ASSIGN_OR_RETURN(std::string helper, credential_helper_for(config_path, key));
  nlohmann::ordered_json entry = nlohmann::ordered_json::object();
  if (!helper.empty()) {
    IMGPULL_TRY(store_in_credential_helper(helper, key, credentials));
    // As docker's native store: config.json keeps the entry, without secrets.
  } else if (!credentials.identity_token.empty()) {
    entry["auth"] = "";
    entry["identitytoken"] = credentials.identity_token;
  } else {
    entry["auth"] = base64_encode(credentials.username + ":" + credentials.password);
  }
  if (!doc.contains("auths") || !doc["auths"].is_object()) doc["auths"] = nlohmann::ordered_json::object();
  doc["auths"][key] = entry;
  return write_config_atomically(config_path, serialise_config(doc));
}

Result<bool> remove_login(const std::string& config_path, const std::string& key) {
  IMGPULL_ASSIGN_OR_RETURN(nlohmann::ordered_json doc, read_config_document(config_path));
  IMGPULL_ASSIGN_OR_RETURN(std::string helper, credential_helper_for(config_path, key));
  bool removed = false;
  if (!helper.empty()) {
    IMGPULL_ASSIGN_OR_RETURN(removed, erase_from_credential_helper(helper, key));
  }
  if (doc.contains("auths") && doc["auths"].is_object()) {
    auto& auths = doc["auths"];
    // Entries docker wrote long ago under a URL ("https://host:5000/v1/") go too.
    std::vector<std::string> doomed;
    for (auto it = auths.begin(); it != auths.end(); ++it) {
      if (it.key() == key || credential_key(it.key()) == key) doomed.push_back(it.key());
    }
    for (const auto& k : doomed) auths.erase(k);
    if (!doomed.empty()) {
      IMGPULL_TRY(write_config_atomically(config_path, serialise_config(doc)));
      removed = true;
    }
  }
  return removed;
}

}  // namespace imgpull
