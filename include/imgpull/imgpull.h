// Everything libimgpull offers, in one include. See client.h to pull and
// unpack, store.h / images.h / export.h for the local store.
#pragma once

#include "imgpull/client.h"       // IWYU pragma: export
#include "imgpull/credentials.h"  // IWYU pragma: export
#include "imgpull/digest.h"       // IWYU pragma: export
#include "imgpull/error.h"        // IWYU pragma: export
#include "imgpull/export.h"       // IWYU pragma: export
#include "imgpull/images.h"       // IWYU pragma: export
#include "imgpull/manifest.h"     // IWYU pragma: export
#include "imgpull/reference.h"    // IWYU pragma: export
#include "imgpull/store.h"        // IWYU pragma: export
