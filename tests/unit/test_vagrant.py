"""The Vagrantfile and examples/vagrant.yaml: Vagrant itself accepts the Vagrantfile (Debian's
vagrant, no provider needed), and the cluster file names the machines it defines, at their
addresses, with the key Vagrant makes for each."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from kubeinit.spec import load_file

ROOT = Path(__file__).resolve().parents[2]


def vagrant_nodes() -> list[tuple[str, str]]:
    text = (ROOT / "Vagrantfile").read_text()
    return re.findall(r'\{\s*name:\s*"([^"]+)",\s*ip:\s*"([^"]+)"', text)


@pytest.mark.skipif(shutil.which("vagrant") is None, reason="vagrant is not installed (.ci/run installs Debian's)")
def test_vagrant_validates_the_vagrantfile(tmp_path):
    r = subprocess.run(
        ["vagrant", "validate", "--ignore-provider"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env={
            "PATH": "/usr/bin:/bin",
            "HOME": str(tmp_path),
            "VAGRANT_HOME": str(tmp_path / ".vagrant.d"),
            "VAGRANT_DOTFILE_PATH": str(tmp_path / ".vagrant"),  # nothing left in the checkout
        },
    )
    assert r.returncode == 0, r.stdout + r.stderr
    assert "Vagrantfile validated successfully" in r.stdout
    for name, _ in vagrant_nodes():
        assert f"==> {name}:" in r.stdout, r.stdout  # Vagrant saw each machine


def test_cluster_file_names_the_vagrant_machines():
    nodes = vagrant_nodes()
    assert len(nodes) == 3, nodes
    spec = load_file(str(ROOT / "examples" / "vagrant.yaml"))
    assert [(h.name, h.address) for h in spec.hosts] == nodes
    assert [h.role for h in spec.hosts] == ["control-plane", "worker", "worker"]
    for h in spec.hosts:
        assert h.ssh.user == "vagrant"
        assert h.ssh.key == f".vagrant/machines/{h.name}/virtualbox/private_key"
