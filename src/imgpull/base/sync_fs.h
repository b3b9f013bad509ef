// Flushes whole filesystems to stable storage: what `pull --sync` does at the
// end, instead of an fsync per file (a rootfs has tens of thousands of files;
// one syncfs per filesystem costs the same write-back and no per-file waits).
//
//   IMGPULL_TRY(sync_filesystems({store.root(), rootfs_dir}));
#pragma once

#include <filesystem>
#include <vector>

#include "imgpull/error.h"

namespace imgpull {

// syncfs(2) once for each distinct filesystem holding one of `paths`, in order.
// Fails naming the path whose filesystem could not be synced (an I/O error of
// the write-back comes out here).
Status sync_filesystems(const std::vector<std::filesystem::path>& paths);

}  // namespace imgpull
