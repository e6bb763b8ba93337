"""`kubeinit up` as a user meets it, without real hosts: what it refuses up front, the log
it keeps, and the resume command it prints."""

from __future__ import annotations

import socket

import yaml

from kubeinit import workflow
from kubeinit.up import resume_command


def cluster_file(tmp_path, port: int = 22, address: str = "192.0.2.10", more: tuple[dict, ...] = ()) -> str:
    path = tmp_path / "cluster.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "kubeinit.dev/v1alpha1",
                "kind": "Cluster",
                "name": "demo",
                **({"controlPlaneEndpoint": "192.0.2.9:6443"} if more else {}),
                "hosts": [
                    {"name": "cp1", "address": address, "role": "control-plane", "ssh": {"port": port}},
                    *more,
                ],
            }
        )
    )
    return str(path)


def test_up_with_a_second_control_plane_is_not_refused_as_unbuilt(kubeinit_cli, tmp_path):
    # join's control-plane phases are built: the run goes on to the first control plane (nothing answers there)
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    cp2 = {"name": "cp2", "address": "192.0.2.11", "role": "control-plane"}
    file = cluster_file(tmp_path, port, "127.0.0.1", more=(cp2,))
    r = kubeinit_cli("up", "-f", file, "--only", "certs", "--known-hosts", str(tmp_path / "kh"))
    assert r.returncode == 1
    assert "not available" not in r.stderr and "cp1: phase certs/ca failed at 'connect'" in r.stderr, r.stderr


def test_an_unbuilt_phase_is_named_with_the_built_ones_to_run():
    from kubeinit.up import not_available

    phases = [p for top in workflow.up_phases() for p in top.leaves()]
    err = str(not_available("c.yaml", phases, ["join/control-plane-join/etcd"]))
    assert "phase join of `kubeinit up` is not available yet" in err
    assert (
        "--only preflight,runtime,kubernetes,images,certs,kubeconfig,etcd,control-plane,kubelet-start,"
        "wait-control-plane,upload-config,mark-control-plane,bootstrap-token,kubelet-finalize,addon,cni`"
    ) in err


def test_unreachable_host_is_named_with_the_resume_command_and_a_private_log(kubeinit_cli, tmp_path):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens there now: connection refused
    file = cluster_file(tmp_path, port, "127.0.0.1")
    r = kubeinit_cli("up", "-f", file, "--only", "preflight,runtime", "--known-hosts", str(tmp_path / "kh"))
    assert r.returncode == 1
    err = r.stderr.strip().splitlines()
    assert len(err) == 1, r.stderr
    assert err[0].startswith(
        "error: cp1: phase preflight failed at 'connect': host unreachable (cannot connect "
        f"to 127.0.0.1:{port}: connection refused)"
    )
    assert f"resume with `kubeinit up -f {file} --only preflight,runtime --known-hosts {tmp_path / 'kh'}`" in err[0]
    home = tmp_path / "kubeinit-home"
    logs = list((home / "clusters" / "demo" / "logs").glob("up-*.log"))
    assert len(logs) == 1 and "FAILED" in logs[0].read_text()
    for p in (home, home / "clusters", home / "clusters" / "demo", logs[0].parent):
        assert p.stat().st_mode & 0o777 == 0o700, p
    assert logs[0].stat().st_mode & 0o777 == 0o600


def test_resume_command_starts_at_the_failed_top_level_phase():
    tree = workflow.up_phases()
    phases = workflow.select(tree, ["preflight,runtime"])
    assert (
        resume_command("c.yaml", phases, "runtime", None, None, frozenset(), 10)
        == "kubeinit up -f c.yaml --only runtime"
    )
    assert resume_command("my cluster.yaml", phases, "preflight", ["runtime"], "/k/h", frozenset({"swap"}), 3) == (
        "kubeinit up -f 'my cluster.yaml' --only preflight,runtime --skip-phases runtime --known-hosts /k/h "
        "--ignore-preflight-errors swap --parallel 3"
    )
    certs = workflow.select(tree, ["certs,kubeconfig"])
    assert (
        resume_command("c.yaml", certs, "certs/apiserver", None, None, frozenset(), 10)
        == "kubeinit up -f c.yaml --only certs,kubeconfig"
    )


def test_a_second_up_on_the_same_cluster_is_refused_while_the_first_runs(kubeinit_cli, tmp_path):
    """The lock is an flock: held by a live process it refuses; once that process is gone
    (even killed), the next run proceeds."""
    import os
    import subprocess
    import sys

    from kubeinit import up

    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            (
                "import sys; from pathlib import Path; from kubeinit import up; "
                "up.hold_lock(up.workspace('demo'), 'demo'); print('held', flush=True); sys.stdin.read()"
            ),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=os.environ.copy(),
    )
    try:
        assert holder.stdout.readline() == "held\n"
        file = cluster_file(tmp_path, 9, "127.0.0.1")
        r = kubeinit_cli("up", "-f", file, "--only", "preflight", "--known-hosts", str(tmp_path / "kh"))
        assert r.returncode == 1
        assert r.stderr.strip() == (
            f"error: another `kubeinit up` (pid {holder.pid}) is working on cluster 'demo'; "
            "wait for it to finish, or stop it, then run this again"
        )
        dry = kubeinit_cli("up", "-f", file, "--only", "preflight", "--dry-run", "--known-hosts", str(tmp_path / "kh"))
        assert "another `kubeinit up`" not in dry.stderr, "--dry-run changes nothing, so it needs no lock"
    finally:
        holder.kill()
        holder.wait()
    r = kubeinit_cli("up", "-f", file, "--only", "preflight", "--known-hosts", str(tmp_path / "kh"))
    assert "another `kubeinit up`" not in r.stderr, "a killed holder leaves no stale lock"
    assert oct((up.workspace("demo") / "up.lock").stat().st_mode & 0o777) == "0o600"
