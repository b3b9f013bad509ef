#!/usr/bin/env bash
# Builds imgpull and runs every test: unit tests and the integration tests
# against real registries (Debian's docker-registry), then the unit tests again
# under AddressSanitizer + UndefinedBehaviorSanitizer and under ThreadSanitizer,
# then each libFuzzer target for a short time (scripts/fuzz.sh, FUZZ_SECONDS
# each, default 20).
#
#   sudo bash scripts/test.sh          # on a fresh Debian 12 machine, as root
#
# Environment: IMGPULL_BUILD_DIR (default build), IMGPULL_SKIP_SANITIZE=1 to
# skip the sanitizer passes, IMGPULL_SKIP_FUZZ=1 to skip fuzzing, IMGPULL_CTEST_ARGS
# for extra ctest arguments.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/install-deps.sh

jobs=$(nproc)
build=${IMGPULL_BUILD_DIR:-build}
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$build" -j "$jobs"
(cd "$build" && ctest --output-on-failure -j "$jobs" ${IMGPULL_CTEST_ARGS:-})

if [ "${IMGPULL_SKIP_SANITIZE:-0}" != 1 ]; then
  echo "== unit tests under ASan+UBSan"
  cmake -S . -B "$build-asan" -DCMAKE_BUILD_TYPE=Debug -DIMGPULL_SANITIZE=ON \
        -DIMGPULL_INTEGRATION_TESTS=OFF >/dev/null
  cmake --build "$build-asan" -j "$jobs" --target imgpull_unit_tests
  (cd "$build-asan" && ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
     ctest --output-on-failure -j "$jobs" -L unit)

  echo "== unit tests under ThreadSanitizer"
  cmake -S . -B "$build-tsan" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DIMGPULL_TSAN=ON \
        -DIMGPULL_INTEGRATION_TESTS=OFF >/dev/null
  cmake --build "$build-tsan" -j "$jobs" --target imgpull_unit_tests
  (cd "$build-tsan" && TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1" \
     ctest --output-on-failure -j "$jobs" -L unit)
fi

if [ "${IMGPULL_SKIP_FUZZ:-0}" != 1 ]; then
  echo "== fuzz targets, ${FUZZ_SECONDS:-20}s each"
  IMGPULL_FUZZ_BUILD_DIR="$build-fuzz" bash scripts/fuzz.sh
fi
