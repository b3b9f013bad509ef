#include "image_row.h"

#include <nlohmann/json.hpp>

#include "imgpull/images.h"
#include "imgpull/reference.h"
#include "progress.h"
#include "time_format.h"

namespace imgpull::cli {

Result<ImageRow> describe_image(const Store& store, const ImageRecord& record) {
  IMGPULL_ASSIGN_OR_RETURN(StoredImage image, store.load_image(record));
  const ImageManifest* manifest = &image.manifest;
  const ImageConfig& config = image.config;
  int64_t size = content_size(*manifest);
  ImageRow row;
  auto ref = Reference::parse(record.name);
  row.repository = ref ? ref->familiar_name() : record.name;
  row.tag = ref && ref->tag && !ref->digest ? *ref->tag : "<none>";
  row.digest = record.repo_digest ? record.repo_digest->str() : (ref && ref->digest ? ref->digest->str() : "<none>");
  row.id = manifest->config.digest.short_hex();
  row.created = human_age(config.created);
  row.created_raw = config.created;
  row.size = human_size(static_cast<double>(size));
  return row;
}

std::string image_row_json(const ImageRow& r) {
  nlohmann::json row = {{"Containers", "N/A"},  {"CreatedAt", docker_time(r.created_raw)},
                        {"CreatedSince", r.created}, {"Digest", r.digest},
                        {"ID", r.id},              {"Repository", r.repository},
                        {"SharedSize", "N/A"},     {"Size", r.size},
                        {"Tag", r.tag},            {"UniqueSize", "N/A"},
                        {"VirtualSize", r.size}};
  return row.dump();
}

}  // namespace imgpull::cli
