// Running docker's credential helpers (docker-credential-<name> get, store,
// erase) and reading their answers as docker does.
#include "imgpull/credentials.h"

#include <limits.h>
#include <sys/wait.h>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "base/process.h"
#include "base/text.h"
#include "remote/docker_json.h"

namespace imgpull {
namespace {

using nlohmann::json;

// A failing helper's own words, for the message: one line, this long at most.
constexpr size_t kMaxHelperMessage = 200;
// What a helper prints when it has nothing for the server (docker-credential-helpers).
constexpr std::string_view kHelperNotFoundMessage = "credentials not found in native keychain";
// The helper Username that says "Secret is an identity token" (docker's tokenUsername).
constexpr std::string_view kIdentityTokenUsername = "<token>";

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

// A failed helper's own words, never its input: ": " and the first line of
// what it said on stdout (docker-credential-helpers' Serve reports there),
// else on stderr; "" when it said nothing.
std::string in_its_words(const ProcessResult& run) {
  std::string_view said = trim_space(run.out);
  if (said.empty()) said = trim_space(run.err);
  return said.empty() ? "" : ": " + first_line(said);
}

// A helper that was killed, or exited with a failure.
Error helper_failure(const std::string& program, std::string_view verb, const ProcessResult& run) {
  if (!WIFEXITED(run.status)) {
    return Error(ErrorCode::kUnavailable, fmt::format("{} {} was killed by signal {}", program, verb, WTERMSIG(run.status)));
  }
  return Error(ErrorCode::kUnavailable, fmt::format("{} {} failed (exit status {}){}", program, verb,
                                                    WEXITSTATUS(run.status), in_its_words(run)));
}

// The config names a helper by suffix; with a '/' posix_spawnp would run a
// path instead of searching PATH, which is not what a helper name means.
Result<std::string> helper_program(const std::string& helper_name) {
  if (helper_name.empty() || helper_name.find('/') != std::string::npos) {
    return Error(ErrorCode::kInvalidArgument, fmt::format("invalid credential helper name \"{}\"", helper_name));
  }
  return "docker-credential-" + helper_name;
}

Result<ProcessResult> run_helper(const std::string& program, const std::string& verb, std::string_view input,
                                 std::chrono::milliseconds timeout) {
  return run_process(program, {verb}, input, timeout, kMaxCredentialHelperOutput);
}

}  // namespace

Result<std::optional<Credentials>> run_credential_helper(const std::string& helper_name,
                                                         const std::string& server_url,
                                                         std::chrono::milliseconds timeout) {
  IMGPULL_ASSIGN_OR_RETURN(const std::string program, helper_program(helper_name));
  if (server_url.size() > PIPE_BUF) {
    return Error(ErrorCode::kInvalidArgument,
                 fmt::format("server URL for {} is over {} bytes", program, PIPE_BUF));
  }
  IMGPULL_ASSIGN_OR_RETURN(ProcessResult run, run_helper(program, "get", server_url, timeout));
  if (!WIFEXITED(run.status)) return helper_failure(program, "get", run);
  if (WEXITSTATUS(run.status) != 0) {
    if (trim_space(run.out) == kHelperNotFoundMessage) return std::optional<Credentials>();
    // A helper that ran and refused: the credentials it holds (or the
    // keychain behind it) are what is wrong, not the helper.
    return Error(ErrorCode::kUnauthorized, fmt::format("{} get failed for {} (exit status {}){}", program, server_url,
                                                       WEXITSTATUS(run.status), in_its_words(run)));
  }
  // From here on the output holds secrets: messages describe it, never quote it.
  json doc = json::parse(run.out, nullptr, /*allow_exceptions=*/false);
  std::optional<std::string> username;
  std::optional<std::string> secret;
  if (doc.is_object()) {
    username = json_string_field(doc, "Username");
    secret = json_string_field(doc, "Secret");
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

Status store_in_credential_helper(const std::string& helper_name, const std::string& server_url,
                                  const Credentials& credentials) {
  IMGPULL_ASSIGN_OR_RETURN(std::string program, helper_program(helper_name));
  nlohmann::json input = {{"ServerURL", server_url},
                          {"Username", credentials.identity_token.empty() ? credentials.username
                                                                          : std::string(kIdentityTokenUsername)},
                          {"Secret", credentials.identity_token.empty() ? credentials.password
                                                                        : credentials.identity_token}};
  IMGPULL_ASSIGN_OR_RETURN(ProcessResult run, run_helper(program, "store", input.dump(), kCredentialHelperTimeout));
  if (!WIFEXITED(run.status) || WEXITSTATUS(run.status) != 0) return helper_failure(program, "store", run);
  return {};
}

Result<bool> erase_from_credential_helper(const std::string& helper_name, const std::string& server_url) {
  IMGPULL_ASSIGN_OR_RETURN(std::string program, helper_program(helper_name));
  IMGPULL_ASSIGN_OR_RETURN(ProcessResult run, run_helper(program, "erase", server_url, kCredentialHelperTimeout));
  if (WIFEXITED(run.status) && WEXITSTATUS(run.status) == 0) return true;
  if (trim_space(run.out) == kHelperNotFoundMessage) return false;
  return helper_failure(program, "erase", run);
}

}  // namespace imgpull
