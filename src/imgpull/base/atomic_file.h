// Replacing a file whole or not at all: the new content goes to a temporary
// sibling ("<path>.tmp-<pid>-<n>"), which commit() renames over the path, so
// a reader sees the old file or the new one, never half of either, whatever
// happens to the writer. Used for the store's index.json and oci-layout, the
// docker config.json and `imgpull save -o`.
//
//   IMGPULL_ASSIGN_OR_RETURN(AtomicFile out, AtomicFile::create("/tmp/index.json"));
//   IMGPULL_TRY(out.write(R"({"manifests":[]})"));
//   IMGPULL_TRY(out.commit());
//
//   IMGPULL_TRY(replace_file("/tmp/oci-layout", R"({"imageLayoutVersion":"1.0.0"})"));
#pragma once

#include <sys/types.h>

#include <filesystem>
#include <string_view>

#include "imgpull/error.h"
#include "base/unique_fd.h"

namespace imgpull {

struct AtomicFileOptions {
  mode_t mode = 0644;  // as open(2) takes it: the umask applies
  // fsync before the rename: after a power cut the path then holds the new
  // content, never an empty file (a rename can reach the disk before the data).
  bool sync = false;
};

class AtomicFile {
 public:
  // Creates the temporary file beside `path` (in the same directory, so the
  // rename stays within one filesystem). Fails with "cannot create <tmp>: ...".
  static Result<AtomicFile> create(const std::filesystem::path& path, AtomicFileOptions options = {});
  AtomicFile(AtomicFile&& other) noexcept;
  AtomicFile& operator=(AtomicFile&&) = delete;
  // Without a commit (an error on the way), removes the temporary file.
  ~AtomicFile();

  // The temporary file, for a writer that streams into a descriptor.
  int fd() const { return fd_.get(); }
  const std::filesystem::path& temporary_path() const { return tmp_; }
  Status write(std::string_view bytes);
  // fsync (when asked), close, rename over the path. Fails with "cannot flush
  // <tmp>: ..." or "cannot rename into <path>: ...", the temporary file removed.
  Status commit();

 private:
  AtomicFile(std::filesystem::path path, std::filesystem::path tmp, UniqueFd fd, bool sync)
      : path_(std::move(path)), tmp_(std::move(tmp)), fd_(std::move(fd)), sync_(sync) {}

  std::filesystem::path path_;
  std::filesystem::path tmp_;  // empty once committed or moved from
  UniqueFd fd_;
  bool sync_;
};

// Replaces `path` with `content` through an AtomicFile.
Status replace_file(const std::filesystem::path& path, std::string_view content, AtomicFileOptions options = {});

}  // namespace imgpull
