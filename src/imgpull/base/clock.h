// The time as the store writes it: RFC 3339 in UTC, to the second (the
// io.imgpull.pulled-at annotation of an image in index.json).
//
//   ImageRecord record{"docker.io/library/x:1", manifest, std::nullopt, now_rfc3339()};
#pragma once

#include <string>

namespace imgpull {

// "2024-01-02T03:04:05Z" for now.
std::string now_rfc3339();

}  // namespace imgpull
