#!/usr/bin/env bash
# The demo: installs what it needs, builds imgpull, starts Debian's
# docker-registry on 127.0.0.1, pushes a sample image built with umoci from
# real files, pulls it with imgpull (twice: the second finds it up to date),
# lists it, and shows that skopeo reads imgpull's store as an OCI layout.
#
#   sudo bash scripts/demo.sh
set -euo pipefail
cd "$(dirname "$0")/.."
top=$(pwd)

bash scripts/install-deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j "$(nproc)" --target imgpull
imgpull="$top/build/imgpull"

work=$(mktemp -d /tmp/imgpull-demo.XXXXXX)
registry_pid=
cleanup() {
  if [ -n "$registry_pid" ]; then kill "$registry_pid" 2>/dev/null || true; wait "$registry_pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

port=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cat > "$work/registry.yml" <<EOF
version: 0.1
log: {level: warn, accesslog: {disabled: true}}
storage: {filesystem: {rootdirectory: $work/registry-data}}
http: {addr: 127.0.0.1:$port}
EOF
docker-registry serve "$work/registry.yml" >"$work/registry.log" 2>&1 &
registry_pid=$!
for _ in $(seq 50); do
  curl -fs "http://127.0.0.1:$port/v2/" >/dev/null && break
  sleep 0.1
done

echo "== building a sample image with umoci (two layers of real files)"
(
  cd "$work"
  umoci init --layout layout
  umoci new --image layout:demo
  umoci unpack --rootless --image layout:demo bundle >/dev/null
  mkdir -p bundle/rootfs/usr/share/doc bundle/rootfs/etc
  cp -r /usr/share/doc/curl bundle/rootfs/usr/share/doc/
  cp /etc/os-release bundle/rootfs/etc/
  umoci repack --refresh-bundle --image layout:demo bundle
  echo "hello from imgpull's demo" > bundle/rootfs/hello.txt
  umoci repack --image layout:demo bundle
  umoci config --image layout:demo --architecture amd64 --os linux \
    --config.cmd /bin/cat --config.cmd /hello.txt --author "imgpull demo"
) >/dev/null
skopeo copy -q --dest-tls-verify=false "oci:$work/layout:demo" "docker://127.0.0.1:$port/demo/hello:1.0"

ref="127.0.0.1:$port/demo/hello:1.0"
store="$work/store"
echo
echo "\$ imgpull pull $ref"
"$imgpull" --root "$store" pull "$ref"
echo
echo "\$ imgpull pull $ref   # again"
"$imgpull" --root "$store" pull "$ref"
echo
echo "\$ imgpull images"
"$imgpull" --root "$store" images
echo
echo "\$ imgpull unpack $ref ROOTFS   # from the store, no network"
"$imgpull" --root "$store" unpack "$ref" "$work/rootfs"
echo "\$ cat ROOTFS/hello.txt"
cat "$work/rootfs/hello.txt"
echo
echo "\$ skopeo inspect oci:STORE:$ref   # the store is an OCI layout"
skopeo inspect "oci:$store:$ref" | /usr/bin/python3 -c 'import json,sys; d=json.load(sys.stdin); print("Digest:", d["Digest"]); print("Layers:", *d["Layers"], sep="\n  ")'
