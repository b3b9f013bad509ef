"""imgpull as an unprivileged user, end to end: a real user made for the
module (useradd, with the subordinate ids Debian's useradd gives it), and
imgpull, umoci and runc run as that user (setpriv), with nothing of root's
environment: store, pull, unpack, save, bundle, login.

- The store defaults to $XDG_DATA_HOME/imgpull (else ~/.local/share/imgpull).
- A rootless rootfs keeps the image's owners where `umoci unpack --rootless`
  keeps them: the same tree as umoci's, entry for entry, user.rootlesscontainers
  records included (tools/rootfs_manifest: type, mode, size, content, link
  target, xattrs, hard links, times of non-directories); device nodes are empty
  files there, as umoci makes them. What could not be applied is one line.
- What the store holds is not changed by this: `save` gives the same archive
  byte for byte as root's store does.
- A rootless bundle (user namespace: the user as root, its subordinate ids
  after) is started by Debian's runc as the user.

Needs root to make the user; the module removes it (userdel -r) afterwards.
"""
import dataclasses
import json
import os
import pwd
import secrets
import shutil
import subprocess
import tempfile
import types
from pathlib import Path

import pytest

import bundle_images
import imgpull_cli as cli
from registry import harness
from registry.harness import push
from tools import rootfs_manifest as rm

RUNC = shutil.which("runc") or "/usr/sbin/runc"
UMOCI = "/usr/bin/umoci"
SETPRIV = "/usr/bin/setpriv"
RECORD = "user.rootlesscontainers"

pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root to create the unprivileged user"),
    pytest.mark.skipif(not shutil.which("useradd"), reason="needs useradd (passwd)"),
]


@dataclasses.dataclass
class User:
    name: str
    uid: int
    gid: int
    home: Path
    work: Path  # a directory of the user's for the test's files

    def env(self, **extra):
        """The environment of a fresh login of the user (no XDG_DATA_HOME, no DOCKER_CONFIG)."""
        env = {"HOME": str(self.home), "USER": self.name, "LOGNAME": self.name,
               "PATH": "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin", "LANG": "C.UTF-8"}
        env.update(extra)
        return env

    def run(self, args, env=None, input=None, timeout=600, cwd=None):
        """Runs ARGS as the user, its supplementary groups and nothing else of root's."""
        return subprocess.run([SETPRIV, f"--reuid={self.uid}", f"--regid={self.gid}", "--init-groups",
                               "--", *map(str, args)], cwd=cwd,
                              env=env if env is not None else self.env(), input=input,
                              capture_output=True, text=True, timeout=timeout,
                              stdin=None if input is not None else subprocess.DEVNULL)

    def imgpull(self, args, env=None, check=True, input=None):
        proc = self.run([cli.binary(), *args], env=env, input=input)
        if check:
            assert proc.returncode == 0, f"imgpull {' '.join(map(str, args))}:\n{proc.stderr}"
        return proc


def _subordinate_range(path, name):
    with open(path) as f:
        for line in f:
            owner, start, count = line.strip().split(":")
            if owner == name:
                return int(start), int(count)
    return None


@pytest.fixture(scope="module")
def user():
    name = f"imgpull-{secrets.token_hex(3)}"
    base = Path(tempfile.mkdtemp(prefix="imgpull-rootless-"))
    base.chmod(0o755)
    home = base / name
    subprocess.run(["useradd", "--create-home", "--home-dir", str(home), "--shell", "/bin/sh",
                    "--user-group", name], check=True, capture_output=True)
    try:
        entry = pwd.getpwnam(name)
        work = home / "work"
        u = User(name, entry.pw_uid, entry.pw_gid, home, work)
        # Debian's useradd gives a new user 65536 subordinate ids (login.defs SUB_UID_COUNT);
        # give some where it did not.
        if not _subordinate_range("/etc/subuid", name) or not _subordinate_range("/etc/subgid", name):
            start = 3_000_000 + (u.uid % 1000) * 65536
            subprocess.run(["usermod", "--add-subuids", f"{start}-{start + 65535}",
                            "--add-subgids", f"{start}-{start + 65535}", name], check=True)
        assert u.run(["mkdir", "-p", work]).returncode == 0
        yield u
    finally:
        subprocess.run(["userdel", "--remove", name], capture_output=True)
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="module")
def runnable(registry_plain, debian_image, user):
    """bundle_images' image, pushed, with a copy of its layout the user can read."""
    work = Path(tempfile.mkdtemp(prefix="imgpull-runnable-"))
    try:
        layout = bundle_images.build(debian_image, str(work))
        push(registry_plain, layout, bundle_images.TAG, "bundle:runnable")
        users_layout = user.work / "layout"
        shutil.copytree(layout, users_layout)
        subprocess.run(["chown", "-R", f"{user.uid}:{user.gid}", str(users_layout)], check=True)
        yield types.SimpleNamespace(ref=f"{registry_plain.host}/bundle:runnable", users_layout=users_layout)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def warnings_in(stderr):
    return [line for line in stderr.splitlines() if line.startswith("Warning:")]


# --- the store -------------------------------------------------------------------

def test_store_defaults_to_xdg_data_home(user, registry_plain):
    ref = f"{registry_plain.host}/single:latest"
    xdg = user.home / "xdg-data"
    user.imgpull(["pull", ref], env=user.env(XDG_DATA_HOME=str(xdg)))
    index = json.loads((xdg / "imgpull" / "index.json").read_text())
    names = [m["annotations"]["org.opencontainers.image.ref.name"] for m in index["manifests"]]
    assert names == [f"{registry_plain.host}/single:latest"]
    assert (xdg / "imgpull").stat().st_uid == user.uid
    listed = user.imgpull(["images"], env=user.env(XDG_DATA_HOME=str(xdg)))
    assert f"{registry_plain.host}/single" in listed.stdout
    # Without XDG_DATA_HOME: ~/.local/share/imgpull, as the XDG spec says.
    user.imgpull(["pull", ref])
    assert (user.home / ".local/share/imgpull/index.json").exists()


# --- a rootless rootfs --------------------------------------------------------------

@pytest.fixture(scope="module")
def rootless_trees(user, runnable):
    """The image unpacked three ways as the user: imgpull pull --rootfs,
    imgpull unpack, umoci unpack --rootless."""
    env = user.env(XDG_DATA_HOME=str(user.home / "trees-data"))
    pulled = user.work / "pulled"
    pull = user.imgpull(["pull", "--rootfs", pulled, runnable.ref], env=env)
    unpacked = user.work / "unpacked"
    unpack = user.imgpull(["unpack", runnable.ref, unpacked], env=env)
    umoci_bundle = user.work / "umoci"
    umoci = user.run([UMOCI, "unpack", "--rootless", "--image", f"{runnable.users_layout}:{bundle_images.TAG}",
                      umoci_bundle])
    assert umoci.returncode == 0, umoci.stderr
    return types.SimpleNamespace(pulled=pulled, unpacked=unpacked, umoci=umoci_bundle / "rootfs",
                                 pull_stderr=pull.stderr, unpack_stderr=unpack.stderr,
                                 umoci_stderr=umoci.stderr, env=env)


# umoci 0.4.7 sets an entry's mode before its xattrs, and a user.* xattr needs write
# permission even for the owner: on an entry without the owner write bit the record
# fails (EACCES) and umoci drops it, saying so. imgpull makes such an entry writable
# for the call, so it keeps those owners too; everything else is as umoci has it.
UMOCI_LOSES = ("/opt/bundle/locked", "/opt/bundle/read-only")


def test_rootless_rootfs_is_umocis(rootless_trees):
    ours = rm.manifest(str(rootless_trees.pulled), mtime="nondir")
    umocis = rm.manifest(str(rootless_trees.umoci), mtime="nondir")
    for path in UMOCI_LOSES:
        assert (f'rootless{{{path.lstrip("/")}}} ignoring (usually) harmless EPERM on setxattr '
                f'"{RECORD}"') in rootless_trees.umoci_stderr, rootless_trees.umoci_stderr
        assert f"xattr.{RECORD}" not in umocis[path]
        umocis[path] = {**umocis[path], f"xattr.{RECORD}": ours[path].get(f"xattr.{RECORD}")}
    assert not rm.diff(ours, umocis), rm.diff_report(ours, umocis, names=("imgpull", "umoci --rootless"))
    # The comparison is about something: the records are there, on the entries expected.
    records = {path: e[f"xattr.{RECORD}"] for path, e in ours.items() if f"xattr.{RECORD}" in e}
    assert records["/opt/bundle/www-owned"] == "08211021"                # 33:33
    assert records["/opt/bundle/read-only"] == "08211021"
    assert records["/opt/bundle/locked"] == "08211021"
    assert records["/opt/bundle/locked/inside"] == "08011001"            # 1:1
    assert records["/opt/bundle/suid"] == "080110ffffffff0f"             # 1:root
    assert records["/opt/bundle/tty9"] == "08ffffffff0f1005"             # root:5 (a device: an empty file)
    assert records["/etc/shadow"] == "08ffffffff0f102a"                  # root:shadow (42)
    assert "/opt/bundle/link" not in records and "/opt/bundle/fifo" not in records
    assert "/etc/passwd" not in records                                  # root's: no record
    tty = ours["/opt/bundle/tty9"]
    assert (tty["type"], tty["mode"], tty["size"]) == ("file", "0620", "0")
    assert ours["/opt/bundle/suid"]["mode"] == "4755"
    assert ours["/opt/bundle/read-only"]["mode"] == "0444"
    assert len(records) > 10, records


def test_rootless_unpack_is_the_same_tree(rootless_trees):
    assert not rm.diff(str(rootless_trees.unpacked), str(rootless_trees.pulled), mtime="nondir")


def test_what_was_not_applied_is_one_line(user, rootless_trees):
    # The Debian fixture's 12 files and directories owned by others than root (shadow, utmp,
    # staff, mail, _apt), its 8 device nodes (all root's) and ping's capability; layer 2's 5
    # files and directories and 1 device owned by others, and its fifo and symlink.
    for stderr in (rootless_trees.pull_stderr, rootless_trees.unpack_stderr):
        assert warnings_in(stderr) == [
            "Warning: not running as root: the image's owners of 18 entries kept in user.rootlesscontainers "
            "only; not applied: 9 device nodes (empty files in their place, as umoci makes them), 1 fifo owner "
            "and 1 symlink owner (Linux keeps no user.* xattrs on those), 1 security.capability xattr"], stderr
    assert all(st.st_uid == user.uid for st in map(os.lstat, (rootless_trees.pulled / "etc/shadow",
                                                             rootless_trees.pulled / "opt/bundle/link")))


def test_the_store_is_the_same_as_roots(user, runnable, rootless_trees, tmp_path):
    users_archive = user.work / "saved.tar"
    user.imgpull(["save", "-o", users_archive, runnable.ref], env=rootless_trees.env)
    roots_archive = tmp_path / "saved.tar"
    cli.run(["pull", runnable.ref], tmp_path / "store", check=True)
    cli.run(["save", "-o", str(roots_archive), runnable.ref], tmp_path / "store", check=True)
    assert users_archive.read_bytes() == roots_archive.read_bytes()


# --- a rootless bundle -----------------------------------------------------------

def test_rootless_bundle_runs_with_runc(user, runnable):
    bundle = user.work / "web"
    user.imgpull(["pull", "--bundle", bundle, runnable.ref],
                 env=user.env(XDG_DATA_HOME=str(user.home / "bundle-data")))
    config = json.loads((bundle / "config.json").read_text())
    subuid = _subordinate_range("/etc/subuid", user.name)
    subgid = _subordinate_range("/etc/subgid", user.name)
    linux = config["linux"]
    assert linux["uidMappings"] == [{"containerID": 0, "hostID": user.uid, "size": 1},
                                    {"containerID": 1, "hostID": subuid[0], "size": subuid[1]}]
    assert linux["gidMappings"] == [{"containerID": 0, "hostID": user.gid, "size": 1},
                                    {"containerID": 1, "hostID": subgid[0], "size": subgid[1]}]
    assert "resources" not in linux
    assert [ns["type"] for ns in linux["namespaces"]] == ["pid", "ipc", "uts", "mount", "user"]
    assert config["process"]["user"] == {"uid": 1, "gid": 1}
    mounts = {m["destination"]: m for m in config["mounts"]}
    assert mounts["/sys"]["type"] == "none" and "rbind" in mounts["/sys"]["options"]

    proc = user.run([RUNC, "--root", user.work / "runc-state", "run", "imgpull-rootless"], cwd=bundle)
    assert proc.returncode == 0, proc.stderr
    # The supplementary group runc leaves a rootless process is the user's own, root inside.
    assert proc.stdout.strip() == bundle_images.expected_line("web", "1 0")


def test_unmapped_image_user_is_warned_about(user, runnable):
    # No newuidmap on $PATH: the namespace maps the user alone, and the image's user
    # (daemon, uid 1) is not in it.
    bundle = user.work / "unmapped"
    env = user.env(PATH="/nonexistent", XDG_DATA_HOME=str(user.home / "bundle-data"))
    proc = user.imgpull(["pull", "--bundle", bundle, runnable.ref], env=env)
    config = json.loads((bundle / "config.json").read_text())
    assert config["linux"]["uidMappings"] == [{"containerID": 0, "hostID": user.uid, "size": 1}]
    warning = [w for w in warnings_in(proc.stderr) if "user namespace" in w]
    assert warning == ["Warning: the image runs as uid 1 and gid 1, which the rootless user namespace does "
                       "not map: runc will not start it (subordinate ids in /etc/subuid and /etc/subgid and "
                       "newuidmap/newgidmap, Debian's uidmap, let it map them)"], proc.stderr


# --- login ---------------------------------------------------------------------------

def test_login_and_pull_as_the_user(user, registry_basic):
    proc = user.imgpull(["login", "-u", harness.USER, "--password-stdin", registry_basic.host],
                        input=harness.PASSWORD)
    assert proc.stdout.strip() == "Login Succeeded"
    config = user.home / ".docker" / "config.json"
    st = config.stat()
    assert (st.st_uid, st.st_mode & 0o777) == (user.uid, 0o600)
    assert registry_basic.host in json.loads(config.read_text())["auths"]
    user.imgpull(["pull", f"{registry_basic.host}/single:latest"])
    user.imgpull(["logout", registry_basic.host])
    assert registry_basic.host not in json.loads(config.read_text()).get("auths", {})
