"""An image to run: the Debian minbase fixture (registry.fixtures.debian) with
one more layer and a config saying what to run, made with umoci and GNU tar.

Layer 2 (GNU tar --numeric-owner of a staged tree, added with
``umoci raw add-layer``; under /opt, which Debian leaves empty and without
xattrs, so re-emitting its entry changes nothing):
  /etc/group                  Debian's plus ``bundlers:x:4242:daemon`` (so
                              `daemon` has a supplementary group)
  /opt/bundle/                0755 0:0
  /opt/bundle/www-owned       0644 33:33
  /opt/bundle/read-only       0444 33:33   (no owner write: a rootless record
                                             needs it made writable for a moment)
  /opt/bundle/locked/         0555 33:33, holding inside (0644 1:1)
  /opt/bundle/suid            04755 1:0
  /opt/bundle/link -> www-owned   symlink, 33:33
  /opt/bundle/fifo            fifo 0640 33:33
  /opt/bundle/tty9            char 4,9 0620 0:5

Config (``umoci config``), tag ``runnable``:
  Entrypoint ["/bin/sh", "-c"], Cmd [SCRIPT] (prints the line EXPECTED
  describes), User daemon, WorkingDir /opt/bundle, Env GREETING=hello,
  label org.example.bundle=yes.
Tag ``nouser``: the same with User nosuchuser (not in /etc/passwd).

Built into a fresh directory per call (the Debian layout's blobs hard-linked,
so it costs a few MB and a second or two); the caller removes it.
"""
import os
import shutil
import subprocess
import tarfile

from registry import fixtures as fx

TAG = "runnable"
NOUSER_TAG = "nouser"
SCRIPT = ('echo "bundle says $GREETING: uid=$(id -u) gid=$(id -g) groups=$(id -G) cwd=$(pwd) '
          'home=$HOME host=$(cat /proc/sys/kernel/hostname)"')
LABEL = ("org.example.bundle", "yes")
# daemon in Debian's passwd: uid 1, gid 1, home /usr/sbin; bundlers lists it.
DAEMON = {"uid": 1, "gid": 1, "home": "/usr/sbin", "groups": [4242]}


def expected_line(host: str, groups: str) -> str:
    return (f"bundle says hello: uid=1 gid=1 groups={groups} cwd=/opt/bundle home=/usr/sbin "
            f"host={host}")


def _debian_group(layout: str, tag: str) -> bytes:
    manifest = fx._read_json(layout, fx._index_entry(layout, tag)["digest"])
    (layer,) = manifest["layers"]
    with tarfile.open(fx._blob(layout, layer["digest"]), "r:gz") as t:
        for name in ("./etc/group", "etc/group"):
            try:
                return t.extractfile(name).read()
            except KeyError:
                continue
    raise AssertionError("the Debian fixture has no /etc/group")


def _stage_layer(stage: str, group: bytes):
    os.makedirs(f"{stage}/etc")
    with open(f"{stage}/etc/group", "wb") as f:
        f.write(group + b"bundlers:x:4242:daemon\n")
    os.chmod(f"{stage}/etc/group", 0o644)
    b = f"{stage}/opt/bundle"
    os.makedirs(f"{b}/locked")

    def file(path, data, mode, uid, gid):
        with open(path, "w") as f:
            f.write(data)
        os.chown(path, uid, gid)
        os.chmod(path, mode)

    file(f"{b}/www-owned", "www\n", 0o644, 33, 33)
    file(f"{b}/read-only", "ro\n", 0o444, 33, 33)
    file(f"{b}/locked/inside", "in\n", 0o644, 1, 1)
    file(f"{b}/suid", "#!/bin/sh\n", 0o4755, 1, 0)
    os.symlink("www-owned", f"{b}/link")
    os.lchown(f"{b}/link", 33, 33)
    os.mkfifo(f"{b}/fifo", 0o640)
    os.chown(f"{b}/fifo", 33, 33)
    os.mknod(f"{b}/tty9", 0o620 | 0o020000, os.makedev(4, 9))
    os.chown(f"{b}/tty9", 0, 5)
    os.chmod(f"{b}/tty9", 0o620)
    os.chown(f"{b}/locked", 33, 33)
    os.chmod(f"{b}/locked", 0o555)


def build(debian, work: str) -> str:
    """Builds the image's OCI layout under `work` (needs root: the staged
    layer has owners and a device node); returns the layout path."""
    layout = os.path.join(work, "layout")
    # Blobs are immutable: hard links. index.json is rewritten by umoci: a copy, so
    # the cached fixture is never touched.
    shutil.copytree(debian.layout, layout,
                    copy_function=lambda src, dst: (os.link if "/blobs/" in src else shutil.copy2)(src, dst))
    stage = os.path.join(work, "stage")
    _stage_layer(stage, _debian_group(debian.layout, debian.tag))
    layer = os.path.join(work, "layer2.tar")
    subprocess.run([fx.TAR, "--sort=name", "--numeric-owner", "-C", stage, "-cf", layer, "etc", "opt"],
                   check=True)
    fx._umoci("raw", "add-layer", "--tag", TAG, "--history.comment", "bundle test files",
              "--image", f"{layout}:{debian.tag}", layer)
    fx._umoci("config", "--image", f"{layout}:{TAG}",
              "--config.entrypoint", "/bin/sh", "--config.entrypoint", "-c", "--config.cmd", SCRIPT,
              "--config.user", "daemon", "--config.workingdir", "/opt/bundle",
              "--config.env", "GREETING=hello", "--config.label", "=".join(LABEL))
    fx._umoci("config", "--image", f"{layout}:{TAG}", "--tag", NOUSER_TAG, "--config.user", "nosuchuser")
    return layout
