#!/usr/bin/env python3
"""Writes the seed corpora for the fuzz targets into fuzz/corpus/<target>/.

    python3 fuzz/make_seeds.py            # rewrites fuzz/corpus/

The output is committed; run this again after changing it. Everything is
deterministic (fixed mtimes, sorted names, gzip without a timestamp), so a
rerun gives identical files. zstd seeds need the `zstd` program; without it
they are skipped with a note.

Input formats (see each fuzz/*_fuzz.cpp):
  reference, challenge, credentials: the text itself
  manifest:   one Content-Type selector byte, then the document
  registry_response: byte 0 mod 3 = 0 error document, 1 token answer,
              2 token refusal; byte 1 picks the HTTP status; then the body
  tar_apply:  one selector byte (bits 0-1 compression: 0 none, 1 gzip, 2 zstd;
              bit 2 walk resolver; bit 3 apply twice; bit 4 keep ownership),
              then the layer blob
"""
import gzip
import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile

HERE = os.path.dirname(os.path.abspath(__file__))
CORPUS = os.path.join(HERE, "corpus")
MTIME = 1700000000

HEX_A = "a" * 64
SHA_A = "sha256:" + HEX_A
SHA_B = "sha256:" + "b" * 64
SHA_REAL = "sha256:86e0e091d0da6bde2456dbb48306f3956bbeb2eae1b5b9a43045843f69fe4aaa"


def write(target, name, data):
    d = os.path.join(CORPUS, target)
    os.makedirs(d, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


# --- references: what people type, Docker's own test tables, edge cases.
REFERENCES = [
    "nginx", "nginx:1.25", "library/nginx:latest", "docker.io/library/nginx",
    "index.docker.io/library/debian:12", "user/app:1.2", "ghcr.io/owner/image:tag",
    "quay.io/prometheus/node-exporter:v1.7.0", "localhost:5000/demo/hello:1.0",
    "127.0.0.1:5000/x@" + SHA_REAL, "[::1]:5000/repo:tag@" + SHA_REAL,
    "[2001:db8::1]/repo", "registry.k8s.io/pause:3.9",
    "mcr.microsoft.com/dotnet/runtime:8.0", "gcr.io/distroless/static-debian12:nonroot",
    "public.ecr.aws/docker/library/alpine:3.19",
    "example.com:8000/a/b/c/d:some-long-tag",
    "foo/foo_bar.com:8080", "test.com:5000", "sha256:" + HEX_A,
    "docker.io/localhost/x", "repo@sha512:" + "c" * 128, "a__b/c---d/e.f_g",
    "xn--n3h.com/myimage:xn--n3h.com", "Foo/bar", "nginx:", "@" + SHA_A, "a/b//c",
]

# --- WWW-Authenticate headers real registries send, and RFC 7235 shapes.
CHALLENGES = [
    'Bearer realm="https://auth.docker.io/token",service="registry.docker.io",'
    'scope="repository:library/nginx:pull"',
    'Bearer realm="https://auth.docker.io/token",service="registry.docker.io"',
    'Bearer realm="https://ghcr.io/token",service="ghcr.io",scope="repository:user/image:pull"',
    'Bearer realm="https://harbor.example.com/service/token",service="harbor-registry"',
    'Basic realm="Registry Realm"',
    'Bearer realm="https://auth.example.com/token",service="registry.example.com",'
    'scope="repository:a/b:pull",error="insufficient_scope"',
    'Bearer realm="https://quay.io/v2/auth",service="quay.io"',
    'Basic realm="https://123456789012.dkr.ecr.us-east-1.amazonaws.com/",service="ecr.amazonaws.com"',
    'Bearer realm="https://example.azurecr.io/oauth2/token",service="example.azurecr.io"',
    'Bearer realm="https://gitlab.example.com/jwt/auth?client=docker, x=y"',
    'Newauth realm="apps", type=1, title="Login to \\"apps\\"", Basic realm="simple"',
    'Negotiate abc==, Basic realm="x"',
    '  Bearer   realm = "a" ,  service="b"  ',
    ', Bearer realm="a",, service="b" ,',
    'Bearer realm="a",scope=,service="b"',
    'Negotiate YIIB7gYGKwYBBQUCoIIB4jCCAd6gMDAuBgkqhkiC9xIBAgIGCSqGSIb3EgECAgYKKwYBBAGCNwICHgYKKwYBBAGCNwICCqKCAagEggGk',
    'Bearer realm="unterminated',
]


def descriptor(media_type, digest, size, **extra):
    d = {"mediaType": media_type, "digest": digest, "size": size}
    d.update(extra)
    return d


OCI_MANIFEST = {
    "schemaVersion": 2,
    "mediaType": "application/vnd.oci.image.manifest.v1+json",
    "config": descriptor("application/vnd.oci.image.config.v1+json", SHA_A, 10),
    "layers": [
        descriptor("application/vnd.oci.image.layer.v1.tar+gzip", SHA_B, 20),
        descriptor("application/vnd.oci.image.layer.v1.tar+zstd", SHA_REAL, 30,
                   annotations={"org.opencontainers.image.title": "x"}),
    ],
}
DOCKER_MANIFEST = {
    "schemaVersion": 2,
    "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
    "config": descriptor("application/vnd.docker.container.image.v1+json", SHA_A, 1469),
    "layers": [
        descriptor("application/vnd.docker.image.rootfs.diff.tar.gzip", SHA_B, 29124181),
        descriptor("application/vnd.docker.image.rootfs.foreign.diff.tar.gzip", SHA_REAL, 5,
                   urls=["https://mcr.microsoft.com/v2/x/blobs/" + SHA_REAL]),
    ],
}
OCI_INDEX = {
    "schemaVersion": 2,
    "mediaType": "application/vnd.oci.image.index.v1+json",
    "manifests": [
        descriptor("application/vnd.oci.image.manifest.v1+json", "sha256:" + "c" * 64, 100,
                   platform={"os": "linux", "architecture": "amd64"}),
        descriptor("application/vnd.oci.image.manifest.v1+json", "sha256:" + "d" * 64, 100,
                   platform={"os": "linux", "architecture": "arm64", "variant": "v8"}),
        descriptor("application/vnd.oci.image.manifest.v1+json", "sha256:" + "e" * 64, 100,
                   platform={"os": "linux", "architecture": "arm", "variant": "v6"}),
        descriptor("application/vnd.oci.image.manifest.v1+json", "sha256:" + "f" * 64, 100,
                   platform={"os": "windows", "architecture": "amd64",
                             "os.version": "10.0.17763.5329"}),
    ],
    "annotations": {"org.opencontainers.image.ref.name": "1.0"},
}
DOCKER_LIST = dict(OCI_INDEX, mediaType="application/vnd.docker.distribution.manifest.list.v2+json")
CONFIG = {
    "created": "2024-01-02T03:04:05Z", "architecture": "amd64", "os": "linux",
    "config": {"Env": ["PATH=/usr/bin"], "Cmd": ["/bin/sh"], "Labels": {"a": "b"}},
    "rootfs": {"type": "layers", "diff_ids": [SHA_A, "sha512:" + "e" * 128]},
    "history": [{"created_by": "/bin/sh -c true", "empty_layer": True},
                {"created": "2024-01-02T03:04:05Z", "created_by": "COPY x", "comment": "c"}],
}
# Content-Type selector bytes (kContentTypes in manifest_fuzz.cpp).
CT_NONE, CT_JSON, CT_OCI_MANIFEST, CT_OCI_INDEX, CT_DOCKER_MANIFEST, CT_DOCKER_LIST = range(6)
CT_SCHEMA1, CT_OCI_CHARSET = 6, 7


def manifest_seeds():
    no_type = {k: v for k, v in OCI_MANIFEST.items() if k != "mediaType"}
    yield "oci-manifest", CT_OCI_MANIFEST, OCI_MANIFEST
    yield "oci-manifest-no-mediatype", CT_OCI_CHARSET, no_type
    yield "docker-manifest", CT_DOCKER_MANIFEST, DOCKER_MANIFEST
    yield "oci-index", CT_OCI_INDEX, OCI_INDEX
    yield "docker-list", CT_DOCKER_LIST, DOCKER_LIST
    yield "index-no-mediatype", CT_NONE, {k: v for k, v in OCI_INDEX.items() if k != "mediaType"}
    yield "config", CT_JSON, CONFIG
    yield "schema1", CT_SCHEMA1, {"schemaVersion": 1, "name": "x", "tag": "latest", "fsLayers": []}
    yield "ambiguous", CT_JSON, dict(no_type, manifests=[])
    yield "bad-digest", CT_NONE, {"schemaVersion": 2, "config": {"digest": "sha256:../../../etc/passwd",
                                                               "size": 1}, "layers": []}


# --- registry error documents and token server answers (registry_response_fuzz).
ERROR_DOCS = [
    {"errors": [{"code": "MANIFEST_UNKNOWN", "message": "manifest unknown",
                 "detail": {"Tag": "latest"}}]},
    {"errors": [{"code": "UNAUTHORIZED", "message": "authentication required",
                 "detail": [{"Type": "repository", "Name": "library/x", "Action": "pull"}]}]},
    {"errors": [{"code": "DENIED"}, {"message": "requested access to the resource is denied"}]},
    {"errors": [{"code": "TOOMANYREQUESTS", "message": "You have reached your pull rate limit."}]},
]
TOKENS = [
    {"token": "eyJhbGciOiJSUzI1NiJ9.e30.sig", "access_token": "eyJhbGciOiJSUzI1NiJ9.e30.sig",
     "expires_in": 300, "issued_at": "2024-01-02T03:04:05.123456789Z"},
    {"access_token": "ghs_abc", "expires_in": 3600, "scope": "repository:a/b:pull"},
    {"token": "t"},
    {"token": "t", "expires_in": 9223372036854775807},
]
TOKEN_ERRORS = [
    {"details": "incorrect username or password"},
    {"error": "invalid_grant", "error_description": "refresh token expired"},
    {"errors": [{"code": "DENIED", "message": "account is banned"}]},
]


# --- docker config.json shapes.
def b64(s):
    import base64
    return base64.b64encode(s.encode()).decode()


CREDENTIALS = {
    "auths": {"auths": {"https://index.docker.io/v1/": {"auth": b64("user:hunter2-password")},
                        "localhost:5000": {"username": "u", "password": "p4ssw0rd-long"},
                        "https://ghcr.io/v1/": {"auth": b64("ghuser:ghp_token12345678")},
                        "http://[::1]:5000/": {"identitytoken": "refresh-token-abc"}}},
    "helpers": {"auths": {"docker.io": {}}, "credsStore": "desktop",
                "credHelpers": {"ghcr.io": "gcloud", "localhost:5000": ""}},
    "case-insensitive": {"AUTHS": {"LocalHost:5000": {"Auth": b64("a:b\0\0")}}, "credsstore": None},
    "bad-base64": {"auths": {"localhost:5000": {"auth": "not base64 !!secretvalue"}}},
    "bad-type": {"auths": {"localhost:5000": {"password": 12345678}}},
    "empty": {},
    # Secrets with non-ASCII and control bytes: what credentials_fuzz looks for in messages.
    "non-ascii-secrets": {"auths": {"localhost:5000": {"password": "p\u00e4ssw\u00f6rd\u0001",
                                                       "auth": "bad\u00e9base64=="},
                                    "ghcr.io": {"identitytoken": "tok\u0007en"}}},
}


# --- layers made with Python's tarfile: every entry type the applier handles,
# OCI whiteouts, and breakout shapes (the canary is ../canary from the rootfs).
def tar_bytes(entries, fmt=tarfile.PAX_FORMAT):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=fmt) as tar:
        for e in entries:
            kind, name = e[0], e[1]
            info = tarfile.TarInfo(name)
            info.mtime = MTIME
            info.uid = info.gid = 0
            info.uname = info.gname = "root"
            data = None
            if kind == "dir":
                info.type, info.mode = tarfile.DIRTYPE, e[2] if len(e) > 2 else 0o755
            elif kind == "file":
                data = e[2].encode() if isinstance(e[2], str) else e[2]
                info.size, info.mode = len(data), e[3] if len(e) > 3 else 0o644
            elif kind == "symlink":
                info.type, info.linkname, info.mode = tarfile.SYMTYPE, e[2], 0o777
            elif kind == "hardlink":
                info.type, info.linkname, info.mode = tarfile.LNKTYPE, e[2], 0o644
            elif kind == "fifo":
                info.type, info.mode = tarfile.FIFOTYPE, 0o644
            elif kind == "chr":
                info.type, info.mode, info.devmajor, info.devminor = tarfile.CHRTYPE, 0o666, 1, 3
            elif kind == "owned":
                data = e[2].encode()
                info.size, info.mode, info.uid, info.gid = len(data), 0o4755, 1000, 1000
                info.uname = info.gname = "user"
            elif kind == "xattr":
                data = b"x"
                info.size, info.mode = 1, 0o644
                info.pax_headers = {"SCHILY.xattr.user.test": "value",
                                    "SCHILY.xattr.security.capability": "\x01\x00\x00\x02"}
            else:
                raise ValueError(kind)
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return buf.getvalue()


LAYERS = {
    "basic": [("dir", "etc"), ("file", "etc/hosts", "127.0.0.1 localhost\n"),
              ("dir", "usr/bin"), ("file", "usr/bin/tool", "#!/bin/sh\n", 0o755),
              ("symlink", "bin", "usr/bin"), ("hardlink", "etc/hosts.bak", "etc/hosts")],
    "special": [("fifo", "run/fifo"), ("chr", "dev/null"), ("owned", "home/user/suid", "x"),
                ("xattr", "xattr-file"), ("dir", "tmp", 0o1777), ("dir", "locked", 0o000),
                ("file", "locked/inside", "y")],
    "whiteouts": [("dir", "a"), ("file", "a/keep", "k"), ("file", "a/.wh.gone", ""),
                  ("file", "b/.wh..wh..opq", ""), ("file", "b/new", "n"), ("file", ".wh.etc", "")],
    "opaque-after": [("file", "d/new", "n"), ("file", "d/.wh..wh..opq", "")],
    "replace-kinds": [("file", "x", "file"), ("dir", "x"), ("file", "x/y", "y"),
                      ("symlink", "x", "/etc"), ("file", "x", "again")],
    "escape-relative-symlink": [("symlink", "escape", "../canary"), ("file", "escape/pwned", "x"),
                                ("file", "escape/file", "overwritten")],
    "escape-absolute-symlink": [("symlink", "abs", "/tmp"), ("file", "abs/pwned", "x"),
                                ("symlink", "root", "/"), ("file", "root/pwned", "x")],
    "escape-deep-symlink": [("dir", "deep/er"), ("symlink", "deep/er/up", "../../../../../../canary"),
                            ("file", "deep/er/up/dir/deep", "changed"),
                            ("symlink", "updown", "deep/../../canary"), ("fifo", "updown/fifo")],
    "escape-dotdot-names": [("file", "../canary/file", "x"), ("file", "../../pwned", "x"),
                            ("dir", "../canary/dir"), ("file", "/tmp/pwned", "x")],
    "escape-hardlinks": [("hardlink", "h1", "../canary/file"), ("hardlink", "h2", "/etc/passwd"),
                         ("symlink", "s", "../canary/file"), ("hardlink", "h3", "s"),
                         ("file", "h3", "through")],
    "escape-whiteouts": [("symlink", "w", "../canary"), ("file", "w/.wh.file", ""),
                         ("file", "w/.wh..wh..opq", ""), ("file", ".wh..", ""),
                         ("file", "x/.wh...", "")],
    "symlink-loop": [("symlink", "a", "b"), ("symlink", "b", "a"), ("file", "a/x", "x")],
}


def zstd_compress(data):
    if shutil.which("zstd") is None:
        return None
    return subprocess.run(["zstd", "-q", "-c", "-3"], input=data, stdout=subprocess.PIPE,
                          check=True).stdout


def main():
    if os.path.isdir(CORPUS):
        shutil.rmtree(CORPUS)
    for i, r in enumerate(REFERENCES):
        write("reference_fuzz", f"ref-{i:02d}", r)
    for i, c in enumerate(CHALLENGES):
        write("challenge_fuzz", f"challenge-{i:02d}", c)
    for name, ct, doc in manifest_seeds():
        write("manifest_fuzz", name, bytes([ct]) + json.dumps(doc, indent=1).encode())
    for i, doc in enumerate(ERROR_DOCS):
        write("registry_response_fuzz", f"error-{i}", bytes([0, i]) + json.dumps(doc).encode())
    write("registry_response_fuzz", "error-html", bytes([0, 8]) + b"<html><body>502 Bad Gateway</body></html>")
    for i, doc in enumerate(TOKENS):
        write("registry_response_fuzz", f"token-{i}", bytes([1, 0]) + json.dumps(doc).encode())
    for i, doc in enumerate(TOKEN_ERRORS):
        write("registry_response_fuzz", f"token-error-{i}", bytes([2, 1]) + json.dumps(doc).encode())
    for name, doc in CREDENTIALS.items():
        write("credentials_fuzz", name, json.dumps(doc, indent=1))
    for name, entries in LAYERS.items():
        plain = tar_bytes(entries)
        write("tar_apply_fuzz", f"{name}.tar", bytes([0]) + plain)
        # The walk resolver, and applying twice (replacing what the first pass made).
        write("tar_apply_fuzz", f"{name}.walk.twice.tar", bytes([4 | 8 | 16]) + plain)
    write("tar_apply_fuzz", "basic.gnu.tar", bytes([0]) + tar_bytes(LAYERS["basic"], tarfile.GNU_FORMAT))
    write("tar_apply_fuzz", "basic.ustar.tar", bytes([0]) + tar_bytes(LAYERS["basic"], tarfile.USTAR_FORMAT))
    for name in ("basic", "whiteouts", "escape-relative-symlink"):
        plain = tar_bytes(LAYERS[name])
        write("tar_apply_fuzz", f"{name}.tar.gz", bytes([1]) + gzip.compress(plain, mtime=0))
        z = zstd_compress(plain)
        if z is None:
            print("make_seeds: no zstd program, zstd seeds skipped", file=sys.stderr)
        else:
            write("tar_apply_fuzz", f"{name}.tar.zst", bytes([2]) + z)
    total = sum(len(files) for _, _, files in os.walk(CORPUS))
    print(f"make_seeds: wrote {total} seeds under {os.path.relpath(CORPUS)}")


if __name__ == "__main__":
    main()
