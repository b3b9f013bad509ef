// One line of `imgpull images`: what docker shows for an image, as text.
#pragma once

#include <string>

#include "imgpull/error.h"
#include "imgpull/store.h"

namespace imgpull::cli {

struct ImageRow {
  std::string repository, tag, digest, id, created, size;
  std::string created_raw;  // the config's RFC 3339 time, for sorting and CreatedAt
};

// The row for an image named in the store; reads its manifest and config.
Result<ImageRow> describe_image(const Store& store, const ImageRecord& record);

// docker's {{json .}} for one `images` row.
std::string image_row_json(const ImageRow& row);

}  // namespace imgpull::cli
