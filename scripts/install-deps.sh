#!/usr/bin/env bash
# Installs everything imgpull needs to build and test on Debian 12, as root.
# Idempotent: when every package is already installed it only checks (dpkg-query)
# and exits, without touching the network.
#
#   sudo bash scripts/install-deps.sh
set -euo pipefail

packages=(
  # build
  cmake g++ make pkg-config git ca-certificates
  # libraries
  libcurl4-openssl-dev libssl-dev nlohmann-json3-dev libisal-dev libzstd-dev
  libarchive-dev libcli11-dev libfmt-dev libtomlplusplus-dev
  # unit tests and benchmarks
  libgtest-dev libgmock-dev libbenchmark-dev
  # integration tests against a real registry (tests/registry/)
  docker-registry skopeo umoci python3 python3-jwt python3-cryptography
  python3-pytest apache2-utils openssl curl
  # which system calls a pull makes (test_sync: one syncfs per filesystem with --sync)
  strace
  # the real Debian rootfs fixture (tests/registry/fixtures.py: debian)
  mmdebstrap
  # layers from more writers for the tar corpus (tests/registry/tar_corpus.py): bsdtar, and
  # buildah (containers/storage's Go tar writer; run rootful with vfs storage)
  libarchive-tools buildah
  # `save` archives loaded by a real peer (test_export); the man page check (test_help)
  podman groff-base
  # libFuzzer targets (scripts/fuzz.sh): clang and its fuzzer/sanitizer runtimes
  clang-14 libclang-rt-14-dev
)

missing=()
for p in "${packages[@]}"; do
  status=$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)
  [ "$status" = installed ] || missing+=("$p")
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#packages[@]} packages already installed"
  exit 0
fi

if [ "$(id -u)" != 0 ]; then
  echo "install-deps: missing packages: ${missing[*]}" >&2
  echo "install-deps: run as root to install them" >&2
  exit 1
fi

echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update
apt-get install -y --no-install-recommends "${packages[@]}"
