#include "base/process.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstdint>

#include "base/sys_error.h"
#include "base/unique_fd.h"

extern char** environ;

namespace imgpull {
namespace {

struct Pipe {
  UniqueFd read;
  UniqueFd write;
};

// Close-on-exec, so that no other program started meanwhile (by another
// thread) inherits an end and holds the pipe open. Never on 0-2 (possible
// when our own stdio is closed), so that the child's dup2s onto 0-2 cannot
// overwrite an end before it is itself dup2'ed, whatever order the pipes
// are made in.
Result<Pipe> make_pipe() {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) {
    return sys_error("creating a pipe", errno, ErrorCode::kUnavailable);
  }
  Pipe pipe{UniqueFd(fds[0]), UniqueFd(fds[1])};
  for (UniqueFd* end : {&pipe.read, &pipe.write}) {
    if (end->get() > STDERR_FILENO) continue;
    int moved = ::fcntl(end->get(), F_DUPFD_CLOEXEC, STDERR_FILENO + 1);
    if (moved < 0) {
      return sys_error("creating a pipe", errno, ErrorCode::kUnavailable);
    }
    *end = UniqueFd(moved);
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
        return sys_error("waiting for a child", errno, ErrorCode::kUnavailable);
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

}  // namespace

Result<ProcessResult> run_process(const std::string& program, const std::vector<std::string>& args,
                                  std::string_view input, std::chrono::milliseconds timeout,
                                  size_t max_output_bytes) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  auto unavailable = [&](std::string_view what) {
    return Error(ErrorCode::kUnavailable, fmt::format("{}: {}", program, what));
  };
  auto failed = [&](std::string_view doing, int err) {
    return sys_error(doing, err, ErrorCode::kUnavailable).wrap(program);
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
    if (n < 0) return failed("writing its input", errno);
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
  if (rc != 0) return failed("cannot run it", rc);
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
    if (n < 0) return failed("waiting for its output", errno);
    for (int i = 0; i < 2; ++i) {
      if (fds[i].fd < 0 || fds[i].revents == 0) continue;
      char buf[4096];
      ssize_t r = ::read(fds[i].fd, buf, sizeof buf);
      if (r < 0 && errno == EINTR) continue;
      if (r < 0) return failed("reading its output", errno);
      if (r == 0) {
        fds[i].fd = -1;  // end of file; poll skips negative descriptors
        continue;
      }
      sinks[i]->append(buf, static_cast<size_t>(r));
      if (result.out.size() + result.err.size() > max_output_bytes) {
        return unavailable(fmt::format("wrote more than {} bytes (killed)", max_output_bytes));
      }
    }
  }
  IMGPULL_ASSIGN_OR_RETURN(std::optional<int> status, child.wait_until(deadline));
  if (!status) return timed_out();
  result.status = *status;
  return result;
}

}  // namespace imgpull
