#!/bin/bash
# The benchmark: imgpull against skopeo/umoci, podman, containerd and the floors
# of the machine (see bench/bench.py --help). Builds imgpull (Release) into
# build-bench/ first unless IMGPULL_BIN names a binary. Not part of CI.
#
#   bash bench/run.sh                                  # all images, 3 rounds
#   BENCH_RUNS=5 bash bench/run.sh --images big
#   bash bench/run.sh --images big --tools 'imgpull|floor'
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(dirname "$here")"
if [[ -z "${IMGPULL_BIN:-}" ]]; then
  launcher=()
  if command -v ccache >/dev/null; then launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache); fi
  cmake -S "$repo" -B "$repo/build-bench" -DCMAKE_BUILD_TYPE=Release -DBUILD_TESTING=OFF \
    "${launcher[@]}" >/dev/null
  cmake --build "$repo/build-bench" --target imgpull -j"$(nproc)" >/dev/null
  export IMGPULL_BIN="$repo/build-bench/imgpull"
fi
exec /usr/bin/python3 "$here/bench.py" --imgpull "$IMGPULL_BIN" "$@"
