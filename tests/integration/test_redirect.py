"""Blob redirects to another origin, as Docker Hub and S3-backed registries send them.

The real registry does the redirecting: distribution's `redirect` storage
middleware answers blob GETs with a 307 to `baseurl` + the blob's storage path.
A second listener on another port (another origin, standing in for a CDN)
serves the registry's storage directory and records whether Authorization
arrived.
"""
import base64
import functools
import http.server
import threading
from pathlib import Path

import pytest

import imgpull_cli as cli
from registry import harness


class RecordingFileServer:
    def __init__(self, directory):
        self.seen = []  # (method, path, Authorization header or None)
        seen = self.seen

        class Handler(http.server.SimpleHTTPRequestHandler):
            def _record(self):
                seen.append((self.command, self.path, self.headers.get("Authorization")))

            def do_GET(self):
                self._record()
                super().do_GET()

            def do_HEAD(self):
                self._record()
                super().do_HEAD()

            def log_message(self, *args):
                pass

        handler = functools.partial(Handler, directory=str(directory))
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def redirecting_registry(tmp_path, fixture_cache):
    storage = tmp_path / "registry" / "storage"
    storage.mkdir(parents=True)
    with RecordingFileServer(storage) as cdn:
        reg = harness.Registry("basic", str(tmp_path / "registry"), extra_config={
            "middleware": {"storage": [{"name": "redirect",
                                        "options": {"baseurl": f"http://127.0.0.1:{cdn.port}/"}}]}})
        with reg:
            from registry import fixtures
            fixtures.push_standard(reg, fixture_cache)
            cdn.seen.clear()
            yield reg, cdn


def test_redirected_blobs_carry_no_authorization(redirecting_registry, tmp_path):
    reg, cdn = redirecting_registry
    auth = base64.b64encode(f"{harness.USER}:{harness.PASSWORD}".encode()).decode()
    env = cli.docker_config(tmp_path, {reg.host: {"auth": auth}})
    proc = cli.run(["--debug", "pull", f"{reg.host}/multi:latest"], tmp_path / "store", env=env)
    assert proc.returncode == 0, proc.stderr
    blob_fetches = [s for s in cdn.seen if s[0] == "GET"]
    # Every blob (config and layers) came from the other origin, and none of
    # those requests carried the registry's credentials.
    assert len(blob_fetches) >= 4, cdn.seen
    assert all(authz is None for _, _, authz in blob_fetches), cdn.seen
    assert f"http://127.0.0.1:{cdn.port}/" in proc.stderr  # each hop is logged
    # And the registry itself did require them.
    assert any(r.status == 401 for r in reg.requests())
