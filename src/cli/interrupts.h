// Ctrl-C (SIGINT) and SIGTERM during a pull: the first one stops the pull
// cleanly, keeping its partial downloads for the next pull; a second one ends
// the process at once.
//
//   handle_interrupts();               // before any thread is started
//   options.cancelled = interrupted;   // polled by the transfers
//   ...
//   if (interrupted()) return interrupted_exit(store_root);
#pragma once

#include <filesystem>

namespace imgpull::cli {

// Blocks both signals in this thread (and so in every thread made after) and
// takes them in a thread of its own.
void handle_interrupts();

// Whether a signal asked us to stop.
bool interrupted();

// Says on stderr where the partial downloads are kept; returns 128 + the
// signal's number, the status a shell reports for it.
int interrupted_exit(const std::filesystem::path& root);

}  // namespace imgpull::cli
