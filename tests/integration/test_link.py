"""imgpull over an emulated network link (link/emulator.py) in front of the real
registry: what goes over the wire, never how fast."""
import json
import re

import imgpull_cli as cli

LINK = "20ms,20MB/s,100MB/s"


def test_every_blob_byte_crosses_the_link_once(registry_plain, link_factory, tmp_path):
    link = link_factory(registry_plain, LINK)
    root = tmp_path / "store"
    cli.run(["pull", f"{link.host}/multi:latest"], root, check=True)

    _, _, _, body = registry_plain.get_manifest("multi", "latest")
    manifest = json.loads(body)
    blobs = {d["digest"]: d["size"] for d in [manifest["config"], *manifest["layers"]]}
    assert cli.blobs(root) >= {d.split(":")[1] for d in blobs}
    for digest, size in blobs.items():
        gets = link.requests("GET", re.escape(digest))
        assert gets and all(g.complete and g.status in (200, 206) for g in gets), gets
        assert sum(g.bytes_sent for g in gets) == size, gets
        if len({g.conn for g in gets}) > 1:  # shared between connections: bounded ranges only
            assert not any(g.range is None or g.range.rstrip().endswith("-") for g in gets), gets
