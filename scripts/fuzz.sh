#!/usr/bin/env bash
# Builds the libFuzzer targets (fuzz/) with clang into build-fuzz and runs each
# one for a fixed time from a copy of its seed corpus (the repository is never
# written to). Exits non-zero if any target finds a crash, a sanitizer report,
# a failed property, a timeout or an out-of-memory, and prints the path of the
# input that did it (kept under the work directory).
#
#   bash scripts/fuzz.sh                          # every target, 20 s each
#   FUZZ_SECONDS=600 FUZZ_TARGETS=tar_apply_fuzz bash scripts/fuzz.sh
#
# Environment:
#   FUZZ_SECONDS     time per target (default 20)
#   FUZZ_TARGETS     space-separated target names (default: every fuzz/*_fuzz.cpp)
#   FUZZ_WORK_DIR    where corpora, artifacts and logs go (default: a new temp
#                    dir, removed afterwards unless something was found)
#   FUZZ_KEEP=1      keep the work dir (the grown corpora) even when clean
#   FUZZ_TMPDIR      where the targets make their scratch files (default
#                    /dev/shm when writable, else the work dir)
#   FUZZ_ARGS        extra libFuzzer flags for every target
#   IMGPULL_FUZZ_BUILD_DIR  build directory (default build-fuzz)
#   CC, CXX          default clang-14, clang++-14
#
# Reproduce a finding:  build-fuzz/fuzz/<target> <crash file>
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=${FUZZ_SECONDS:-20}
build=${IMGPULL_FUZZ_BUILD_DIR:-build-fuzz}
export CC=${CC:-clang-14} CXX=${CXX:-clang++-14}

launcher=()
if command -v ccache >/dev/null; then launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache); fi
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DIMGPULL_FUZZ=ON -DBUILD_TESTING=OFF \
      -DIMGPULL_INTEGRATION_TESTS=OFF "${launcher[@]}" >/dev/null
cmake --build "$build" -j "$(nproc)" --target imgpull_fuzz_targets

if [ -n "${FUZZ_TARGETS:-}" ]; then
  read -r -a targets <<<"$FUZZ_TARGETS"
else
  targets=()
  for f in fuzz/*_fuzz.cpp; do targets+=("$(basename "$f" .cpp)"); done
fi

if [ -n "${FUZZ_WORK_DIR:-}" ]; then
  work=$FUZZ_WORK_DIR
  mkdir -p "$work"
else
  work=$(mktemp -d "${TMPDIR:-/tmp}/imgpull-fuzz.XXXXXX")
fi

# The targets' own temp dirs (the tar target makes and removes a rootfs per
# input) go on tmpfs when there is one: on ext4 with discard, that create and
# unlink churn made tar_apply_fuzz 15 times slower.
scratch_root=${FUZZ_TMPDIR:-}
if [ -z "$scratch_root" ] && [ -d /dev/shm ] && [ -w /dev/shm ]; then scratch_root=/dev/shm; fi
scratch=$(mktemp -d "${scratch_root:-$work}/imgpull-fuzz-scratch.XXXXXX")
trap 'rm -rf "$scratch"' EXIT

failed=()
for t in "${targets[@]}"; do
  bin="$build/fuzz/$t"
  [ -x "$bin" ] || { echo "fuzz: no such target $bin" >&2; exit 2; }
  corpus="$work/corpus/$t"
  artifacts="$work/artifacts/$t"
  tmp="$scratch/$t"
  mkdir -p "$corpus" "$artifacts" "$tmp"
  if [ -d "fuzz/corpus/$t" ]; then cp -r "fuzz/corpus/$t/." "$corpus/"; fi
  args=(-max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1
        -artifact_prefix="$artifacts/")
  if [ -f "fuzz/dict/$t.dict" ]; then args+=(-dict="fuzz/dict/$t.dict"); fi
  log="$work/$t.log"
  echo "== fuzz $t for ${seconds}s"
  rc=0
  timing=()
  if [ -x /usr/bin/time ]; then timing=(/usr/bin/time -f "%U %S" -o "$work/$t.cpu"); fi
  # shellcheck disable=SC2086
  TMPDIR="$tmp" "${timing[@]}" "$bin" "${args[@]}" ${FUZZ_ARGS:-} "$corpus" >"$log" 2>&1 || rc=$?
  # The summary: CPU time, executions, coverage, corpus size (libFuzzer's last
  # status line and final stats).
  cpu=$(awk 'NF == 2 && $1 ~ /^[0-9.]+$/ { printf "%.1f", $1 + $2 }' "$work/$t.cpu" 2>/dev/null || true)
  last=$(grep -E '^#[0-9]+' "$log" | tail -1 || true)
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
  echo "   ${cpu:-?} s CPU, ${runs:-?} executions; ${last:-no status line}"
  found=$(find "$artifacts" -type f | sort)
  if [ "$rc" != 0 ] || [ -n "$found" ]; then
    echo "FUZZ FAILURE in $t (exit $rc); log: $log" >&2
    grep -E 'property failed|ERROR: |SUMMARY: ' "$log" | head -5 >&2 || true
    for f in $found; do echo "   crashing input: $f" >&2; done
    failed+=("$t")
  fi
done

if [ ${#failed[@]} -ne 0 ]; then
  echo "fuzz: findings in ${failed[*]}; everything is kept in $work" >&2
  exit 1
fi
if [ -z "${FUZZ_WORK_DIR:-}" ] && [ "${FUZZ_KEEP:-0}" != 1 ]; then
  rm -rf "$work"
else
  echo "fuzz: corpora and logs kept in $work"
fi
echo "fuzz: ${#targets[@]} targets, ${seconds}s each, no findings"
