#include "interrupts.h"

#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <iostream>
#include <thread>

#include <fmt/format.h>

namespace imgpull::cli {
namespace {

// The signal (SIGINT or SIGTERM) that asked us to stop, 0 while none did.
std::atomic<int> g_interrupt{0};

}  // namespace

bool interrupted() { return g_interrupt.load() != 0; }

// SIGINT and SIGTERM are blocked in every thread and taken by one thread with
// sigwait, so no download thread is ever interrupted mid-syscall: the first
// signal only sets g_interrupt, which the transfers poll and stop on, leaving
// their partial files for the next pull. A second signal ends the process at
// once (the partial files are still safe: every write is whole or resumable).
void handle_interrupts() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);  // inherited by every thread made after this
  std::thread([set] {
    while (true) {
      int sig = 0;
      if (sigwait(&set, &sig) != 0) continue;
      int expected = 0;
      if (!g_interrupt.compare_exchange_strong(expected, sig)) _exit(128 + sig);
    }
  }).detach();
}

int interrupted_exit(const std::filesystem::path& root) {
  int sig = g_interrupt.load();
  std::cerr << fmt::format("imgpull: interrupted by {}; partial downloads are kept in {} and the next pull "
                           "continues them\n",
                           sig == SIGTERM ? "SIGTERM" : "SIGINT", (root / "ingest").string());
  return 128 + sig;
}

}  // namespace imgpull::cli
