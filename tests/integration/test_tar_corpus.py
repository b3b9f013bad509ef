"""Tar fidelity: for each layer of the corpus (tests/registry/tar_corpus.py:
GNU tar in gnu and posix formats with xattrs and every sparse version,
bsdtar, umoci, buildah, and crafted shapes no tool writes), `imgpull pull
--rootfs` makes the tree `umoci unpack` (Go's archive/tar) makes, entry for
entry: names, types, modes, owners, sizes, content hashes, link targets,
device numbers, xattrs (empty-valued ones included), hard-link groups and
the mtimes of everything but directories.

Where the two differ on purpose or for a known reason, the case says so:
  - DIFFERENCES: both unpack the layer and disagree (README "Tar fidelity"
    says why); xfail(strict=True), so a fix shows up as XPASS;
  - REFUSED: imgpull refuses a layer umoci unpacks (the test checks the
    error and that umoci did unpack it);
  - a case umoci refuses (GNU old sparse: typeflag 'S') is compared with
    GNU tar's own extraction instead.

Needs root (owners, device nodes). The corpus is cached across runs.
"""
import os

import pytest

import imgpull_cli as cli
from registry import tar_corpus as corpus
from registry.harness import push
from tools import rootfs_manifest as rm

pytestmark = pytest.mark.skipif(os.geteuid() != 0,
                                reason="needs root (owners, device nodes, xattrs)")


def _case_dir(name):
    reason = corpus.unavailable(name)
    if reason:
        if os.environ.get("CI"):
            pytest.fail(f"corpus case {name} cannot be built: {reason}", pytrace=False)
        pytest.skip(f"corpus case {name} cannot be built: {reason}")
    return corpus.get(name)


def _params():
    for name in corpus.NAMES:
        marks = []
        if name in corpus.DIFFERENCES:
            marks.append(pytest.mark.xfail(strict=True, reason=corpus.DIFFERENCES[name]))
        yield pytest.param(name, marks=marks, id=name)


def _pull(registry, case, tmp_path):
    ref = push(registry, os.path.join(case, "layout"), "latest",
               f"corpus/{os.path.basename(case)}:latest")
    assert ref.startswith("sha256:")
    rootfs = tmp_path / "rootfs"
    proc = cli.run(["pull", "--rootfs", str(rootfs),
                    f"{registry.host}/corpus/{os.path.basename(case)}:latest"],
                   tmp_path / "store")
    return proc, rootfs


@pytest.mark.parametrize("name", _params())
def test_rootfs_equals_go_extraction(imgpull_bin, registry_plain, name, tmp_path):
    case = _case_dir(name)
    proc, rootfs = _pull(registry_plain, case, tmp_path)
    umoci = os.path.join(case, "umoci.manifest")
    if name in corpus.REFUSED:
        assert os.path.exists(umoci), "umoci unpacks it (the difference is deliberate)"
        assert proc.returncode != 0, proc.stdout
        assert corpus.REFUSED[name] in proc.stderr, proc.stderr
        assert not list(rootfs.rglob("hidden")), "nothing of the ambiguous entry was applied"
        return
    assert proc.returncode == 0, f"imgpull failed on {name}:\n{proc.stderr}"
    if os.path.exists(umoci):
        expected, who = umoci, "umoci unpack"
    else:
        # umoci refuses it (its reason is kept); GNU tar's extraction is the reference.
        with open(os.path.join(case, "umoci.error")) as f:
            assert "unknown typeflag" in f.read()
        expected, who = os.path.join(case, "tar-x.manifest"), "tar -x"
    report = rm.diff_report(expected, str(rootfs), names=(f"{who} ({corpus.writer(name)})",
                                                          f"imgpull pull --rootfs ({rootfs})"),
                            **corpus.COMPARE)
    assert not report, report


def test_corpus_covers_what_it_claims():
    """The corpus really holds the shapes the module doc names (checked on the
    cached references, so a recipe change that loses one is noticed)."""
    def entries(name):
        case = _case_dir(name)
        path = os.path.join(case, "umoci.manifest")
        if not os.path.exists(path):
            path = os.path.join(case, "tar-x.manifest")
        return rm.load(path)

    posix = entries("gnu-posix-xattrs")
    assert posix["/d/file"]["xattr.user.note"] == b"value".hex()
    assert "xattr.user.empty" not in posix["/d/file"], "Go drops the empty-valued xattr"
    assert posix["/d/before-epoch"]["mtime"] == "-86401.750000000"  # -86400.25
    gnu = entries("gnu-gnu")
    assert (gnu["/d/big-ids"]["uid"], gnu["/d/big-ids"]["gid"]) == ("3000000", "3000001")
    assert any(p.startswith("/" + corpus.LONG_DIR + "/") for p in gnu)
    assert gnu["/long-link"]["target"] == corpus.LONG_TARGET
    for name in ("gnu-gnu-sparse", "gnu-posix-sparse-0.0", "gnu-posix-sparse-0.1",
                 "gnu-posix-sparse-1.0", "bsdtar-pax"):
        assert entries(name)["/sparse"]["size"] == str(3 << 20), name
    b256 = entries("py-base256")
    assert b256["/size"]["size"] == "5" and b256["/negative-mtime"]["mtime"] == "-86400"
    assert b256["/null"]["dev"] == "1,3"
    assert entries("py-negative-pax-time")["/before-epoch"]["mtime"] == "-86401.750000000"
    for name in ("py-zero-bytes", "py-gzip-of-nothing", "py-only-end-blocks"):
        assert entries(name) == {}, name
