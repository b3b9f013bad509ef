"""--help, `imgpull completion bash` and `imgpull man`: all three read off the
same command-line definition, so they list the same commands and flags."""
import re
import shutil
import subprocess

import pytest

import imgpull_cli as cli


def imgpull(*args):
    return subprocess.run([cli.binary(), *args], capture_output=True, text=True, timeout=30)


def commands():
    """The commands as the top-level --help lists them."""
    out = imgpull("--help").stdout
    section = out.split("Subcommands:")[1]
    return [m.group(1) for m in re.finditer(r"^  ([a-z]+)", section, re.M)]


def test_every_command_has_help_with_an_example():
    names = commands()
    assert {"pull", "images", "unpack", "inspect", "history", "tag", "rmi", "prune", "verify", "save",
            "completion", "man"} <= set(names)
    for name in names:
        proc = imgpull(name, "--help")
        assert proc.returncode == 0, (name, proc.stderr)
        assert "Example" in proc.stdout, (name, proc.stdout)


def test_version():
    proc = imgpull("--version")
    assert proc.returncode == 0
    assert re.fullmatch(r"imgpull \d+\.\d+\.\d+\n", proc.stdout)


def complete(words, tmp_path):
    """Runs the generated completion function for the command line `words`
    (the last word is the one being completed) and returns COMPREPLY."""
    script = tmp_path / "imgpull.bash"
    script.write_text(imgpull("completion", "bash").stdout)
    words_literal = " ".join("'" + w + "'" for w in words)
    proc = subprocess.run(["bash", "-c", f"source {script}; COMP_WORDS=({words_literal}); "
                           f"COMP_CWORD={len(words) - 1}; _imgpull; printf '%s\\n' \"${{COMPREPLY[@]}}\"; "
                           "complete -p imgpull"],
                          capture_output=True, text=True, cwd=tmp_path, check=True)
    lines = proc.stdout.splitlines()
    assert lines[-1] == "complete -F _imgpull imgpull"
    return [line for line in lines[:-1] if line]


def test_bash_completion_completes_commands_flags_and_paths(tmp_path):
    assert complete(["imgpull", "pu"], tmp_path) == ["pull"]
    assert sorted(complete(["imgpull", "p"], tmp_path)) == ["prune", "pull"]
    assert complete(["imgpull", "g"], tmp_path) == ["gc"]  # prune's alias
    assert sorted(complete(["imgpull", ""], tmp_path)) == sorted(commands() + ["gc"])
    assert complete(["imgpull", "--ro"], tmp_path) == ["--root"]
    assert complete(["imgpull", "pull", "--pl"], tmp_path) == ["--platform"]
    assert "--max-concurrent-downloads" in complete(["imgpull", "--debug", "pull", "--"], tmp_path)
    assert complete(["imgpull", "images", "--d"], tmp_path) == ["--digests"]
    # Flags of one command are not offered for another.
    assert complete(["imgpull", "images", "--pl"], tmp_path) == []
    # A directory for --rootfs, a file for save -o.
    (tmp_path / "rootdir").mkdir()
    (tmp_path / "rootfile").write_text("")
    assert complete(["imgpull", "pull", "--rootfs", "root"], tmp_path) == ["rootdir"]
    assert sorted(complete(["imgpull", "save", "-o", "root"], tmp_path)) == ["rootdir", "rootfile"]
    assert complete(["imgpull", "--root", "root"], tmp_path) == ["rootdir"]


@pytest.mark.skipif(shutil.which("groff") is None, reason="groff is not installed (apt-get install groff-base)")
def test_man_page_renders_cleanly_and_documents_every_command():
    page = imgpull("man")
    assert page.returncode == 0
    check = subprocess.run(["groff", "-man", "-Tutf8", "-ww", "-z"], input=page.stdout, capture_output=True,
                           text=True)
    assert check.returncode == 0 and check.stderr == "", check.stderr
    rendered = subprocess.run(["groff", "-man", "-Tascii", "-P-cbou"], input=page.stdout, capture_output=True,
                              text=True, check=True).stdout
    flat = " ".join(rendered.split())
    for name in commands():
        assert re.search(rf"^ {{3}}{re.escape(name)}\b", rendered, re.M), name
        help_text = imgpull(name, "--help").stdout
        # The command's examples, as --help prints them, are in the manual.
        examples = help_text[help_text.index("Example"):].splitlines()[1:]
        for example in examples:
            if example.strip():
                assert " ".join(example.split()) in flat, (name, example)
    for flag in ("--rootfs", "--max-concurrent-downloads", "--insecure-registry", "--digests"):
        assert flag in rendered
