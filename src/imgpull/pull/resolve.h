// Which image a reference means: its manifest, chosen from an index for the
// wanted platform, read from the registry — or, for a pull by digest whose
// blobs are all in the store already, from the store with no network at all.
//
//   std::optional<ResolvedImage> image = resolve_local(store, ref, platform);
//   if (!image) IMGPULL_ASSIGN_OR_RETURN(image, resolve_remote(registry, ref, platform));
//   IMGPULL_TRY(check_image_manifest(image->manifest));
#pragma once

#include <optional>

#include "imgpull/digest.h"
#include "imgpull/error.h"
#include "imgpull/manifest.h"
#include "imgpull/reference.h"
#include "imgpull/store.h"
#include "remote/registry.h"

namespace imgpull {

struct ResolvedImage {
  ImageManifest manifest;
  FetchedManifest fetched;               // the manifest as the registry (or store) has it
  std::optional<FetchedManifest> index;  // the index it was chosen from, if any
  // What the registry serves for the reference: the index, else the manifest.
  Digest repo_digest() const { return index ? index->digest : fetched.digest; }
};

Result<ResolvedImage> resolve_remote(Registry& registry, const Reference& ref, const Platform& platform);

// The image from the store alone, when `ref` has a digest and every blob the
// image needs is there; nullopt otherwise (the registry must be asked).
std::optional<ResolvedImage> resolve_local(const Store& store, const Reference& ref, const Platform& platform);

// A container image: a config of an image type, layers of layer types.
Status check_image_manifest(const ImageManifest& manifest);

}  // namespace imgpull
