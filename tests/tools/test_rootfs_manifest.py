"""Self-checks of rootfs_manifest.py: what it prints for every kind of entry,
what diff() reports, and that it sees umoci's unpack of the fixture images
as identical to the fixtures' reference/ unpack and to a hand-applied
``tar -x`` of their layers. Needs root (device nodes, chown,
security.* xattrs, umoci unpack without --rootless)."""
import gzip
import os
import shutil
import socket
import stat
import subprocess
import sys
import tarfile

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:
    sys.path.insert(0, HERE)
import rootfs_manifest as rm  # noqa: E402

from registry import fixtures as fx  # noqa: E402  (tests/ is on sys.path via conftest)

TOOL = os.path.join(HERE, "rootfs_manifest.py")
PY = "/usr/bin/python3"
CAP_NET_RAW_EP = bytes.fromhex("0100000200200000000000000000000000000000")

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="needs root")


def _tree(root):
    """A small tree with one of everything."""
    os.makedirs(root / "d/sub")
    (root / "d/f.txt").write_bytes(b"hello\n")
    (root / "empty").write_bytes(b"")
    os.link(root / "d/f.txt", root / "hl")
    os.link(root / "d/f.txt", root / "d/sub/hl2")
    os.symlink("../f.txt", root / "d/sub/rel")
    os.symlink("/abs/dangling", root / "abs")
    os.mkfifo(root / "fifo")
    os.mknod(root / "null", 0o666 | stat.S_IFCHR, os.makedev(1, 3))
    os.mknod(root / "blk", 0o660 | stat.S_IFBLK, os.makedev(7, 0))
    s = socket.socket(socket.AF_UNIX)
    s.bind(str(root / "sock"))
    s.close()
    (root / "we ird\nname\\\xe9").write_bytes(b"x")
    (root / b"raw\xff".decode("utf-8", "surrogateescape")).write_bytes(b"y")
    for p in ("empty", "we ird\nname\\\xe9", b"raw\xff".decode("utf-8", "surrogateescape"),
              "fifo", "sock"):
        os.chmod(root / p, 0o644)
    os.chmod(root / "null", 0o666)
    os.chmod(root / "blk", 0o660)
    os.chmod(root, 0o755)
    os.chmod(root / "d/f.txt", 0o4755)
    os.chmod(root / "d/sub", 0o2775)
    os.chmod(root / "d", 0o1777)
    os.chown(root / "empty", 1000, 50)
    os.lchown(root / "abs", 7, 8)
    os.setxattr(root / "d/f.txt", "security.capability", CAP_NET_RAW_EP)
    os.setxattr(root / "d/f.txt", "user.b", b"\x00\xff")
    os.setxattr(root / "d", "user.a", b"dir")
    os.utime(root / "empty", ns=(0, 1_500_000_000_123_456_789))


@needs_root
def test_every_kind_of_entry(tmp_path):
    root = tmp_path / "t"
    root.mkdir()
    _tree(root)
    text = rm.format_manifest(rm.manifest(root))
    sha_hello = "5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03"
    expected = [
        "/ type=dir mode=0755 uid=0 gid=0",
        "/abs type=symlink mode=0777 uid=7 gid=8 target=/abs/dangling",
        "/blk type=block mode=0660 uid=0 gid=0 dev=7,0",
        "/d type=dir mode=1777 uid=0 gid=0 xattr.user.a=646972",
        f"/d/f.txt type=file mode=4755 uid=0 gid=0 size=6 sha256={sha_hello} hardlink=/d/f.txt "
        f"xattr.security.capability={CAP_NET_RAW_EP.hex()} xattr.user.b=00ff",
        "/d/sub type=dir mode=2775 uid=0 gid=0",
        f"/d/sub/hl2 type=file mode=4755 uid=0 gid=0 size=6 sha256={sha_hello} hardlink=/d/f.txt "
        f"xattr.security.capability={CAP_NET_RAW_EP.hex()} xattr.user.b=00ff",
        "/d/sub/rel type=symlink mode=0777 uid=0 gid=0 target=../f.txt",
        "/empty type=file mode=0644 uid=1000 gid=50 size=0 "
        "sha256=e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        "/fifo type=fifo mode=0644 uid=0 gid=0",
        f"/hl type=file mode=4755 uid=0 gid=0 size=6 sha256={sha_hello} hardlink=/d/f.txt "
        f"xattr.security.capability={CAP_NET_RAW_EP.hex()} xattr.user.b=00ff",
        "/null type=char mode=0666 uid=0 gid=0 dev=1,3",
        "/raw\\377 type=file mode=0644 uid=0 gid=0 size=1 "
        "sha256=a1fce4363854ff888cff4b8e7875d600c2682390412a8cf79b37d0b11148b0fa",
        "/sock type=socket mode=0644 uid=0 gid=0",
        "/we\\040ird\\012name\\134\\303\\251 type=file mode=0644 uid=0 gid=0 size=1 "
        "sha256=2d711642b726b04401627ca9fbac32f5c8530fb1903cc4db02258717921a4881",
    ]
    lines = text.splitlines()
    assert lines == expected, text
    # round trip through the text form
    assert rm.parse(text) == rm.manifest(root)
    assert rm.diff(rm.parse(text), root) == []


@needs_root
def test_mtime_option(tmp_path):
    root = tmp_path / "t"
    root.mkdir()
    _tree(root)
    plain = rm.manifest(root)
    assert all("mtime" not in e for e in plain.values())
    full = rm.manifest(root, mtime=True)
    assert full["/empty"]["mtime"] == "1500000000.123456789"
    assert all("mtime" in e for e in full.values())
    nondir = rm.manifest(root, mtime="nondir")
    assert "mtime" in nondir["/empty"] and "mtime" not in nondir["/d"]
    os.utime(root / "d", (0, 0))
    assert rm.diff(full, root, mtime=True) == ["~ /d: mtime %s -> 0" % full["/d"]["mtime"]]
    assert rm.diff(nondir, root, mtime="nondir") == []


@needs_root
def test_diff_reports_each_kind_of_change(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    for r in (a, b):
        r.mkdir()
        _tree(r)
    assert rm.diff(a, b) == []
    os.chmod(b / "d/sub", 0o755)                       # mode (drops setgid)
    (b / "d/sub/hl2").unlink()                          # hard link group shrinks ...
    shutil.copy2(b / "d/f.txt", b / "d/sub/hl2")        # ... the copy has the same content
    os.setxattr(b / "d/sub/hl2", "security.capability", CAP_NET_RAW_EP)
    os.setxattr(b / "d/sub/hl2", "user.b", b"\x00\xff")
    (b / "empty").unlink()                              # only in a
    os.symlink("elsewhere", b / "new")                  # only in b
    os.removexattr(b / "d", "user.a")                   # xattr gone
    os.unlink(b / "abs")
    os.symlink("/abs/other", b / "abs")                 # target and owner
    d = rm.diff(a, b)
    assert d == [
        "~ /abs: uid 7 -> 0, gid 8 -> 0, target /abs/dangling -> /abs/other",
        "~ /d: xattr.user.a 646972 -> <none>",
        "~ /d/sub: mode 2775 -> 0755",
        "~ /d/sub/hl2: hardlink /d/f.txt -> <none>",
        "- /empty type=file mode=0644 uid=1000 gid=50 size=0 "
        "sha256=e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        "+ /new type=symlink mode=0777 uid=0 gid=0 target=elsewhere",
    ], "\n".join(d)
    report = rm.diff_report(a, b)
    assert report.startswith("6 differing entries between\n")


def test_skipped_xattrs_are_counted_not_hidden(tmp_path):
    root = tmp_path / "t"
    root.mkdir()
    (root / "f").write_bytes(b"")
    os.setxattr(root / "f", "user.keep", b"1")
    os.setxattr(root / "f", "user.skipme", b"2")
    m = rm.manifest(root, skip_xattrs=("user.skipme",))
    assert m["/f"]["xattr.user.keep"] == "31" and "xattr.user.skipme" not in m["/f"]
    assert m.skipped == {"user.skipme": 1}
    assert rm.manifest(root, skip_xattrs=())["/f"]["xattr.user.skipme"] == "32"
    assert "security.selinux" in rm.SKIPPED_XATTRS  # the documented default


def test_hardlink_to_outside_the_tree_is_not_a_group(tmp_path):
    root = tmp_path / "t"
    root.mkdir()
    (tmp_path / "outside").write_bytes(b"o")
    os.link(tmp_path / "outside", root / "inside")
    assert "hardlink" not in rm.manifest(root)["/inside"]


def test_command_line(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    for r in (a, b):
        r.mkdir()
        (r / "x y").write_bytes(b"1")
    out = subprocess.run([PY, TOOL, str(a)], capture_output=True, text=True, check=True).stdout
    assert out.splitlines()[1].startswith("/x\\040y type=file ")
    saved = tmp_path / "a.manifest"
    saved.write_text(out)
    same = subprocess.run([PY, TOOL, "--diff", str(saved), str(b)], capture_output=True, text=True)
    assert (same.returncode, same.stdout) == (0, "")
    (b / "x y").write_bytes(b"2")
    differ = subprocess.run([PY, TOOL, "--diff", str(a), str(b)], capture_output=True, text=True)
    assert differ.returncode == 1
    assert differ.stdout.startswith("~ /x\\040y: sha256 ")
    with_mtime = subprocess.run([PY, TOOL, "--mtime", "--no-root", str(a)], capture_output=True,
                                text=True, check=True).stdout
    assert with_mtime.startswith("/x\\040y ") and " mtime=" in with_mtime


# --- the tool against real extractions of the fixture images -----------------

def _umoci_unpack(image, bundle):
    subprocess.run([fx.UMOCI, "unpack", "--image", image, str(bundle)], check=True,
                   capture_output=True)
    return bundle / "rootfs"


def _layers(layout, tag):
    desc = fx._index_entry(layout, tag)
    man = fx._read_json(layout, desc["digest"])
    return [fx._blob(layout, l["digest"]) for l in man["layers"]]


FIXTURE_IMAGES = [("single", "latest", "rootfs"), ("multi", "latest", "rootfs"),
                  ("index", "amd64", "amd64/rootfs"), ("index", "arm64", "arm64/rootfs")]


@needs_root
@pytest.mark.parametrize("name,tag,ref_dir", FIXTURE_IMAGES,
                         ids=[f"{n}:{t}" for n, t, _ in FIXTURE_IMAGES])
def test_umoci_unpack_equals_fixture_reference(fixture_cache, tmp_path, name, tag, ref_dir):
    f = fixture_cache[name]
    rootfs = _umoci_unpack(f"{f.layout}:{tag}", tmp_path / "bundle")
    reference = os.path.join(f.reference, ref_dir)
    # mtimes included: umoci (root) and umoci --rootless agree on all of them.
    report = rm.diff_report(reference, rootfs, mtime=True)
    assert not report, report
    assert len(rm.manifest(rootfs)) >= 4  # not vacuous: /, /etc, /etc/fixture-arch, /hello.txt at least


def _tar_x(blob, dest):
    subprocess.run(["tar", "-xzf", blob, "-C", str(dest), "--numeric-owner", "--same-owner",
                    "--same-permissions", "--xattrs", "--xattrs-include=*"], check=True)


@needs_root
def test_tar_x_of_single_equals_umoci(fixture_cache, tmp_path):
    f = fixture_cache["single"]
    (blob,) = _layers(f.layout, "latest")
    dest = tmp_path / "tar"
    dest.mkdir()
    _tar_x(blob, dest)
    rootfs = _umoci_unpack(f"{f.layout}:latest", tmp_path / "bundle")
    report = rm.diff_report(rootfs, dest, mtime=True)
    assert not report, report


def _apply_by_hand(blob, dest):
    """One layer the OCI way with tar: whiteouts first (they remove what lower
    layers made), then tar -x of everything but the whiteout entries."""
    with tarfile.open(fileobj=gzip.open(blob)) as t:
        names = [m.name for m in t]
    for n in names:
        d, base = os.path.split(os.path.normpath(n))
        if base == ".wh..wh..opq":  # everything the lower layers put in d goes
            for child in os.listdir(dest / d):
                p = dest / d / child
                shutil.rmtree(p) if p.is_dir() and not p.is_symlink() else p.unlink()
        elif base.startswith(".wh."):
            p = dest / d / base[len(".wh."):]
            shutil.rmtree(p) if p.is_dir() and not p.is_symlink() else p.unlink()
    subprocess.run(["tar", "-xzf", blob, "-C", str(dest), "--numeric-owner", "--same-owner",
                    "--same-permissions", "--xattrs", "--xattrs-include=*",
                    "--wildcards", "--exclude=.wh.*"], check=True)


@needs_root
def test_tar_x_layer_by_layer_of_multi_equals_umoci(fixture_cache, tmp_path):
    f = fixture_cache["multi"]
    dest = tmp_path / "tar"
    dest.mkdir()
    for blob in _layers(f.layout, "latest"):
        _apply_by_hand(blob, dest)
    rootfs = _umoci_unpack(f"{f.layout}:latest", tmp_path / "bundle")
    # Directory mtimes not compared: where a later layer changes a directory
    # tar leaves the time of the change, umoci keeps the earlier layer's.
    report = rm.diff_report(rootfs, dest, mtime="nondir")
    assert not report, report
    assert rm.manifest(dest)["/srv/data/a.txt"]["hardlink"] == "/srv/data/a-hard.txt"
