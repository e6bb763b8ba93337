"""`kubeinit up` killed (SIGKILL) while the workers join, then run again: the cluster converges
(3 nodes Ready, read with the real kubectl), and a further run only skips.

The cluster is test_cluster.py's (1 control plane + 2 workers, the real v1.20.2 components,
networking.cni: bridge), on this module's own three fresh machines. The kill lands while a
worker's join/kubelet-start runs the remote command that (re)starts its kubelet with
bootstrap-kubelet.conf: kubeinit's SSH connections drop mid-command, its host locks with them.
Skipped, with the reason, without $KUBEINIT_REAL_K8S.
"""

from __future__ import annotations

import signal

import pytest
from cluster_lab import UP_TIMEOUT, ClusterWork, wait_nodes_ready, write_kubeconfig
from test_cluster import (  # machines, work: this module's own fixtures (fresh machines, its workdir)
    machines,  # noqa: F401
    work,  # noqa: F401
)
from test_up import run_until, stderr_lines

pytestmark = pytest.mark.machines


def test_up_killed_during_join_then_rerun_converges(work: ClusterWork, machines):  # noqa: F811
    cp, w1, _ = machines
    # w1's kubelet (re)start: only join/kubelet-start runs that on a worker
    restart = rf"^  {w1.name}: run sh -c .*# \(re\)start the kubelet"
    p, out, err = run_until(work, restart, lambda p: p.send_signal(signal.SIGKILL))
    assert p.returncode == -signal.SIGKILL, out + err
    assert "[join/kubelet-start]" in out and "[cni]" not in out, out

    r = work.up(timeout=UP_TIMEOUT)
    (work.root / "rerun.out").write_text(out + "\n--- killed; the re-run:\n" + r.stdout + "\n--- stderr\n" + r.stderr)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "nothing to change" not in r.stdout, r.stdout  # the cni phase had not run yet
    assert stderr_lines(r.stderr) == [], r.stderr
    assert "[join/kubelet-start]" in r.stdout, r.stdout
    assert "✓ 3 of 3 nodes Ready" in r.stdout, r.stdout

    got = write_kubeconfig(work)
    assert got.returncode == 0, got.stdout + got.stderr
    wait_nodes_ready(work, machines, "3 nodes Ready after the re-run")
    for m in machines:
        assert m.ssh("systemctl is-active kubelet").out.strip() == "active", m.name

    print(f"\nkilled at {w1.name}'s kubelet (re)start; the re-run: {r.seconds:.1f} s")
    again = work.up(timeout=UP_TIMEOUT)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "nothing to change, every host already matched" in again.stdout, again.stdout
    assert "✓ 3 of 3 nodes Ready" in again.stdout and "waiting up to" not in again.stdout, again.stdout
    assert cp.ssh("systemctl is-active etcd").out.strip() == "active"
