"""libimgpull as a library: installed with `cmake --install`, found with
find_package(imgpull) and with pkg-config, the example program built both
ways against the installed copy and run against the real test registry. Its
rootfs must equal what the imgpull tool makes of the same image."""
import os
import shutil
import subprocess
from pathlib import Path

import pytest

import imgpull_cli as cli
from tools import rootfs_manifest as rm

SOURCE = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def prefix(tmp_path_factory):
    build = os.environ.get("IMGPULL_BUILD_DIR")
    if not build:
        pytest.skip("IMGPULL_BUILD_DIR must name the build directory (ctest sets it)")
    prefix = tmp_path_factory.mktemp("prefix")
    subprocess.run(["cmake", "--install", build, "--prefix", str(prefix)], check=True, capture_output=True)
    return prefix


def test_install_has_headers_library_package_and_pkgconfig(prefix):
    headers = sorted(p.name for p in (prefix / "include" / "imgpull").iterdir())
    assert {"client.h", "imgpull.h", "store.h", "images.h", "export.h", "reference.h"} <= set(headers)
    # Only the public API is installed: no HTTP, auth or tar internals.
    assert not {"http.h", "auth.h", "registry.h", "pull.h", "rootfs.h"} & set(headers)
    assert (prefix / "lib" / "libimgpull.a").is_file()
    assert (prefix / "lib" / "cmake" / "imgpull" / "imgpullConfig.cmake").is_file()
    assert (prefix / "bin" / "imgpull").is_file()
    # Every public header compiles on its own with nothing but the install.
    for header in headers:
        subprocess.run(["g++", "-std=c++20", "-fsyntax-only", "-I", str(prefix / "include"), "-x", "c++", "-"],
                       input=f"#include <imgpull/{header}>\n", text=True, check=True)


def build_with_cmake(prefix, build_dir):
    subprocess.run(["cmake", "-S", str(SOURCE / "examples"), "-B", str(build_dir),
                    f"-DCMAKE_PREFIX_PATH={prefix}"], check=True, capture_output=True)
    subprocess.run(["cmake", "--build", str(build_dir)], check=True, capture_output=True)
    return build_dir / "pull_and_unpack"


def build_with_pkg_config(prefix, build_dir):
    env = dict(os.environ, PKG_CONFIG_PATH=str(prefix / "lib" / "pkgconfig"))
    flags = subprocess.run(["pkg-config", "--cflags", "--libs", "imgpull"], env=env, check=True,
                           capture_output=True, text=True).stdout.split()
    assert "-limgpull" in flags
    assert any(Path(f[2:]).resolve() == (prefix / "include").resolve() for f in flags if f.startswith("-I"))
    build_dir.mkdir()
    out = build_dir / "pull_and_unpack"
    subprocess.run(["g++", "-std=c++20", str(SOURCE / "examples" / "pull_and_unpack.cpp"), "-o", str(out), *flags],
                   check=True, capture_output=True)
    return out


@pytest.mark.parametrize("how", ["cmake", "pkg-config"])
def test_example_pulls_and_unpacks_like_the_tool(how, prefix, registry_plain, tmp_path):
    builder = build_with_cmake if how == "cmake" else build_with_pkg_config
    example = builder(prefix, tmp_path / "build")
    ref = f"{registry_plain.host}/multi:latest"
    store = tmp_path / "store"
    env = dict(os.environ, DOCKER_CONFIG=str(tmp_path / "no-docker-config"))
    proc = subprocess.run([str(example), ref, str(tmp_path / "rootfs"), "--root", str(store)],
                          capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[-1].startswith(f"pulled {ref} (3 layers, ")
    assert sum(line.endswith(": Pull complete") for line in lines) == 3
    # The tool, on the store the library filled, makes the same tree.
    cli.run(["unpack", ref, str(tmp_path / "by-tool")], store, check=True)
    diff = rm.diff(rm.manifest(str(tmp_path / "rootfs")), rm.manifest(str(tmp_path / "by-tool")))
    assert diff == []
    assert cli.run(["verify"], store).returncode == 0

    failed = subprocess.run([str(example), f"{registry_plain.host}/nosuch:1", str(tmp_path / "r2"), "--root",
                             str(store)], capture_output=True, text=True, env=env, timeout=60)
    assert failed.returncode == 1
    assert failed.stderr.startswith(f"error: pulling {registry_plain.host}/nosuch:1")
    shutil.rmtree(tmp_path / "build")
