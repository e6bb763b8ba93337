"""A kubelet that exits a few seconds after it started, after kubelet-start's check: `up` stops
at once in wait-control-plane with the kubelet's own fatal line, not after its 4-minute wait.

Real here: the kubelet (v1.20.2 from KUBEINIT_REAL_K8S, a directory of real Kubernetes
binaries; skipped without it), systemd restarting it, the machine lacking /dev/kmsg as
systemd-nspawn machines do (the kubelet 1.20 then exits 5-6 s after starting with
`failed to create kubelet: open /dev/kmsg: no such file or directory`), kubeinit over SSH.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pytest
from test_up import Workdir, errors

pytestmark = pytest.mark.machines

REAL = os.environ.get("KUBEINIT_REAL_K8S", "")


@pytest.fixture(scope="module")
def machine_count() -> int:
    return 1


class Work(Workdir):
    def write_spec(self, mirror: str, file: Path | None = None, **_) -> Path:
        kube = {"version": self.versions["kubectl"]}
        # kubelet 1.20 (standing in for kubernetesVersion's) needs --container-runtime=remote
        return self.write_one_host(mirror, "watch", file, {"kubectl": kube, "kubelet": kube},
                                   components={"kubelet": {"extraArgs": {"container-runtime": "remote"}}})


def test_a_kubelet_that_exits_after_its_start_check_stops_up_at_once_with_its_own_error(
        machines, artifact_mirror, tmp_path):
    kubelet = Path(REAL) / "kubelet"
    if not REAL or not kubelet.is_file():
        pytest.skip("KUBEINIT_REAL_K8S is not set to a directory of real Kubernetes binaries with a kubelet")
    m = machines[0]
    work = Work(tmp_path, machines, artifact_mirror.url, artifact_mirror.versions)
    work.trust_all()
    r = work.up("--only", "runtime,kubernetes,certs,kubeconfig", timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr
    # The real kubelet where kubeinit installed the mirror's; kubelet-start sees a new binary and restarts it.
    # What a test image may add for the real kubelet is taken away: this machine has no /dev/kmsg.
    m.ssh("rm -f /dev/kmsg")
    shutil.copyfile(kubelet, m.merged / "usr/local/bin/kubelet")
    (m.merged / "usr/local/bin/kubelet").chmod(0o755)

    r = work.up("--only", "kubelet-start,wait-control-plane", timeout=300)
    assert r.returncode == 1, r.stdout + r.stderr
    assert f"{m.name}: ✓ kubelet-start" in r.stdout, r.stdout  # its 3 s check passed: it had not exited yet
    lines = errors(r)
    assert len(lines) == 1, r.stderr
    line = lines[0]
    assert line.startswith(f"error: {m.name}: phase wait-control-plane failed at "), line
    assert re.search(r"the kubelet exited \(systemd restarts it, and it will exit again\) while kubeinit waited for "
                     r"it: F\d{4} [0-9:.]+ +\d+ \S+\] .*open /dev/kmsg: no such file or directory", line), \
        line + "\n--- its journal:\n" + m.ssh("journalctl -u kubelet -n 30 --no-pager -o cat").out
    assert "`journalctl -u kubelet` on the host" in line and "resume with `" in line, line
    assert r.seconds < 30, f"up took {r.seconds:.1f} s (kubelet-start ~4 s, the kubelet exits 5-6 s after it starts)"
    print(f"\nup stopped {r.seconds:.1f} s after it started: {line}")
    m.ssh("systemctl stop kubelet")
