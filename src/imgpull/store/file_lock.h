// flock(2) locks on files of the store: the index lock, the in-use lock (see
// Store::take_sole_use) and the lock every ingest file is written under. An
// flock belongs to the open file, so it is released when the descriptor
// closes, also when a process dies holding it: a killed pull never leaves a
// lock behind.
//
//   IMGPULL_ASSIGN_OR_RETURN(FileLock lock, FileLock::acquire("/tmp/store/.lock"));
//   IMGPULL_TRY(lock.change_mode(FileLock::Mode::kShared, [] { std::cerr << "waiting\n"; }));
#pragma once

#include <filesystem>
#include <optional>
#include <functional>

#include "base/unique_fd.h"
#include "imgpull/error.h"

namespace imgpull {

// Holds an flock on a file for its lifetime.
class FileLock {
 public:
  enum class Mode { kShared, kExclusive };
  // Opens (creating) `path` and locks it, waiting as long as a conflicting
  // lock is held.
  static Result<FileLock> acquire(const std::filesystem::path& path, Mode mode = Mode::kExclusive);
  FileLock(FileLock&& other) noexcept = default;
  FileLock& operator=(FileLock&&) = delete;

  // Changes a held lock's mode, calling `on_wait` once if it has to wait.
  // Not atomic: flock drops the old lock before it waits for the new one.
  Status change_mode(Mode mode, const std::function<void()>& on_wait);

 private:
  FileLock(UniqueFd fd, std::filesystem::path path) : fd_(std::move(fd)), path_(std::move(path)) {}
  UniqueFd fd_;
  std::filesystem::path path_;
};

// Opens (creating, read-write) `path` and takes an flock on it, waiting as
// long as another process holds a conflicting one: the descriptor holds the
// lock (an ingest file is written through it).
Result<UniqueFd> open_locked(const std::filesystem::path& path, FileLock::Mode mode = FileLock::Mode::kExclusive);
// The same without waiting: nullopt when another process holds a conflicting lock.
Result<std::optional<UniqueFd>> try_open_locked(const std::filesystem::path& path,
                                                FileLock::Mode mode = FileLock::Mode::kExclusive);

}  // namespace imgpull
