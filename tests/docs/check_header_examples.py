#!/usr/bin/env python3
"""Compiles the usage examples in the headers' opening comments.

Every header of the library opens with a comment that says what it is for and
shows how it is used. The lines of that comment indented by exactly three
spaces ("//   code", a block starting with such a line and running while the
lines keep that indentation or more) are the example; tables and grammars in
the same comment are indented by two. This test pastes each header's example
blocks, in order, into one function and compiles the lot (g++ -fsyntax-only
with the flags of the unit tests, from compile_commands.json), so an example
that names a function, type or member that is not there fails here, pointing
at the header line (#line).

The variables an example uses without declaring them are the function's
parameters, and the functions it leaves to the reader (consume, parse...) are
declared before it: both in EXAMPLES below, per header. A header whose example
needs nothing there needs no entry.

    python3 tests/docs/check_header_examples.py --build-dir build
"""
import argparse
import json
import os
import re
import shlex
import subprocess
import sys
import tempfile

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# Which headers: the public ones and those of every folder of src/imgpull/.
HEADER_DIRS = ["include/imgpull", "src/imgpull/base", "src/imgpull/image", "src/imgpull/remote",
               "src/imgpull/store", "src/imgpull/unpack", "src/imgpull/testing"]
# pull/ is being rewritten by the lead (issue 11) and src/cli/ by another
# helper; their examples are still pseudo-code. Add them here once they compile.
NOT_YET = ["src/imgpull/pull", "src/cli"]

# Per header (path from the repository root): `params` of the example's
# function, `decls` before it (what the example leaves to the reader),
# `includes`, `using` namespaces besides imgpull, and `returns` (its type;
# imgpull::Status by default).
EXAMPLES = {
    "include/imgpull/bundle.h": dict(includes=["imgpull/client.h"], params="Client* client"),
    "include/imgpull/client.h": dict(includes=["<iostream>"], returns="int"),
    "include/imgpull/credentials.h": dict(
        includes=["imgpull/reference.h"], params="const Reference& ref",
        decls="void authenticate_as(const std::string& username, const std::string& password);"),
    "include/imgpull/digest.h": dict(params="std::string_view bytes"),
    "include/imgpull/error.h": dict(
        includes=["imgpull/manifest.h", "imgpull/reference.h"],
        params="std::string_view bytes, std::string_view content_type, const Reference& ref"),
    "include/imgpull/export.h": dict(includes=["imgpull/images.h"], params="const Store& store"),
    "include/imgpull/images.h": dict(params="Store& store"),
    "include/imgpull/manifest.h": dict(params="std::string_view bytes, std::string_view content_type"),
    "include/imgpull/reference.h": dict(includes=["<iostream>"], params="char** argv"),
    "include/imgpull/store.h": dict(params="const Digest& digest, int64_t size, const char* data, size_t n"),
    "src/imgpull/base/atomic_file.h": dict(),
    "src/imgpull/base/byte_source.h": dict(
        includes=["imgpull/store.h"], params="const Store& store, const Descriptor& layer",
        decls="void consume(const char* bytes, size_t n);"),
    "src/imgpull/base/clock.h": dict(includes=["imgpull/store.h"], params="const Descriptor& manifest"),
    "src/imgpull/base/file_io.h": dict(params="int fd"),
    "src/imgpull/base/process.h": dict(includes=["<sys/wait.h>"], decls="void parse(const std::string& json);"),
    "src/imgpull/base/remove_tree.h": dict(includes=["base/unique_fd.h"], params="const UniqueFd& etc"),
    "src/imgpull/base/sync_fs.h": dict(
        includes=["imgpull/store.h"], params="const Store& store, const std::filesystem::path& rootfs_dir"),
    "src/imgpull/base/sys_error.h": dict(
        includes=["<sys/stat.h>"], params="int dir, const char* name, int fd, const std::filesystem::path& path"),
    "src/imgpull/base/text.h": dict(),
    "src/imgpull/base/unique_fd.h": dict(includes=["<fcntl.h>", "<sys/stat.h>", "base/sys_error.h"],
                                         params="int root"),
    "src/imgpull/remote/auth.h": dict(
        params="http::Client& client, CredentialLookup lookup_credentials, const http::Response& ping, "
               "http::Request& request"),
    "src/imgpull/remote/challenge.h": dict(
        decls="void fetch_token(const std::string& realm, const std::string& service);"),
    "src/imgpull/remote/docker_json.h": dict(params="const std::string& path"),
    "src/imgpull/remote/hosts.h": dict(
        includes=["<iostream>", "imgpull/reference.h"],
        params="const std::vector<std::string>& roots, const Reference& ref"),
    "src/imgpull/remote/http.h": dict(includes=["<iostream>"]),
    "src/imgpull/remote/rate_limit.h": dict(
        params="const http::Response& response, std::optional<std::chrono::seconds> retry_after, "
               "std::string& message"),
    "src/imgpull/remote/registry.h": dict(
        params="http::Client& client, const Reference& ref, const RegistryOptions& options, "
               "const Descriptor& layer, BlobSink& sink"),
    "src/imgpull/store/file_lock.h": dict(includes=["<iostream>"]),
    "src/imgpull/testing/fake_registry.h": dict(using=["imgpull::testing"], returns="void"),
    "src/imgpull/testing/images.h": dict(using=["imgpull::testing"], returns="void"),
    "src/imgpull/testing/layers.h": dict(using=["imgpull::unpack::testing"], returns="void"),
    "src/imgpull/unpack/compression.h": dict(
        includes=["unpack/decompress.h"], using=["imgpull::unpack"],
        params="const Descriptor& layer, ByteSource& blob"),
    "src/imgpull/unpack/decompress.h": dict(using=["imgpull::unpack"], params="int fd"),
    "src/imgpull/unpack/entry_applier.h": dict(
        using=["imgpull::unpack"], params="int rootfs_fd, const ApplyOptions& options, TarReader& reader",
        decls="std::optional<imgpull::unpack::TarEntry> next_entry();"),
    "src/imgpull/unpack/entry_path.h": dict(using=["imgpull::unpack"], returns="void"),
    "src/imgpull/unpack/hashing_source.h": dict(
        using=["imgpull::unpack"], params="ByteSource& blob, const Digest& expected"),
    "src/imgpull/unpack/layer_applier.h": dict(
        includes=["<fcntl.h>", "imgpull/store.h"], using=["imgpull::unpack"],
        params="const Store& store, const ImageManifest& manifest, const ImageConfig& config"),
    "src/imgpull/unpack/metadata.h": dict(
        includes=["unpack/tar_reader.h"], using=["imgpull::unpack"],
        params="const UniqueFd& dir, const UniqueFd& fd, const TarEntry& entry, Warnings& warnings"),
    "src/imgpull/unpack/path_resolver.h": dict(includes=["<fcntl.h>"], using=["imgpull::unpack"],
                                               params="int rootfs_fd"),
    "src/imgpull/unpack/read_ahead.h": dict(
        using=["imgpull::unpack"], params="ByteSource* decompressor",
        decls="void consume(std::span<const char> bytes);"),
    "src/imgpull/unpack/rootfs.h": dict(params="const Store& store, const StoredImage& image"),
    "src/imgpull/unpack/rootless_owner.h": dict(
        includes=["unpack/tar_reader.h"], using=["imgpull::unpack"], params="const Node& node, const TarEntry& entry"),
    "src/imgpull/unpack/staged_dir.h": dict(
        includes=["imgpull/store.h"], params="const Store& store", decls="imgpull::Status fill(int dir_fd);"),
    "src/imgpull/unpack/tar_reader.h": dict(using=["imgpull::unpack"], params="ByteSource& tar_bytes, int fd"),
    "src/imgpull/unpack/warnings.h": dict(
        includes=["unpack/layer_applier.h"], using=["imgpull::unpack"], params="const ApplyOptions& options",
        returns="void"),
    "src/imgpull/unpack/whiteout.h": dict(includes=["base/unique_fd.h"], using=["imgpull::unpack"],
                                          params="const UniqueFd& etc"),
}

CODE = re.compile(r"^//   (?! )")   # a block starts at exactly three spaces
BLOCK = re.compile(r"^//   ")        # and runs while lines are indented that far


def opening_comment(path):
    """(line number, text) of the comment lines before the first other line."""
    out = []
    with open(path) as f:
        for number, line in enumerate(f, 1):
            if not line.startswith("//"):
                break
            out.append((number, line.rstrip("\n")))
    return out


def example_blocks(path):
    """The example blocks as [(first line number, [code lines])]."""
    blocks, current = [], None
    for number, line in opening_comment(path):
        if current is not None and BLOCK.match(line):
            current[1].append(line[5:])
            continue
        current = None
        if CODE.match(line):
            current = (number, [line[5:]])
            blocks.append(current)
    return blocks


def headers():
    for folder in HEADER_DIRS:
        directory = os.path.join(REPO, folder)
        if not os.path.isdir(directory):
            continue
        for name in sorted(os.listdir(directory)):
            if name.endswith(".h"):
                yield f"{folder}/{name}"


def include_line(header):
    if header.startswith("<"):
        return f"#include {header}"
    return f'#include "{header}"'


def header_include(path):
    """How code includes `path` (repository-relative): "imgpull/x.h" or "base/x.h"."""
    if path.startswith("include/"):
        return path[len("include/"):]
    return path[len("src/imgpull/"):]


def translation_unit(examples):
    """The C++ text that compiles every example, and how many there are."""
    includes, bodies = [], []
    for index, (path, blocks) in enumerate(examples):
        spec = EXAMPLES.get(path, {})
        for header in [header_include(path)] + spec.get("includes", []):
            line = include_line(header)
            if line not in includes:
                includes.append(line)
        returns = spec.get("returns", "imgpull::Status")
        usings = "".join(f"using namespace {ns};\n" for ns in ["imgpull"] + spec.get("using", []))
        code = [f"namespace example_{index} {{", usings.rstrip("\n"), spec.get("decls", ""),
                f"[[maybe_unused]] {returns} example({spec.get('params', '')}) {{"]
        for first_line, lines in blocks:
            code.append(f'#line {first_line} "{os.path.join(REPO, path)}"')
            code.extend(lines)
        code.append('#line 1 "check_header_examples.py"')
        code.append({"void": "}", "int": "  return 0;\n}"}.get(returns, "  return {};\n}"))
        code.append(f"}}  // namespace example_{index}")
        bodies.append("\n".join(code))
    return "\n".join(includes) + "\n\n" + "\n\n".join(bodies) + "\n"


def compile_command(build_dir):
    """The unit tests' compiler and flags (include paths, defines, -std)."""
    with open(os.path.join(build_dir, "compile_commands.json")) as f:
        commands = json.load(f)
    for entry in commands:
        if entry["file"].endswith("_test.cpp") and "/src/imgpull/" in entry["file"]:
            args = entry.get("arguments") or shlex.split(entry["command"])
            break
    else:
        sys.exit(f"no unit test in {build_dir}/compile_commands.json: configure with BUILD_TESTING on")
    keep, skip = [args[0]], False
    for arg in args[1:]:
        if skip:
            skip = False
            continue
        if arg in ("-o", "-MT", "-MF", "-c"):
            skip = arg != "-c"
            continue
        if arg in ("-MD", "-Werror") or arg.endswith(".cpp") or arg.startswith("-fsanitize"):
            continue
        keep.append(arg)
    return keep + ["-w", "-fsyntax-only", "-x", "c++"]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build-dir", default=os.path.join(REPO, "build"))
    ap.add_argument("--show", action="store_true", help="print the generated C++ and exit")
    args = ap.parse_args()

    examples = [(path, example_blocks(os.path.join(REPO, path))) for path in headers()]
    examples = [(path, blocks) for path, blocks in examples if blocks]
    unknown = [path for path in EXAMPLES if not os.path.exists(os.path.join(REPO, path))]
    if unknown:
        sys.exit("EXAMPLES names headers that are gone: " + ", ".join(unknown))
    if len(examples) < 30:
        sys.exit(f"only {len(examples)} headers with examples found: is the rule (three spaces) still kept?")
    source = translation_unit(examples)
    if args.show:
        print(source)
        return 0
    with tempfile.NamedTemporaryFile("w", suffix=".cpp", prefix="header-examples-") as tu:
        tu.write(source)
        tu.flush()
        command = compile_command(args.build_dir) + [tu.name]
        result = subprocess.run(command, capture_output=True, text=True)
    lines = sum(len(lines) for _, blocks in examples for _, lines in blocks)
    if result.returncode != 0:
        sys.stderr.write(result.stderr)
        print(f"FAILED: the header examples do not compile ({len(examples)} headers, {lines} lines)")
        return 1
    print(f"ok: the examples of {len(examples)} headers ({lines} lines) compile")
    return 0


if __name__ == "__main__":
    sys.exit(main())
