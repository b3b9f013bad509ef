// Whole-buffer and whole-file I/O on descriptors, with errors that name the
// file: the loops every writer of the store, the export and the docker config
// would otherwise repeat (short writes, EINTR, a size limit on what is read).
//
//   IMGPULL_ASSIGN_OR_RETURN(std::string text, read_file("/etc/containers/x.json", 1 << 20));
//   IMGPULL_TRY(write_all(fd, text.data(), text.size(), "/tmp/copy.json"));
#pragma once

#include <cstddef>
#include <filesystem>
#include <string>

#include "imgpull/error.h"

namespace imgpull {

// Writes all `size` bytes to `fd` (looping over short writes); a failure is
// "cannot write <path>: <why>", `path` naming what `fd` is for the message.
Status write_all(int fd, const void* data, size_t size, const std::filesystem::path& path);

// The whole content of a file of at most `max_bytes`. A missing file is
// kNotFound ("<path> does not exist"), a longer one kTooLarge ("<path> is
// larger than the limit of N bytes"); any other failure is kIo naming the path.
Result<std::string> read_file(const std::filesystem::path& path, size_t max_bytes);

}  // namespace imgpull
