// `imgpull save`: images from the store as a docker-archive tar or an OCI
// layout (a directory or a tar).
#include <unistd.h>

#include <memory>
#include <string>
#include <vector>

#include "commands.h"
#include "imgpull/export.h"
#include "imgpull/images.h"

namespace imgpull::cli {
namespace {

struct SaveFlags {
  std::vector<std::string> references;
  std::string output;
  std::string format = "docker-archive";
};

int run_save(const GlobalOptions& g, const SaveFlags& flags) {
  bool oci = flags.format == "oci" || flags.format == "oci-archive" || flags.format == "oci-dir";
  if (!oci && flags.format != "docker-archive" && flags.format != "docker") {
    return fail(Error(ErrorCode::kInvalidArgument,
                      "--format must be docker-archive, oci, oci-archive or oci-dir, not " + flags.format));
  }
  // --format oci writes a directory unless the output is named *.tar.
  bool oci_dir = flags.format == "oci-dir" || (flags.format == "oci" && !flags.output.empty() &&
                                               !flags.output.ends_with(".tar"));
  if (flags.output.empty() && oci_dir) {
    return fail(Error(ErrorCode::kInvalidArgument, "--format oci-dir needs -o DIR"));
  }
  if (flags.output.empty() && ::isatty(STDOUT_FILENO)) {
    return fail(Error(ErrorCode::kInvalidArgument,
                      "Cowardly refusing to save to a terminal. Use the -o flag or redirect"));
  }
  return with_store(g, [&](Store& store) {
    std::vector<FoundImage> found;
    for (const auto& ref : flags.references) {
      auto image = find_local_image(store, ref);
      if (!image) return fail(image.error());
      found.push_back(std::move(image).value());
    }
    auto images = group_for_export(found);
    ArchiveFormat format = oci ? ArchiveFormat::kOci : ArchiveFormat::kDocker;
    Status saved = oci_dir               ? save_oci_layout(store, images, flags.output)
                   : flags.output.empty() ? write_archive(store, images, format, STDOUT_FILENO)
                                          : save_archive(store, images, format, flags.output);
    if (!saved.ok()) return fail(saved.error());
    return 0;
  });
}

}  // namespace

void add_save_command(CLI::App& app, const GlobalOptions& g, Runner& run) {
  auto flags = std::make_shared<SaveFlags>();
  auto* save = app.add_subcommand("save", "Save images to a tar archive (docker-archive) or an OCI layout");
  save->add_option("reference", flags->references, "NAME[:TAG|@DIGEST] or image ID")->required();
  save->add_option("-o,--output", flags->output, "Write to FILE (or DIR for an OCI layout) instead of stdout");
  save->add_option("--format", flags->format,
                   "docker-archive (default: docker load, podman load, skopeo), oci (a directory, or a "
                   "tar when -o ends with .tar), oci-archive, oci-dir");
  save->footer("Examples:\n  imgpull save -o debian.tar debian:12 && docker load -i debian.tar\n"
               "  imgpull save --format oci -o debian-oci debian:12 && umoci stat --image debian-oci:"
               "docker.io/library/debian:12");
  run_when_parsed(*save, run, [&g, flags] { return run_save(g, *flags); });
}

}  // namespace imgpull::cli
