// The commands on images in the local store: images, inspect, history, tag, rmi.
#include <algorithm>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "commands.h"
#include "image_row.h"
#include "imgpull/images.h"
#include "progress.h"
#include "table.h"
#include "time_format.h"

namespace imgpull::cli {
namespace {

// ---- images ----

struct ImagesFlags {
  std::string pattern;
  bool digests = false;
  bool quiet = false;
  std::string format;
};

int run_images(const GlobalOptions& g, const ImagesFlags& flags) {
  bool json = flags.format == "json" || flags.format == "{{json .}}";
  if (!flags.format.empty() && flags.format != "table" && !json) {
    return fail(Error(ErrorCode::kInvalidArgument, "--format must be table or json, not " + flags.format));
  }
  return with_store(g, [&](Store& store) {
    auto records = store.list_images();
    if (!records) return fail(records.error());
    std::vector<ImageRow> rows;
    for (const auto& record : *records) {
      if (!flags.pattern.empty() && !matches_image_pattern(flags.pattern, record.name)) continue;
      auto row = describe_image(store, record);
      if (!row) return fail(std::move(row).error().wrap(record.name));
      rows.push_back(std::move(row).value());
    }
    std::stable_sort(rows.begin(), rows.end(),
                     [](const ImageRow& a, const ImageRow& b) { return a.created_raw > b.created_raw; });
    if (flags.quiet) {
      for (const auto& r : rows) std::cout << r.id << "\n";
      return 0;
    }
    if (json) {
      for (const auto& r : rows) std::cout << image_row_json(r) << "\n";
      return 0;
    }
    std::vector<std::vector<std::string>> table;
    if (flags.digests) {
      table.push_back({"REPOSITORY", "TAG", "DIGEST", "IMAGE ID", "CREATED", "SIZE"});
    } else {
      table.push_back({"REPOSITORY", "TAG", "IMAGE ID", "CREATED", "SIZE"});
    }
    for (const auto& r : rows) {
      if (flags.digests) {
        table.push_back({r.repository, r.tag, r.digest, r.id, r.created, r.size});
      } else {
        table.push_back({r.repository, r.tag, r.id, r.created, r.size});
      }
    }
    std::cout << format_table(table);
    return 0;
  });
}

// ---- inspect ----

int run_inspect(const GlobalOptions& g, const std::vector<std::string>& refs) {
  return with_store(g, [&](Store& store) {
    nlohmann::ordered_json out = nlohmann::ordered_json::array();
    std::vector<Error> errors;
    for (const auto& ref : refs) {
      auto found = find_local_image(store, ref);
      auto doc = found ? inspect_image(store, found->image) : Result<nlohmann::ordered_json>(found.error());
      if (doc) out.push_back(std::move(doc).value());
      else errors.push_back(std::move(doc).error());
    }
    // As docker: what was found, then an error line for each name that was not.
    std::cout << out.dump(4) << "\n";
    for (const auto& e : errors) fail(e);
    return errors.empty() ? 0 : 1;
  });
}

// ---- history ----

struct HistoryFlags {
  std::string reference;
  bool no_trunc = false;
  bool quiet = false;
};

// docker's width for CREATED BY unless --no-trunc.
constexpr size_t kCreatedByWidth = 45;

int run_history(const GlobalOptions& g, const HistoryFlags& flags) {
  return with_store(g, [&](Store& store) {
    auto found = find_local_image(store, flags.reference);
    if (!found) return fail(found.error());
    std::vector<std::vector<std::string>> table{{"IMAGE", "CREATED", "CREATED BY", "SIZE", "COMMENT"}};
    for (const auto& row : image_history(found->image)) {
      std::string id = !row.id ? "<missing>" : flags.no_trunc ? row.id->str() : row.id->short_hex();
      if (flags.quiet) {
        std::cout << id << "\n";
        continue;
      }
      std::string created_by = row.created_by;
      std::replace(created_by.begin(), created_by.end(), '\t', ' ');
      std::replace(created_by.begin(), created_by.end(), '\n', ' ');
      if (!flags.no_trunc) created_by = ellipsis(created_by, kCreatedByWidth);
      table.push_back({id, human_age(row.created), created_by, human_size(static_cast<double>(row.size)),
                       row.comment});
    }
    if (!flags.quiet) std::cout << format_table(table);
    return 0;
  });
}

// ---- tag ----

struct TagFlags {
  std::string source;
  std::string target;
};

int run_tag(const GlobalOptions& g, const TagFlags& flags) {
  return with_store(g, [&](Store& store) {
    auto found = find_local_image(store, flags.source);
    if (!found) return fail(found.error());
    auto tagged = tag_image(store, found->image, flags.target);
    if (!tagged) return fail(tagged.error());
    return 0;
  });
}

// ---- rmi ----

int run_rmi(const GlobalOptions& g, const std::vector<std::string>& refs) {
  return with_store(g, [&](Store& store) {
    int status = 0;
    for (const auto& ref : refs) {  // as docker: one failure does not stop the others
      auto removed = remove_local_image(store, ref);
      if (!removed) {
        status = fail(removed.error());
        continue;
      }
      for (const auto& name : removed->untagged) std::cout << "Untagged: " << name << "\n";
      if (removed->deleted) std::cout << "Deleted: " << removed->deleted->str() << "\n";
    }
    return status;
  });
}

}  // namespace

void add_images_command(CLI::App& app, const GlobalOptions& g, Runner& run) {
  auto flags = std::make_shared<ImagesFlags>();
  auto* images = app.add_subcommand("images", "List images in the local store");
  images->add_option("repository", flags->pattern, "Only REPOSITORY[:TAG] (a glob: 'localhost:5000/*')");
  images->add_flag("--digests", flags->digests, "Show digests");
  images->add_flag("-q,--quiet", flags->quiet, "Only show image IDs");
  images->add_option("--format", flags->format, "table (default), or json: one object per line, as docker's '{{json .}}'");
  images->footer("Examples:\n  imgpull images debian\n  imgpull images --format json 'localhost:5000/*'");
  run_when_parsed(*images, run, [&g, flags] { return run_images(g, *flags); });
}

void add_inspect_command(CLI::App& app, const GlobalOptions& g, Runner& run) {
  auto refs = std::make_shared<std::vector<std::string>>();
  auto* inspect = app.add_subcommand("inspect", "Show details of local images as JSON, like docker image inspect");
  inspect->add_option("reference", *refs, "NAME[:TAG|@DIGEST] or image ID")->required();
  inspect->footer("Example:\n  imgpull inspect debian:12 | jq '.[0].RootFS.Layers'");
  run_when_parsed(*inspect, run, [&g, refs] { return run_inspect(g, *refs); });
}

void add_history_command(CLI::App& app, const GlobalOptions& g, Runner& run) {
  auto flags = std::make_shared<HistoryFlags>();
  auto* history = app.add_subcommand("history", "Show the history of a local image");
  history->add_option("reference", flags->reference, "NAME[:TAG|@DIGEST] or image ID")->required();
  history->add_flag("--no-trunc", flags->no_trunc, "Don't truncate output");
  history->add_flag("-q,--quiet", flags->quiet, "Only show image IDs");
  history->footer("Example:\n  imgpull history --no-trunc debian:12");
  run_when_parsed(*history, run, [&g, flags] { return run_history(g, *flags); });
}

void add_tag_command(CLI::App& app, const GlobalOptions& g, Runner& run) {
  auto flags = std::make_shared<TagFlags>();
  auto* tag = app.add_subcommand("tag", "Give a local image another name");
  tag->add_option("source", flags->source, "SOURCE_IMAGE[:TAG] or image ID")->required();
  tag->add_option("target", flags->target, "TARGET_IMAGE[:TAG]")->required();
  tag->footer("Example:\n  imgpull tag debian:12 localhost:5000/base/debian:stable");
  run_when_parsed(*tag, run, [&g, flags] { return run_tag(g, *flags); });
}

void add_rmi_command(CLI::App& app, const GlobalOptions& g, Runner& run) {
  auto refs = std::make_shared<std::vector<std::string>>();
  auto* rmi = app.add_subcommand("rmi", "Remove names of local images (blobs stay until prune)");
  rmi->add_option("reference", *refs, "NAME[:TAG|@DIGEST] or image ID")->required();
  rmi->footer("Example:\n  imgpull rmi debian:12 && imgpull prune");
  run_when_parsed(*rmi, run, [&g, refs] { return run_rmi(g, *refs); });
}

}  // namespace imgpull::cli
