"""The archive installer (hostops/install.py INSTALL_SCRIPT) run for real with /bin/sh in a temp
dir: a release archive whose source directory is a symlink must not make it move the host's own
files (the audit's /etc/victim case)."""

from __future__ import annotations

import hashlib
import io
import subprocess
import tarfile
from pathlib import Path

import pytest

from kubeinit.hostops.install import INSTALL_SCRIPT


def archive(path: Path, members: list[tarfile.TarInfo | tuple[str, bytes]]) -> str:
    with tarfile.open(path, "w:gz") as t:
        for m in members:
            if isinstance(m, tarfile.TarInfo):
                t.addfile(m)
            else:
                ti = tarfile.TarInfo(m[0])
                ti.size, ti.mode = len(m[1]), 0o755
                t.addfile(ti, io.BytesIO(m[1]))
    return hashlib.sha256(path.read_bytes()).hexdigest()


def symlink(name: str, target: str) -> tarfile.TarInfo:
    ti = tarfile.TarInfo(name)
    ti.type, ti.linkname = tarfile.SYMTYPE, target
    return ti


def directory(name: str) -> tarfile.TarInfo:
    ti = tarfile.TarInfo(name)
    ti.type, ti.mode = tarfile.DIRTYPE, 0o755
    return ti


@pytest.fixture
def host(tmp_path):
    """A victim directory with files, and the installer's paths under tmp_path."""
    victim = tmp_path / "etc" / "victim"
    victim.mkdir(parents=True)
    for n in ("passwd", "shadow"):
        (victim / n).write_text(f"the host's own {n}\n")
    script = tmp_path / "install-archive"
    script.write_text(INSTALL_SCRIPT)
    return tmp_path, victim, script


def install(tmp_path: Path, script: Path, a: Path, digest: str, src: str) -> subprocess.CompletedProcess:
    dest, stamp = tmp_path / "usr-local-bin", tmp_path / "installed" / "x.stamp"
    return subprocess.run(
        ["sh", str(script), str(a), digest, src, str(dest), str(stamp)],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def snapshot(d: Path) -> dict[str, str]:
    return {p.name: p.read_text() for p in d.iterdir()}


def test_a_symlinked_source_directory_is_refused_and_the_victim_untouched(host):
    tmp_path, victim, script = host
    before = snapshot(victim)
    a = tmp_path / "containerd.tar.gz"
    digest = archive(a, [symlink("bin", str(victim))])
    r = install(tmp_path, script, a, digest, "bin")
    assert r.returncode == 1
    assert "bin/ in the archive is not a directory of its own (a symlink?); refused" in r.stderr
    assert snapshot(victim) == before, "the host's files stay where they are"
    assert not list((tmp_path / "usr-local-bin").iterdir()), "nothing installed"
    assert not (tmp_path / "installed" / "x.stamp").exists(), "nothing recorded"


def test_a_symlinked_parent_of_the_source_directory_is_refused(host):
    tmp_path, victim, script = host
    (victim / "bin").mkdir()
    (victim / "bin" / "etcd").write_text("the host's etcd\n")
    a = tmp_path / "etcd.tar.gz"
    digest = archive(a, [symlink("etcd-v3", str(victim))])
    r = install(tmp_path, script, a, digest, "etcd-v3/bin")
    assert r.returncode == 1 and "refused" in r.stderr
    assert (victim / "bin" / "etcd").read_text() == "the host's etcd\n"


def test_a_symlinked_file_is_skipped_and_a_regular_archive_installs(host):
    tmp_path, victim, script = host
    a = tmp_path / "cni.tgz"
    digest = archive(a, [directory("./"), ("./bridge", b"#!/bin/sh\n"), symlink("./shadow", str(victim / "shadow"))])
    r = install(tmp_path, script, a, digest, ".")
    assert r.returncode == 0, r.stderr
    assert sorted(p.name for p in (tmp_path / "usr-local-bin").iterdir()) == ["bridge"]
    assert (victim / "shadow").read_text() == "the host's own shadow\n"
    a2 = tmp_path / "containerd2.tar.gz"
    digest2 = archive(a2, [directory("bin/"), ("bin/ctr", b"ctr")])
    assert install(tmp_path, script, a2, digest2, "bin").returncode == 0
    assert (tmp_path / "usr-local-bin" / "ctr").read_bytes() == b"ctr"
