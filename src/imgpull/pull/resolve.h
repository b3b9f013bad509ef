// Which image a reference means: its manifest, chosen for the wanted
// platform through any indexes above it (an index may list other indexes),
// with as few manifest requests as the store allows. Docker Hub counts every
// manifest GET against its pull rate limit, and HEAD requests not at all, so:
//
//   by tag     with nothing in the store under the name (a first pull), GET
//              the tag: a HEAD could only say what that GET says, a round
//              trip later, and the GET is spent anyway. Otherwise
//              HEAD the tag (one free request) for the digest it names; when
//              the store holds that document and everything below it the
//              image needs, nothing more is asked. Otherwise each document
//              not in the store is fetched by digest (verified against it),
//              so a tag moving between the HEAD and a GET cannot mix two
//              images. A registry that answers the HEAD without a digest,
//              or refuses it, is asked with GET by tag, as containerd does.
//   by digest  the store alone when it holds the whole image (no network at
//              all); otherwise as above from that digest.
//
//   std::optional<ResolvedImage> image;
//   if (ref.digest) image = resolve_local(store, *ref.digest, platform);
//   if (!image) IMGPULL_ASSIGN_OR_RETURN(image, resolve_remote(registry, store, ref, platform));
//   IMGPULL_TRY(check_image_manifest(image->manifest));
#pragma once

#include <optional>
#include <vector>

#include "imgpull/digest.h"
#include "imgpull/error.h"
#include "imgpull/manifest.h"
#include "imgpull/reference.h"
#include "imgpull/store.h"
#include "remote/registry.h"

namespace imgpull {

// How many indexes deep an image is looked for: the top-level document may
// be an index whose entry is an index (allowed by the image spec; an index
// of per-platform indexes is the deepest layout in use), and a little more
// room than that. Each level costs a request and a document of up to
// kMaxManifestBytes, so a hostile registry must not choose how many.
inline constexpr size_t kMaxIndexDepth = 4;

struct ResolvedImage {
  ImageManifest manifest;
  FetchedManifest fetched;               // the manifest as the registry (or store) has it
  std::vector<FetchedManifest> indexes;  // the indexes it was chosen through, the top-level one first
  // What the registry serves for the reference: the top-level index, else the manifest.
  Digest repo_digest() const { return indexes.empty() ? fetched.digest : indexes.front().digest; }
};

// The image from the registry (see the top of this file); documents the
// store holds are read from it instead.
Result<ResolvedImage> resolve_remote(Registry& registry, const Store& store, const Reference& ref,
                                     const Platform& platform);

// The image whose top-level document is `top`, from the store alone, when
// the store holds every index level, the manifest, its config and every
// layer (so a pull needs nothing else, with or without --rootfs); nullopt
// otherwise (the registry must be asked).
std::optional<ResolvedImage> resolve_local(const Store& store, const Digest& top, const Platform& platform);

// A container image: a config of an image type, layers of layer types.
Status check_image_manifest(const ImageManifest& manifest);

}  // namespace imgpull
