// Image references: what a user types to name an image, parsed and normalised
// the way `docker pull` does, so imgpull accepts exactly what Docker accepts
// and means the same image by it.
//
//  [domain[:port]/]path[:tag][@digest]
//
//  nginx                      -> docker.io/library/nginx:latest
//  user/app:1.2               -> docker.io/user/app:1.2
//  localhost:5000/x@sha256:.. -> localhost:5000/x@sha256:..
//  [::1]:5000/x:t@sha256:..   -> keeps both; the digest is what gets pulled
//
//   IMGPULL_ASSIGN_OR_RETURN(Reference ref, Reference::parse(argv[1]));
//   std::cout << ref.registry_host() << " " << ref.path << " " << ref.manifest_selector() << "\n";
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "imgpull/digest.h"
#include "imgpull/error.h"

namespace imgpull {

// Docker Hub's name in references, and the host its registry API is served
// from (docker.io itself only redirects to the website).
inline constexpr std::string_view kDockerHubDomain = "docker.io";
inline constexpr std::string_view kDockerHubRegistryHost = "registry-1.docker.io";

struct Reference {
  std::string domain;              // "docker.io", "localhost:5000", "[::1]:5000"
  std::string path;                // "library/nginx"
  std::optional<std::string> tag;  // "latest" when neither tag nor digest was given
  std::optional<Digest> digest;

  // Parses and normalises. Fails with kInvalidArgument (kUnsupported for a
  // digest algorithm other than sha256/sha512) and a one-line message:
  //   invalid reference "Foo": repository name must be lowercase
  static Result<Reference> parse(std::string_view text);

  std::string name() const;           // "docker.io/library/nginx"
  std::string str() const;            // name() + ":tag" and/or "@digest"
  std::string familiar_name() const;  // "nginx", "user/x", "localhost:5000/x"
  std::string familiar() const;       // familiar_name() + ":tag" and/or "@digest"
  // The host[:port] to contact: registry-1.docker.io for docker.io, else domain.
  std::string registry_host() const;
  // What a manifest is fetched by: the digest string if there is one, else the tag.
  std::string manifest_selector() const;

  friend bool operator==(const Reference&, const Reference&) = default;
};

}  // namespace imgpull
