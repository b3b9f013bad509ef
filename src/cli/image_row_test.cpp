#include "image_row.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

namespace imgpull::cli {
namespace {

TEST(ImageRowJson, DockersJsonFormatFieldsInOrder) {
  ImageRow row;
  row.repository = "localhost:5000/app";
  row.tag = "1.0";
  row.digest = "sha256:" + std::string(64, 'a');
  row.id = "0123456789ab";
  row.created = "2 weeks ago";
  row.created_raw = "2024-02-16T08:09:10.5Z";
  row.size = "117MB";
  EXPECT_EQ(image_row_json(row),
            R"({"Containers":"N/A","CreatedAt":"2024-02-16 08:09:10 +0000 UTC","CreatedSince":"2 weeks ago",)"
            R"("Digest":"sha256:)" + std::string(64, 'a') +
                R"(","ID":"0123456789ab","Repository":"localhost:5000/app","SharedSize":"N/A","Size":"117MB",)"
                R"("Tag":"1.0","UniqueSize":"N/A","VirtualSize":"117MB"})");
}

TEST(ImageRowJson, NoCreatedTimeGivesEmptyCreatedAt) {
  ImageRow row;
  row.repository = "debian";
  row.tag = "<none>";
  row.digest = "<none>";
  row.created = "N/A";
  nlohmann::json parsed = nlohmann::json::parse(image_row_json(row));
  EXPECT_EQ(parsed["CreatedAt"], "");
  EXPECT_EQ(parsed["CreatedSince"], "N/A");
  EXPECT_EQ(parsed["Tag"], "<none>");
  EXPECT_EQ(parsed["Digest"], "<none>");
}

}  // namespace
}  // namespace imgpull::cli
