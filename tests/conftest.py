"""pytest set-up shared by the imgpull tests.

Puts tests/ on sys.path (so tests import ``registry.harness`` and
``registry.fixtures``) and provides fixtures:

fixture_cache   (session)  {"single"|"multi"|"index": registry.fixtures.Fixture},
                           built once into $IMGPULL_FIXTURE_CACHE
registry_plain, registry_basic, registry_token, registry_tls
                (module)   a started registry.harness.Registry with the standard
                           repositories pushed: single:latest, multi:latest,
                           index:latest (OCI index, amd64+arm64), v2s2:latest
                           (single as Docker schema 2), and for token also
                           public/single:latest. Extra attributes: .fixtures
                           (the dict above), .pushed ({"repo:tag": digest}),
                           .setup_seconds. requests() starts empty for each
                           module; call clear_requests() in a test to scope it.
registry_factory (function) make_registry(flavour, push=True, **Registry kwargs)
                           -> a fresh started Registry, stopped after the test
                           (e.g. make_registry("token", token_expires_in=2)).
big_image       (module)   a registry.fixtures.BigImage pushed into registry_plain
                           with fixtures.big_blob: repository big:latest, one
                           uncompressed tar layer holding /random.bin of
                           $IMGPULL_BIG_BLOB_SIZE bytes (default 1 GiB, about 10 s
                           to make and upload); str() of it is "big:latest".
link_factory    (function) make_link(upstream, link="50ms,20MB/s,160MB/s", **LinkProxy
                           kwargs) -> a started link.emulator.LinkProxy in front of
                           upstream (a Registry or an http:// URL): clients reach
                           it at .host over the emulated link; its requests(),
                           connections() and peak_connections() show what went
                           over the wire; stopped after the test, which fails if
                           the emulator itself hit an error.
imgpull_bin     (session)  path from $IMGPULL_BIN; the test is skipped when it
                           is unset or not an executable file.
debian_image    (module)   a registry.fixtures.DebianImage (a real Debian bookworm
                           minbase rootfs, one layer) pushed into registry_plain
                           as debian:minbase (gzip) and debian:minbase-zstd
                           (zstd, same diff_id); .ref, .zstd_ref, .layout,
                           .zstd_layout, .info, .pushed. Built with mmdebstrap on
                           first use (~25 s, needs deb.debian.org), then cached
                           under $IMGPULL_FIXTURE_CACHE/debian-v<N>/. Skipped when
                           mmdebstrap is missing, except under CI=true, where
                           that fails the test (a missing install step must not
                           pass as a skip).

Temporary registry directories are removed afterwards unless
IMGPULL_KEEP_TMP=1. The time each flavour took to start and push is printed
in the terminal summary.
"""

import os
import shutil
import sys
import tempfile
import time

import pytest

TESTS_DIR = os.path.dirname(os.path.abspath(__file__))
if TESTS_DIR not in sys.path:
    sys.path.insert(0, TESTS_DIR)

from link.emulator import LinkProxy  # noqa: E402
from registry import fixtures as _fixtures  # noqa: E402
from registry.harness import Registry  # noqa: E402

_SETUP_TIMES = []  # (flavour, seconds)


def _keep_tmp():
    return os.environ.get("IMGPULL_KEEP_TMP") == "1"


@pytest.fixture(scope="session")
def fixture_cache():
    return _fixtures.build_all()


def _start(flavour, fixture_set, push=True, **kwargs):
    tmp = tempfile.mkdtemp(prefix=f"imgpull-registry-{flavour}-")
    t0 = time.monotonic()
    reg = Registry(flavour, tmp, **kwargs)
    try:
        reg.start()
        reg.fixtures = fixture_set
        reg.pushed = _fixtures.push_standard(reg, fixture_set) if push else {}
        reg.clear_requests()
        if reg.token_server is not None:
            reg.token_server.clear_requests()
    except BaseException:
        reg.stop()
        if not _keep_tmp():
            shutil.rmtree(tmp, ignore_errors=True)
        raise
    reg.setup_seconds = time.monotonic() - t0
    return reg, tmp


def _finish(reg, tmp):
    reg.stop()
    if not _keep_tmp():
        shutil.rmtree(tmp, ignore_errors=True)


def _registry_fixture(flavour):
    @pytest.fixture(scope="module", name=f"registry_{flavour}")
    def _fixture(fixture_cache):
        reg, tmp = _start(flavour, fixture_cache)
        _SETUP_TIMES.append((flavour, reg.setup_seconds))
        try:
            yield reg
        finally:
            _finish(reg, tmp)
    return _fixture


registry_plain = _registry_fixture("plain")
registry_basic = _registry_fixture("basic")
registry_token = _registry_fixture("token")
registry_tls = _registry_fixture("tls")


@pytest.fixture
def registry_factory(fixture_cache):
    started = []

    def make_registry(flavour, push=True, **kwargs):
        reg, tmp = _start(flavour, fixture_cache, push=push, **kwargs)
        started.append((reg, tmp))
        return reg

    try:
        yield make_registry
    finally:
        for reg, tmp in reversed(started):
            _finish(reg, tmp)


@pytest.fixture
def link_factory():
    started = []

    def make_link(upstream, link="50ms,20MB/s,160MB/s", **kwargs):
        url = upstream if isinstance(upstream, str) else upstream.url
        proxy = LinkProxy(url, link, **kwargs).start()
        started.append(proxy)
        return proxy

    yield make_link
    for proxy in started:
        proxy.stop()
    assert [e for p in started for e in p.errors] == [], "the link emulator failed"


@pytest.fixture(scope="module")
def big_image(registry_plain):
    size = int(os.environ.get("IMGPULL_BIG_BLOB_SIZE", str(1 << 30)))
    t0 = time.monotonic()
    big = _fixtures.big_blob(registry_plain, "big", size)
    _SETUP_TIMES.append((f"big_image {size} B", time.monotonic() - t0))
    registry_plain.clear_requests()
    return big


@pytest.fixture(scope="module")
def debian_image(registry_plain):
    reason = _fixtures.debian_unavailable()
    if reason:
        if os.environ.get("CI"):
            pytest.fail(f"Debian fixture cannot be built: {reason}", pytrace=False)
        pytest.skip(f"Debian fixture cannot be built: {reason}")
    deb = _fixtures.debian()
    _SETUP_TIMES.append((f"debian_image {'cache hit' if deb.cached else 'built (cold)'}",
                         deb.get_seconds))
    t0 = time.monotonic()
    _fixtures.push_debian(registry_plain, deb)
    _SETUP_TIMES.append(("debian_image push", time.monotonic() - t0))
    registry_plain.clear_requests()
    return deb


@pytest.fixture(scope="session")
def imgpull_bin():
    path = os.environ.get("IMGPULL_BIN")
    if not path:
        pytest.skip("IMGPULL_BIN is not set (point it at the built imgpull binary)")
    if not (os.path.isfile(path) and os.access(path, os.X_OK)):
        pytest.skip(f"IMGPULL_BIN={path} is not an executable file")
    return os.path.abspath(path)


def pytest_terminal_summary(terminalreporter):
    if _SETUP_TIMES:
        parts = ", ".join(f"{f} {s:.2f}s" for f, s in _SETUP_TIMES)
        terminalreporter.write_line(f"registry start+push times: {parts}")
