"""Layers to a root filesystem: what `imgpull pull --rootfs DIR REF` and
`imgpull pull REF; imgpull unpack REF DIR` make equals, entry for entry, what
`umoci unpack` makes of the same image (tests/tools/rootfs_manifest.py:
type, mode with setuid/setgid/sticky, owner, size, content sha256, symlink
target, device numbers, xattrs, hard-link groups, and the mtime of every
entry that is not a directory).

Images: the fixtures single, multi (whiteouts, opaque dir, hard link,
symlink, file -> directory), index (this machine's platform), and a real
Debian bookworm minbase rootfs pushed as gzip and as zstd (conftest's
debian_image). The umoci side unpacks the fixture's OCI layout (for the
zstd image, the gzip layout: umoci 0.4.7 cannot read zstd layers, and the
two images have the same diff_id, which is checked). Needs root: the
extractions keep owners and make device nodes.

Directory mtimes are left out of the comparison on purpose (see
rootfs_manifest's doc): where a later layer changes a directory without
carrying its entry, or for the root directory, extractors differ and the
OCI spec does not say who is right.
"""
import io
import json
import os
import platform
import shutil
import subprocess
import tarfile

import pytest

import imgpull_cli as cli
from registry import fixtures as fx
from registry.harness import MANIFEST_ACCEPT, push
from tools import rootfs_manifest as rm

pytestmark = pytest.mark.skipif(os.geteuid() != 0,
                                reason="needs root (owners, device nodes, security.* xattrs)")

COMPARE = {"mtime": "nondir"}
_ARCH = {"x86_64": "amd64", "aarch64": "arm64"}
HOST_ARCH = _ARCH.get(platform.machine(), platform.machine())


# --- the images -----------------------------------------------------------------

class Image:
    """One image to check: its reference in registry_plain and the OCI
    layout:tag umoci unpacks for the expected result."""

    def __init__(self, key, repo_tag, umoci_image):
        self.key, self.repo_tag, self.umoci_image = key, repo_tag, umoci_image


def _fixture_image(key, registry, debian=None) -> Image:
    fixtures = registry.fixtures
    if key in ("single", "multi"):
        return Image(key, f"{key}:latest", f"{fixtures[key].layout}:latest")
    if key == "index":
        if HOST_ARCH not in fixtures["index"].info["architectures"]:
            pytest.skip(f"the index fixture has no image for {HOST_ARCH}")
        return Image(key, "index:latest", f"{fixtures['index'].layout}:{HOST_ARCH}")
    if key == "debian":
        return Image(key, debian.ref, f"{debian.layout}:{debian.tag}")
    if key == "debian-zstd":
        # umoci unpacks the gzip layout: the same tar, as the diff_ids say
        assert debian.info["gzip"]["diff_ids"] == debian.info["zstd"]["diff_ids"]
        served = registry.api("GET", f"/v2/{debian.repo}/manifests/{debian.zstd_tag}",
                              headers={"Accept": MANIFEST_ACCEPT})
        assert served.status == 200, served
        layers = json.loads(served.body)["layers"]
        assert [l["mediaType"] for l in layers] == [fx.OCI_LAYER_ZSTD]
        return Image(key, debian.zstd_ref, f"{debian.layout}:{debian.tag}")
    raise ValueError(key)


IMAGES = ["single", "multi", "index", "debian", "debian-zstd"]


@pytest.fixture
def image(request, registry_plain):
    key = request.param
    deb = request.getfixturevalue("debian_image") if key.startswith("debian") else None
    return _fixture_image(key, registry_plain, deb)


@pytest.fixture(scope="module")
def umoci_manifest(tmp_path_factory):
    """umoci_manifest(image) -> the manifest of `umoci unpack` of image.umoci_image
    (unpacked once per module; the tree itself is removed right away)."""
    done = {}

    def get(img: Image):
        if img.umoci_image not in done:
            work = tmp_path_factory.mktemp("umoci")
            subprocess.run([fx.UMOCI, "unpack", "--image", img.umoci_image, str(work / "bundle")],
                           check=True, capture_output=True)
            done[img.umoci_image] = rm.manifest(work / "bundle" / "rootfs", **COMPARE)
            shutil.rmtree(work)
        return done[img.umoci_image]
    return get


def _cleanup(*paths):
    """Remove big trees once a test passed (a failing test keeps them for a
    look; pytest keeps the last three runs' tmp dirs, a Debian rootfs is 170 MB)."""
    for p in paths:
        shutil.rmtree(p, ignore_errors=True)


def _assert_same_tree(img: Image, expected, rootfs, what):
    report = rm.diff_report(expected, rootfs, names=(f"umoci unpack {img.umoci_image}",
                                                     f"imgpull {what} ({rootfs})"), **COMPARE)
    if report:
        pytest.fail(f"imgpull {what}: the rootfs differs from umoci's\n{report}", pytrace=False)


# --- imgpull equals umoci ---------------------------------------------------------

@pytest.mark.parametrize("image", IMAGES, indirect=True)
def test_pull_rootfs_equals_umoci_unpack(imgpull_bin, registry_plain, image, umoci_manifest,
                                         tmp_path):
    ref = f"{registry_plain.host}/{image.repo_tag}"
    rootfs = tmp_path / "rootfs"
    cli.run(["pull", "--rootfs", str(rootfs), ref], tmp_path / "store", check=True)
    _assert_same_tree(image, umoci_manifest(image), rootfs, f"pull --rootfs {image.repo_tag}")
    _cleanup(rootfs, tmp_path / "store")


@pytest.mark.parametrize("image", IMAGES, indirect=True)
def test_pull_then_unpack_equals_umoci_unpack(imgpull_bin, registry_plain, image, umoci_manifest,
                                              tmp_path):
    ref = f"{registry_plain.host}/{image.repo_tag}"
    store = tmp_path / "store"
    cli.run(["pull", ref], store, check=True)
    mark = len(registry_plain.requests())
    rootfs = tmp_path / "rootfs"
    cli.run(["unpack", ref, str(rootfs)], store, check=True)
    assert registry_plain.requests()[mark:] == [], "unpack works from the store alone"
    _assert_same_tree(image, umoci_manifest(image), rootfs, f"unpack {image.repo_tag}")
    _cleanup(rootfs, store)


# --- the multi image, path by path ---------------------------------------------------

def assert_multi_semantics(root):
    """What fixtures.py's docstring promises about the multi image's final tree."""
    srv = os.path.join(root, "srv")
    read = lambda p: open(os.path.join(srv, p), "rb").read()  # noqa: E731
    assert sorted(os.listdir(srv)) == ["data", "keep.txt", "opq"]
    assert read("keep.txt") == b"kept\n"
    # hard link (layer 2 re-emits a.txt as a link to a-hard.txt)
    a, a_hard = os.lstat(f"{srv}/data/a.txt"), os.lstat(f"{srv}/data/a-hard.txt")
    assert (a.st_dev, a.st_ino) == (a_hard.st_dev, a_hard.st_ino)
    assert a.st_nlink == 2
    assert read("data/a.txt") == b"alpha\n"
    # symlink
    assert os.readlink(f"{srv}/data/a-sym") == "a.txt"
    # whiteouts: a file and a whole directory
    assert not os.path.lexists(f"{srv}/data/gone.txt")
    assert not os.path.lexists(f"{srv}/olddir")
    # file -> directory without a whiteout
    assert os.path.isdir(f"{srv}/data/config") and not os.path.islink(f"{srv}/data/config")
    assert read("data/config/inner.txt") == b"now a directory\n"
    assert os.path.isdir(f"{srv}/data/sub") and os.listdir(f"{srv}/data/sub") == []
    # opaque directory: only what the opaque layer put there
    assert os.listdir(f"{srv}/opq") == ["new.txt"]
    assert read("opq/new.txt") == b"new\n"
    assert sorted(os.listdir(f"{srv}/data")) == ["a-hard.txt", "a-sym", "a.txt", "config", "sub"]
    # no whiteout marker survives anywhere
    for dirpath, dirnames, filenames in os.walk(root):
        for n in dirnames + filenames:
            assert not n.startswith(".wh."), os.path.join(dirpath, n)


def test_multi_semantics_hold_for_umoci(registry_plain, tmp_path):
    """Self-check of assert_multi_semantics against umoci (no imgpull needed)."""
    layout = registry_plain.fixtures["multi"].layout
    subprocess.run([fx.UMOCI, "unpack", "--image", f"{layout}:latest", str(tmp_path / "b")],
                   check=True, capture_output=True)
    assert_multi_semantics(tmp_path / "b" / "rootfs")


def test_multi_whiteouts_opaque_links_in_pulled_rootfs(imgpull_bin, registry_plain, tmp_path):
    rootfs = tmp_path / "rootfs"
    cli.run(["pull", "--rootfs", str(rootfs), f"{registry_plain.host}/multi:latest"],
            tmp_path / "store", check=True)
    assert_multi_semantics(rootfs)


def test_index_rootfs_is_this_machines_platform(imgpull_bin, registry_plain, tmp_path):
    if HOST_ARCH not in registry_plain.fixtures["index"].info["architectures"]:
        pytest.skip(f"the index fixture has no image for {HOST_ARCH}")
    rootfs = tmp_path / "rootfs"
    cli.run(["pull", "--rootfs", str(rootfs), f"{registry_plain.host}/index:latest"],
            tmp_path / "store", check=True)
    assert (rootfs / "etc/fixture-arch").read_text() == f"{HOST_ARCH}\n"


def test_debian_rootfs_keeps_what_a_system_needs(imgpull_bin, registry_plain, debian_image,
                                                 tmp_path):
    """Spot checks on the Debian tree (the full comparison is above; these
    name what matters, in case umoci and imgpull were ever wrong alike)."""
    rootfs = tmp_path / "rootfs"
    cli.run(["pull", "--rootfs", str(rootfs), f"{registry_plain.host}/{debian_image.ref}"],
            tmp_path / "store", check=True)
    m = rm.manifest(rootfs)
    assert m["/dev/null"]["type"] == "char" and m["/dev/null"]["dev"] == "1,3"
    assert m["/dev/null"]["mode"] == "0666"
    assert m["/usr/bin/ping"]["xattr.security.capability"].startswith("01000002")  # cap_net_raw
    assert m["/etc/debian_version"]["xattr.user.imgpull.fixture"] == b"debian-minbase".hex()
    assert m["/srv"]["xattr.user.imgpull.bytes"] == bytes(range(0, 256, 17)).hex()
    assert m["/usr/bin/passwd"]["mode"] == "4755"
    assert (m["/usr/bin/chage"]["mode"], m["/usr/bin/chage"]["gid"]) == ("2755", "42")  # shadow
    assert (m["/var/mail"]["mode"], m["/var/mail"]["gid"]) == ("2775", "8")            # mail
    assert m["/tmp"]["mode"] == "1777"
    assert m["/usr/bin/perl"]["hardlink"] == m["/usr/bin/perl5.36.0"]["hardlink"]
    assert m["/bin"] == {"type": "symlink", "mode": "0777", "uid": "0", "gid": "0",
                         "target": "usr/bin"}  # merged /usr
    assert m["/dev/fd"]["target"] == "/proc/self/fd"
    files = sum(1 for e in m.values() if e["type"] == "file")
    assert files == debian_image.info["files"] + debian_image.info["hardlinks"]
    assert len(m) == debian_image.info["entries"]
    _cleanup(rootfs, tmp_path / "store")


# --- where imgpull may write -------------------------------------------------------------

def test_rootfs_into_non_empty_dir_needs_force(imgpull_bin, registry_plain, tmp_path):
    """Without --force a DIR holding something is refused before anything is
    fetched; --force replaces it (its mode kept), as if it had been removed first."""
    ref = f"{registry_plain.host}/single:latest"
    rootfs = tmp_path / "rootfs"
    rootfs.mkdir()
    rootfs.chmod(0o750)
    (rootfs / "already-here").write_text("mine\n")
    (rootfs / "sub").mkdir()
    (rootfs / "sub" / "deeper").write_text("mine too\n")
    before = rm.manifest(rootfs, mtime=True)

    proc = cli.run(["pull", "--rootfs", str(rootfs), ref], tmp_path / "store")
    assert proc.returncode != 0, proc.stdout
    assert proc.stderr.strip(), "says why"
    assert rm.diff(before, rootfs, mtime=True) == [], "a refused --rootfs leaves DIR alone"

    cli.run(["pull", ref], tmp_path / "store2", check=True)
    proc = cli.run(["unpack", ref, str(rootfs)], tmp_path / "store2")
    assert proc.returncode != 0, proc.stdout
    assert proc.stderr.strip(), "says why"
    assert rm.diff(before, rootfs, mtime=True) == [], "a refused unpack leaves DIR alone"

    cli.run(["pull", "--rootfs", str(rootfs), "--force", ref], tmp_path / "store", check=True)
    assert not (rootfs / "already-here").exists() and not (rootfs / "sub").exists(), "replaced, not merged"
    assert (rootfs / "hello.txt").read_text() == "hello from imgpull fixture single\n"
    fresh = _fresh_unpack(ref, tmp_path / "store2", tmp_path / "fresh")
    assert rm.diff(str(rootfs), fresh, include_root=False) == []
    assert oct(rootfs.stat().st_mode & 0o7777) == oct(0o750)

    again = tmp_path / "again"
    again.mkdir()
    (again / "x").write_text("")
    cli.run(["unpack", "--force", ref, str(again)], tmp_path / "store2", check=True)
    assert (again / "hello.txt").exists() and not (again / "x").exists()
    assert [n for n in os.listdir(tmp_path) if "imgpull-staging" in n] == [], "the old trees are gone"


def _fresh_unpack(ref, store, dest):
    cli.run(["unpack", ref, str(dest)], store, check=True)
    return str(dest)


def test_rootfs_into_empty_existing_dir_needs_no_force(imgpull_bin, registry_plain, tmp_path):
    rootfs = tmp_path / "rootfs"
    rootfs.mkdir()
    cli.run(["pull", "--rootfs", str(rootfs), f"{registry_plain.host}/single:latest"],
            tmp_path / "store", check=True)
    assert (rootfs / "hello.txt").exists()


def _snapshot(box):
    """Everything under box except the rootfs* directories imgpull writes to
    (a dict, mtimes included; box itself is left out: making rootfs/ in it
    changes its mtime)."""
    return {p: e for p, e in rm.manifest(box, mtime=True, include_root=False).items()
            if not p.split("/")[1].startswith("rootfs")}


@pytest.mark.parametrize("image", ["multi", "debian"], indirect=True)
def test_nothing_written_outside_rootfs(imgpull_bin, registry_plain, image, tmp_path):
    """The Debian tree has absolute symlinks (/dev/fd -> /proc/self/fd ...),
    multi has whiteouts and relative links: none of it may reach a sibling."""
    box = tmp_path / "box"
    _make_canary(box)
    before = _snapshot(box)
    ref = f"{registry_plain.host}/{image.repo_tag}"
    cli.run(["pull", "--rootfs", str(box / "rootfs"), ref], tmp_path / "store", check=True)
    assert rm.diff(before, _snapshot(box), mtime=True) == []
    cli.run(["unpack", ref, str(box / "rootfs2")], tmp_path / "store", check=True)
    assert rm.diff(before, _snapshot(box), mtime=True) == []
    cli.run(["unpack", "--force", ref, str(box / "rootfs")], tmp_path / "store", check=True)
    assert rm.diff(before, _snapshot(box), mtime=True) == []
    _cleanup(box, tmp_path / "store")


# Layers that try to write outside the rootfs. Each is a list of layers, each
# layer a list of (name, kind, arg): kind "file" (arg = content), "dir",
# "symlink" (arg = target, "{canary}" is the canary's absolute path),
# "hardlink" (arg = link name in the archive).
ESCAPES = {
    "symlink-relative": [[("esc", "symlink", "../canary")],
                         [("esc/pwned", "file", b"pwned\n")]],
    "symlink-absolute": [[("esc", "symlink", "{canary}")],
                         [("esc/pwned", "file", b"pwned\n")]],
    "symlink-same-layer": [[("esc", "symlink", "{canary}"), ("esc/pwned", "file", b"pwned\n")]],
    "symlink-parent-chain": [[("a", "dir", None), ("a/up", "symlink", ".."),
                              ("a/up2", "symlink", "up/.."),
                              ("a/up2/canary/pwned", "file", b"pwned\n")]],
    "dotdot-name": [[("../canary/pwned", "file", b"pwned\n")]],
    "dotdot-inside-name": [[("x", "dir", None), ("x/../../canary/pwned", "file", b"pwned\n")]],
    "hardlink-to-outside": [[("hl", "hardlink", "../canary/victim")],
                            [("hl", "file", b"pwned\n")]],
    "write-through-hardlink": [[("esc", "symlink", "{canary}/victim"), ("hl", "hardlink", "esc")],
                               [("hl", "file", b"pwned\n")]],
    "whiteout-through-symlink": [[("esc", "symlink", "{canary}")],
                                 [("esc/.wh.victim", "file", b"")]],
    "opaque-through-symlink": [[("esc", "symlink", "{canary}")],
                               [("esc/.wh..wh..opq", "file", b"")]],
    "file-over-symlink-to-outside": [[("f", "symlink", "{canary}/victim")],
                                     [("f", "file", b"pwned\n")]],
}


def _make_canary(box):
    canary = box / "canary"
    canary.mkdir(parents=True)
    (canary / "victim").write_text("victim\n")
    (canary / "sub").mkdir()
    (canary / "sub" / "file").write_text("sub\n")
    return canary


def _layer_tar(entries, canary) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as t:
        for name, kind, arg in entries:
            ti = tarfile.TarInfo(name)
            ti.mtime = 1700000000
            data = None
            if kind == "file":
                ti.size, ti.mode, data = len(arg), 0o644, io.BytesIO(arg)
            elif kind == "dir":
                ti.type, ti.mode = tarfile.DIRTYPE, 0o755
            elif kind == "symlink":
                ti.type, ti.mode, ti.linkname = tarfile.SYMTYPE, 0o777, arg.format(canary=canary)
            elif kind == "hardlink":
                ti.type, ti.mode, ti.linkname = tarfile.LNKTYPE, 0o644, arg
            t.addfile(ti, data)
    return buf.getvalue()


def _escape_image(tmp_path, registry, name, layers, canary) -> str:
    layout = str(tmp_path / "layout")
    subprocess.run([fx.UMOCI, "init", "--layout", layout], check=True, capture_output=True)
    subprocess.run([fx.UMOCI, "new", "--image", f"{layout}:latest"], check=True, capture_output=True)
    for i, entries in enumerate(layers):
        path = tmp_path / f"layer{i}.tar"
        path.write_bytes(_layer_tar(entries, canary))
        subprocess.run([fx.UMOCI, "raw", "add-layer", "--image", f"{layout}:latest", str(path)],
                       check=True, capture_output=True)
    subprocess.run([fx.UMOCI, "config", "--image", f"{layout}:latest", "--os", "linux",
                    "--architecture", HOST_ARCH], check=True, capture_output=True)
    repo_tag = f"escape/{name}:latest"
    push(registry, layout, "latest", repo_tag)
    return f"{registry.host}/{repo_tag}"


@pytest.mark.parametrize("name", sorted(ESCAPES))
def test_hostile_layers_write_nothing_outside_rootfs(imgpull_bin, registry_plain, tmp_path, name):
    """imgpull may refuse these layers or confine them to DIR; either way the
    canary next to DIR stays as it was, for pull --rootfs and for unpack."""
    box = tmp_path / "box"
    canary = _make_canary(box)
    ref = _escape_image(tmp_path, registry_plain, name, ESCAPES[name], canary)
    before = _snapshot(box)
    # the layers reach the store by a plain pull, which never looks inside them
    cli.run(["pull", ref], tmp_path / "store2", check=True)
    results = []
    for args, store in ((["pull", "--rootfs", str(box / "rootfs"), ref], tmp_path / "store"),
                        (["unpack", ref, str(box / "rootfs2")], tmp_path / "store2")):
        proc = cli.run(args, store)
        results.append((args[0], proc.returncode, proc.stderr.strip()[-300:]))
        assert rm.diff(before, _snapshot(box), mtime=True) == [], (name, results)
        assert not os.path.lexists(tmp_path / "canary"), results
    print(name, results)
