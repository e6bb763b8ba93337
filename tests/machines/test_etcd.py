"""`kubeinit up --only preflight,runtime,certs,etcd` on one real Debian machine, its only
control plane, over real SSH: etcd (the mirror's 3.4.23, from Debian's packages) runs as a
systemd service with kubeadm's certificates, answers the API server's client certificate
over mTLS, refuses a client without one, and a re-run changes nothing.
"""

from __future__ import annotations

import re
from pathlib import Path

import mirror as mirrorlib
import pytest
import yaml
from test_up import Workdir, errors, stderr_lines

pytestmark = pytest.mark.machines

PHASES = "preflight,runtime,certs,etcd"
PKI = "/etc/kubernetes/pki"


@pytest.fixture(scope="module")
def machine_count() -> int:
    return 1


class EtcdWork(Workdir):
    """test_up's Workdir (its `up`), with a spec of one control-plane host and etcd pinned to
    the mirror's version."""

    def write_spec(self, mirror: str, file: Path | None = None, extra_args: dict | None = None, **_) -> Path:
        return self.write_one_host(
            mirror,
            "etcd",
            file,
            {"etcd": {"version": self.versions["etcd"]}},
            components={"etcd": {"extraArgs": extra_args or {}}},
        )


@pytest.fixture(scope="module")
def work(machines, artifact_mirror, tmp_path_factory) -> EtcdWork:
    w = EtcdWork(tmp_path_factory.mktemp("etcd"), machines, artifact_mirror.url, artifact_mirror.versions)
    w.trust_all()
    return w


def etcdctl(m, args: str, cert: str | None = "apiserver-etcd-client", check: bool = True):
    auth = f"--cert {PKI}/{cert}.crt --key {PKI}/{cert}.key " if cert else ""
    return m.ssh(
        f"ETCDCTL_API=3 etcdctl --endpoints=https://{m.ip}:2379 --cacert {PKI}/etcd/ca.crt {auth}"
        f"--dial-timeout=3s --command-timeout=5s {args}",
        check=check,
    )


def test_spec_pins_the_mirrors_etcd(work, artifact_mirror):
    assert yaml.safe_load(work.file.read_text())["artifacts"]["etcd"] == {
        "version": artifact_mirror.versions["etcd"],
        "sha256": mirrorlib.pins(artifact_mirror.root)["etcd"],
    }


def test_up_runs_etcd_with_kubeadms_tls(work, machines):
    m = machines[0]
    r = work.up("--only", PHASES, timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr
    assert f"{m.name}: ✓ etcd/local" in r.stdout, r.stdout
    assert m.ssh("systemctl is-active etcd").out.strip() == "active"
    assert m.ssh("systemctl is-enabled etcd").out.strip() == "enabled"
    assert m.ssh("etcd --version").out.startswith("etcd Version: 3.4.23")
    assert m.ssh("stat -c %a /var/lib/etcd").out.strip() == "700"
    assert m.ssh("ls /usr/local/bin").out.split().count("etcdctl") == 1
    assert m.ssh("ls -A /var/lib/kubeinit/staging").out == "", "the staged archive is removed once installed"


def test_api_server_client_certificate_can_put_and_get(work, machines):
    m = machines[0]
    assert etcdctl(m, "put kubeinit/test hello").out.strip() == "OK"
    assert etcdctl(m, "get kubeinit/test --print-value-only").out.strip() == "hello"
    health = etcdctl(m, "endpoint health", cert="etcd/healthcheck-client")
    assert "is healthy" in health.out + health.err


def test_client_without_a_certificate_is_refused(work, machines):
    m = machines[0]
    r = etcdctl(m, "get kubeinit/test --print-value-only", cert=None, check=False)
    assert r.rc != 0 and "hello" not in r.out, r


def test_second_up_reports_only_skips(work, machines):
    m = machines[0]
    pid = m.ssh("systemctl show -p MainPID --value etcd").out.strip()
    r = work.up("--only", PHASES)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "nothing to change, every host already matched" in r.stdout, r.stdout
    assert f"{m.name}: ✓ etcd/local: 0 changed" in r.stdout, r.stdout
    assert not re.search(r": (transfer|upload|run|local) ", r.stdout)
    assert m.ssh("systemctl show -p MainPID --value etcd").out.strip() == pid, "etcd was not restarted"


def test_changed_certificate_restarts_etcd_and_it_stays_healthy(work, machines):
    m = machines[0]
    # a certificate etcd reads changed on disk (here: the same bytes in a new inode are not
    # a change; an edited file is): remove the server pair and let the certs phase remake it
    m.ssh(f"rm {PKI}/etcd/server.crt {PKI}/etcd/server.key")
    pid = m.ssh("systemctl show -p MainPID --value etcd").out.strip()
    r = work.up("--only", "certs,etcd")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "(re)start etcd" in r.stdout and "health check" in r.stdout, r.stdout
    assert m.ssh("systemctl show -p MainPID --value etcd").out.strip() != pid
    assert etcdctl(m, "get kubeinit/test --print-value-only").out.strip() == "hello", "the data survived"


def test_missing_certificates_are_one_clear_sentence(work, machines):
    m = machines[0]
    m.ssh(f"mv {PKI}/etcd/peer.key /root/peer.key")
    try:
        r = work.up("--only", "etcd")
    finally:
        m.ssh(f"mv /root/peer.key {PKI}/etcd/peer.key")
    assert r.returncode == 1
    err = errors(r)
    assert len(err) == 1 and len(stderr_lines(r.stderr)) == 1, r.stderr
    assert (
        f"{m.name}: phase etcd/local failed at 'plan': this host has no {PKI}/etcd/peer.key: run the certs phase first"
        in err[0]
    )


def test_etcd_that_cannot_start_shows_why_and_the_next_run_repairs_it(work, machines, artifact_mirror):
    m = machines[0]
    bad = work.write_spec(artifact_mirror.url, work.root / "bad.yaml", extra_args={"no-such-flag": "1"})
    r = work.up("--only", "etcd", file=bad)
    assert r.returncode == 1, r.stdout + r.stderr
    err = errors(r)
    assert len(err) == 1, r.stderr
    assert f"{m.name}: phase etcd/local failed at '(re)start etcd" in err[0]
    assert "flag provided but not defined: -no-such-flag" in err[0], err[0]  # from the journal
    r = work.up("--only", "etcd")
    assert r.returncode == 0, r.stdout + r.stderr
    assert etcdctl(m, "get kubeinit/test --print-value-only").out.strip() == "hello"


def test_control_plane_manifests_point_at_this_etcd_and_these_files(work, machines):
    """The static pod manifests land on the host (0600, valid for their Kubernetes version), and
    what the API server's flags name is really there: its etcd client certificate, given to
    etcdctl exactly as the manifest gives it to kube-apiserver, reaches the running etcd."""
    import kubernetes_validate

    m = machines[0]
    r = work.up("--only", "kubeconfig,control-plane")
    assert r.returncode == 0, r.stdout + r.stderr
    for name in ("kube-apiserver", "kube-controller-manager", "kube-scheduler"):
        path = f"/etc/kubernetes/manifests/{name}.yaml"
        assert m.ssh(f"stat -c %a {path}").out.strip() == "600"
        pod = yaml.safe_load(m.ssh(f"cat {path}").out)
        kubernetes_validate.validate(pod, "1.32.0", strict=True)
        args = dict(a[2:].split("=", 1) for a in pod["spec"]["containers"][0]["command"][1:])
        named = [
            v
            for k, v in args.items()
            if k.endswith(("-file", "kubeconfig", "-ca-file")) and v.startswith("/etc/kubernetes")
        ]
        assert named, name
        missing = m.ssh("for f in " + " ".join(named) + "; do [ -f $f ] || echo $f; done").out.split()
        assert missing == [], f"{name} names files that are not on the host: {missing}"
        if name == "kube-apiserver":
            r = m.ssh(
                f"ETCDCTL_API=3 etcdctl --endpoints={args['etcd-servers']} --cacert {args['etcd-cafile']} "
                f"--cert {args['etcd-certfile']} --key {args['etcd-keyfile']} --command-timeout=5s "
                "get kubeinit/test --print-value-only"
            )
            assert r.out.strip() == "hello"
    again = work.up("--only", "kubeconfig,control-plane")
    assert again.returncode == 0 and "nothing to change" in again.stdout, again.stdout


# --- reset: last in this file, since it removes the state the tests above use -------------

RESET_GONE = [
    "/etc/systemd/system/etcd.service",
    "/var/lib/etcd",
    "/var/lib/kubeinit/installed/etcd.stamp",
    "/var/lib/kubeinit/etcd.applied",
    f"{PKI}/ca.crt",
    f"{PKI}/etcd/ca.key",
    *(
        f"/etc/kubernetes/{c}"
        for c in ("admin.conf", "super-admin.conf", "kubelet.conf", "controller-manager.conf", "scheduler.conf")
    ),
    *(f"/etc/kubernetes/manifests/kube-{n}.yaml" for n in ("apiserver", "controller-manager", "scheduler")),
]
ALL_BUILT = "preflight,runtime,certs,kubeconfig,etcd,control-plane"


def reset(work, *args: str, home: Path | None = None, timeout: float = 300):
    """`kubeinit reset -f` of the workdir's cluster file, with its KUBEINIT_HOME (or `home`)."""
    import subprocess
    import sys

    from test_up import OUTPUTS, ROOT

    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "kubeinit",
            "reset",
            "-f",
            str(work.file),
            "--known-hosts",
            str(work.known_hosts),
            *args,
        ],
        capture_output=True,
        text=True,
        env=work.env(home),
        timeout=timeout,
        cwd=ROOT,
        stdin=subprocess.DEVNULL,
    )
    OUTPUTS.extend([r.stdout, r.stderr])
    return r


def test_reset_removes_what_up_made_keeps_the_runtime_and_up_rebuilds(work, machines):
    m = machines[0]
    r = work.up("--only", ALL_BUILT, timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr
    assert m.ssh("systemctl is-active etcd").out.strip() == "active"

    refused = reset(work)  # no terminal, no --yes
    assert refused.returncode == 2 and "pass --yes" in refused.stderr, refused.stderr
    assert m.ssh("systemctl is-active etcd").out.strip() == "active", "a refused reset changes nothing"

    r = reset(work, "--yes")
    assert r.returncode == 0, r.stdout + r.stderr
    assert m.ssh("systemctl is-active etcd", check=False).out.strip() != "active"
    assert m.ssh("systemctl is-enabled etcd", check=False).out.strip() not in ("enabled", "disabled")
    left = m.ssh(" ".join(f"[ -e {f} ] && echo {f};" for f in RESET_GONE) + " true").out.split()
    assert left == [], f"reset left {left}"
    assert sorted(m.ssh(f"ls -A {PKI} /etc/kubernetes/manifests").out.split()) == [
        "/etc/kubernetes/manifests:",
        f"{PKI}:",
    ], "the dirs stay, empty"
    assert m.ssh("systemctl is-active containerd").out.strip() == "active", "the runtime stays"
    assert m.ssh("[ -x /usr/local/bin/etcd ] && echo yes").out.strip() == "yes", "binaries stay"
    # what reset keeps is said; this host never ran a pod network, so there is none to name
    assert "$HOME/.kube/config" in r.stdout and "cleanup-network" in r.stdout, r.stdout

    again = reset(work, "--yes")
    assert again.returncode == 0, again.stdout + again.stderr
    assert "nothing to change" in again.stdout, again.stdout
    assert f"{m.name}: ✓ cleanup-node: 0 changed" in again.stdout, again.stdout
    assert not re.search(r": (transfer|upload|run|local) ", again.stdout), again.stdout

    r = work.up("--only", ALL_BUILT, timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr
    assert m.ssh("systemctl is-active etcd").out.strip() == "active"
    health = etcdctl(m, "endpoint health", cert="etcd/healthcheck-client")
    assert "is healthy" in health.out + health.err
    r = etcdctl(m, "get kubeinit/test --print-value-only", check=False)
    assert r.out.strip() == "", "a fresh etcd: the old data went with reset"


def test_no_private_key_in_output_or_logs(work):
    """The runs above uploaded every key of the PKI (etcd's too) and ran reset: none of the key
    material shows in what kubeinit printed or logged (uploads of keys show as <secret>)."""
    import test_up

    logs = [p.read_text() for p in work.home.rglob("*.log")]
    assert logs and any("<secret>" in text for text in logs), "the key uploads are logged, masked"
    for text in test_up.OUTPUTS + logs:
        assert "PRIVATE KEY" not in text
