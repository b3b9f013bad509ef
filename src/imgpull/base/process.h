// Running a program as a function call: input on its stdin, stdout and
// stderr collected, bounded in time and size, no shell. A program that
// hangs or floods is killed and reaped, never left behind. The credential
// helpers (docker-credential-*) are run through it.
//
//   IMGPULL_ASSIGN_OR_RETURN(ProcessResult run,
//                            run_process("docker-credential-pass", {"get"}, "ghcr.io",
//                                        std::chrono::seconds(10), 1024 * 1024));
//   if (WIFEXITED(run.status) && WEXITSTATUS(run.status) == 0) parse(run.out);
#pragma once

#include <chrono>
#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "imgpull/error.h"

namespace imgpull {

struct ProcessResult {
  int status = 0;  // from waitpid: WIFEXITED, WEXITSTATUS, WTERMSIG
  std::string out;
  std::string err;
};

// Runs `program` (searched on PATH) with `args`, `input` on its stdin (at
// most PIPE_BUF bytes: it is written before the program starts, so a program
// that never reads it cannot block us). Fails with kUnavailable naming the
// program when it cannot be run, takes longer than `timeout` or writes more
// than `max_output_bytes` (stdout and stderr together); then it is killed.
Result<ProcessResult> run_process(const std::string& program, const std::vector<std::string>& args,
                                  std::string_view input, std::chrono::milliseconds timeout,
                                  size_t max_output_bytes);

}  // namespace imgpull
