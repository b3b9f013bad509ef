#!/usr/bin/python3
"""A root filesystem as a sorted manifest: one line per entry, for comparing
two extractions of the same image entry for entry.

    python3 rootfs_manifest.py DIR              print DIR's manifest
    python3 rootfs_manifest.py --mtime DIR      ... with modification times
    python3 rootfs_manifest.py --diff A B       A and B are directories or
                                                saved manifests; prints the
                                                differences, exit status 1 if any

    from tools import rootfs_manifest as rm     (tests/ on sys.path)
    m = rm.manifest("/tmp/rootfs")              {path: Entry}
    print(rm.format_manifest(m))
    assert not rm.diff(dir_a, dir_b)            list of readable lines

Line format (paths and link targets are written with every byte outside
printable ASCII, space and backslash as a 3-digit octal escape, ``\\040`` for
a space, as mtree does; so a line is split on spaces)::

    PATH type=TYPE mode=MODE uid=UID gid=GID [KEY=VALUE ...]

PATH     "/" for the root directory itself, "/etc/passwd" below it.
type     file, dir, symlink, char, block, fifo, socket.
mode     4 octal digits: permission bits including setuid (4000), setgid
         (2000) and sticky (1000); the file type is in ``type``.
uid gid  numeric owner.
size     files only (a directory's size depends on the file system, a
         symlink's is its target's length).
sha256   files only: of the content.
target   symlinks only: the link text as stored (never followed).
dev      char and block devices: MAJOR,MINOR.
hardlink files (and other non-directories) whose inode has more than one
         name *inside the tree*: the group's id, which is the first path of
         the group in sort order, so two trees with the same link structure
         print the same ids. Every member carries it, the first one too. A
         name linked to something outside the tree (nlink > names inside)
         is not a group. (The brief's "hardlink-group" type is this key: a
         hard link is a second name of a file, not another kind of entry.)
xattr.NAME  one key per extended attribute, sorted by name, value in hex
         (``xattr.security.capability=0100000200200000...``). Read with
         lgetxattr, so symlinks' own attributes, never their targets'.
mtime    only with ``--mtime`` / ``mtime=True``: seconds since the epoch,
         with ``.NNNNNNNNN`` when there are nanoseconds.

Entries are sorted by the raw bytes of their path. The walk never follows
symlinks and does not descend into other mounts below the root (a mount
point is listed, marked ``mountpoint=yes``, and its contents are not).

What is left out, and why:
  * mtime by default. What was measured (umoci 0.4.7, GNU tar 1.34, the
    fixture images and a Debian minbase image): every file's, symlink's
    and device's mtime is the one in its tar header with all three
    extractors, and umoci and ``tar -x`` agree on every directory as well
    (umoci puts a parent directory's times back after each child it
    creates or whites out; tar sets directory times at the end). What
    differs is directories, and only where the OCI spec says nothing:
      - a directory that a *later* layer changes without carrying the
        directory's own entry (a new child, a whiteout): umoci keeps the
        time the earlier layer gave it, applying layers with ``tar -x``
        (and deleting whiteouts by hand) leaves the time of the change,
        and so does imgpull;
      - the root directory: umoci and tar give it the mtime of the
        layer's ``./`` entry; imgpull (so far) leaves it at the time of
        the unpack.
    So directory mtimes say how a tool extracted, not what the image
    holds. ``mtime="nondir"`` (``--mtime-nondir``) compares the times of
    everything but directories, which every extractor must get right;
    ``mtime=True`` (``--mtime``) compares all of them.
  * atime, ctime, inode numbers, st_nlink, st_dev, block counts: properties
    of the extraction, not of the image (hard links are covered by the
    ``hardlink`` key instead).
  * xattrs listed in SKIPPED_XATTRS below (with the reason). Skipped
    attributes are not dropped silently: ``manifest()`` counts them in
    ``Manifest.skipped`` and the command line prints a note on stderr.
    Pass ``skip_xattrs=()`` to compare everything.
"""

from __future__ import annotations

import argparse
import collections
import errno
import hashlib
import os
import stat
import sys

SKIPPED_XATTRS = {
    "security.selinux":
        "the label SELinux (when enabled) gives every new file from the host's policy: it "
        "tells where the tree was extracted, not what the image holds",
}

FIELD_ORDER = ("type", "mode", "uid", "gid", "size", "sha256", "target", "dev", "hardlink",
               "mountpoint", "mtime")  # then xattr.* sorted

_TYPES = (
    (stat.S_ISREG, "file"), (stat.S_ISDIR, "dir"), (stat.S_ISLNK, "symlink"),
    (stat.S_ISCHR, "char"), (stat.S_ISBLK, "block"), (stat.S_ISFIFO, "fifo"),
    (stat.S_ISSOCK, "socket"),
)


def escape(b: bytes | str) -> str:
    """Bytes outside printable ASCII, space and backslash as \\NNN (octal)."""
    if isinstance(b, str):
        b = os.fsencode(b)
    return "".join(chr(c) if 0x21 <= c <= 0x7E and c != 0x5C else f"\\{c:03o}" for c in b)


def unescape(s: str) -> bytes:
    out = bytearray()
    i = 0
    while i < len(s):
        if s[i] == "\\" and i + 4 <= len(s) and all(c in "01234567" for c in s[i + 1:i + 4]):
            out.append(int(s[i + 1:i + 4], 8))
            i += 4
        else:
            out += s[i].encode()
            i += 1
    return bytes(out)


Entry = dict  # {"type": "file", "mode": "0644", ...} -- values are the printed strings


class Manifest(dict):
    """{path (escaped str, "/..."): Entry}, iterated in sort order by format_manifest().
    .skipped: Counter {xattr name: number of entries it was skipped on}."""

    def __init__(self, *a, **kw):
        super().__init__(*a, **kw)
        self.skipped = collections.Counter()
        self.root = None


def _file_type(mode: int) -> str:
    for test, name in _TYPES:
        if test(mode):
            return name
    return f"unknown({stat.S_IFMT(mode):o})"


def _sha256(path: bytes) -> str:
    h = hashlib.sha256()
    with open(path, "rb", buffering=0) as f:
        while True:
            b = f.read(1 << 20)
            if not b:
                break
            h.update(b)
    return h.hexdigest()


def _xattrs(path: bytes, skip, skipped: collections.Counter) -> dict:
    try:
        names = os.listxattr(path, follow_symlinks=False)
    except OSError as e:
        if e.errno in (errno.ENOTSUP, errno.EOPNOTSUPP):
            return {}
        raise
    out = {}
    for name in sorted(names):
        if name in skip:
            skipped[name] += 1
            continue
        try:
            value = os.getxattr(path, name, follow_symlinks=False)
        except OSError as e:
            if e.errno == errno.ENODATA:  # removed meanwhile
                continue
            raise
        out["xattr." + name] = value.hex()
    return out


def _mtime(st) -> str:
    sec, ns = divmod(st.st_mtime_ns, 1_000_000_000)
    return f"{sec}.{ns:09d}" if ns else str(sec)


def manifest(root, mtime: bool | str = False, skip_xattrs=tuple(SKIPPED_XATTRS),
             include_root: bool = True) -> Manifest:
    """Walk ROOT (never following symlinks) and describe every entry.

    mtime: False (default), True (every entry) or "nondir" (all but directories).
    skip_xattrs: attribute names to leave out (counted in .skipped).
    include_root: describe ROOT itself as "/" (its mode and owner are part of
    what an extractor is responsible for when the image has a "./" entry)."""
    root_b = os.fsencode(os.fspath(root))
    skip = frozenset(skip_xattrs)
    m = Manifest()
    m.root = os.fsdecode(root_b)
    root_st = os.lstat(root_b)
    if not stat.S_ISDIR(root_st.st_mode):
        raise NotADirectoryError(m.root)
    inodes = collections.defaultdict(list)  # (dev, ino) -> [path]

    def describe(full: bytes, rel: bytes, st) -> Entry:
        kind = _file_type(st.st_mode)
        e = {"type": kind, "mode": f"{stat.S_IMODE(st.st_mode):04o}",
             "uid": str(st.st_uid), "gid": str(st.st_gid)}
        if kind == "file":
            e["size"] = str(st.st_size)
            e["sha256"] = _sha256(full)
        elif kind == "symlink":
            e["target"] = escape(os.readlink(full))
        elif kind in ("char", "block"):
            e["dev"] = f"{os.major(st.st_rdev)},{os.minor(st.st_rdev)}"
        if kind != "dir" and st.st_nlink > 1:
            inodes[(st.st_dev, st.st_ino)].append(rel)
        if mtime is True or (mtime == "nondir" and kind != "dir"):
            e["mtime"] = _mtime(st)
        e.update(_xattrs(full, skip, m.skipped))
        return e

    if include_root:
        m["/"] = describe(root_b, b"/", root_st)

    stack = [(root_b, b"")]
    while stack:
        d, rel_d = stack.pop()
        with os.scandir(d) as it:
            children = sorted(it, key=lambda de: de.name)
        for de in children:
            full = os.path.join(d, de.name)
            rel = rel_d + b"/" + de.name
            st = os.lstat(full)
            e = describe(full, rel, st)
            if stat.S_ISDIR(st.st_mode):
                if st.st_dev != root_st.st_dev:
                    e["mountpoint"] = "yes"
                else:
                    stack.append((full, rel))
            m[escape(rel)] = e

    for paths in inodes.values():
        if len(paths) > 1:
            group = escape(min(paths))
            for p in paths:
                m[escape(p)]["hardlink"] = group
    return m


def _order(entry: Entry):
    known = [k for k in FIELD_ORDER if k in entry]
    return known + sorted(k for k in entry if k not in FIELD_ORDER)


def format_entry(path: str, entry: Entry) -> str:
    return " ".join([path] + [f"{k}={entry[k]}" for k in _order(entry)])


def _sort_key(path: str) -> bytes:
    return unescape(path)


def format_manifest(m: dict) -> str:
    """The manifest as text, one line per entry, sorted by path bytes."""
    return "".join(format_entry(p, m[p]) + "\n" for p in sorted(m, key=_sort_key))


def parse(text: str) -> Manifest:
    """Read back what format_manifest() wrote (lines starting with # are ignored)."""
    m = Manifest()
    for line in text.splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        path, *fields = line.split(" ")
        m[path] = dict(f.split("=", 1) for f in fields)
    return m


def load(source, **kw) -> Manifest:
    """A manifest from a directory (walked) or a file (parsed), or a mapping as is."""
    if isinstance(source, dict):
        return source
    if os.path.isdir(source):
        return manifest(source, **kw)
    with open(source) as f:
        return parse(f.read())


def diff(a, b, **kw) -> list[str]:
    """Differences between two trees (directories, saved manifests or
    manifest dicts) as readable lines; [] when they are equal entry for entry.

        - PATH <line>                   only in a
        + PATH <line>                   only in b
        ~ PATH: key a-value -> b-value  (key missing on one side shown as <none>)
    kw go to manifest() for directories (mtime=..., skip_xattrs=...)."""
    ma, mb = load(a, **kw), load(b, **kw)
    out = []
    for path in sorted(set(ma) | set(mb), key=_sort_key):
        ea, eb = ma.get(path), mb.get(path)
        if eb is None:
            out.append(f"- {format_entry(path, ea)}")
        elif ea is None:
            out.append(f"+ {format_entry(path, eb)}")
        elif ea != eb:
            keys = [k for k in _order({**ea, **eb}) if ea.get(k) != eb.get(k)]
            changes = ", ".join(f"{k} {ea.get(k, '<none>')} -> {eb.get(k, '<none>')}" for k in keys)
            out.append(f"~ {path}: {changes}")
    return out


def diff_report(a, b, limit: int = 200, names=(None, None), **kw) -> str:
    """diff() as one message for an assertion: a header naming both sides
    (`names`, else their paths) and at most `limit` lines."""
    lines = diff(a, b, **kw)
    if not lines:
        return ""
    na = names[0] or (a if isinstance(a, (str, os.PathLike)) else getattr(a, "root", "a"))
    nb = names[1] or (b if isinstance(b, (str, os.PathLike)) else getattr(b, "root", "b"))
    head = f"{len(lines)} differing entries between\n  - {na}\n  + {nb}\n"
    more = f"\n... and {len(lines) - limit} more" if len(lines) > limit else ""
    return head + "\n".join(lines[:limit]) + more


def _note_skipped(m):
    if getattr(m, "skipped", None):
        parts = ", ".join(f"{n} on {c} entries" for n, c in sorted(m.skipped.items()))
        print(f"rootfs_manifest: skipped xattrs: {parts} (see SKIPPED_XATTRS)", file=sys.stderr)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--mtime", action="store_true", help="also print modification times")
    ap.add_argument("--mtime-nondir", action="store_true",
                    help="also print modification times, except of directories")
    ap.add_argument("--all-xattrs", action="store_true",
                    help="skip no extended attribute (default skips: " + ", ".join(SKIPPED_XATTRS) + ")")
    ap.add_argument("--no-root", action="store_true", help="leave out the entry for DIR itself")
    ap.add_argument("--diff", action="store_true", help="compare two trees or saved manifests")
    ap.add_argument("paths", nargs="+", metavar="DIR")
    args = ap.parse_args(argv)
    kw = {"mtime": True if args.mtime else "nondir" if args.mtime_nondir else False,
          "skip_xattrs": () if args.all_xattrs else tuple(SKIPPED_XATTRS),
          "include_root": not args.no_root}
    if args.diff:
        if len(args.paths) != 2:
            ap.error("--diff takes two paths")
        ma, mb = (load(p, **kw) for p in args.paths)
        _note_skipped(ma)
        _note_skipped(mb)
        lines = diff(ma, mb)
        for line in lines:
            print(line)
        return 1 if lines else 0
    for p in args.paths:
        m = manifest(p, **kw)
        _note_skipped(m)
        sys.stdout.write(format_manifest(m))
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BrokenPipeError:
        sys.exit(141)
