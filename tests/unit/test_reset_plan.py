"""The reset phases over scripted facts (facts in -> steps out), and the reset command line.

A converged host (after `up --only ...,etcd,control-plane`) gets every removal; a fresh or
already reset host gets only skips; a partial one gets just what it still has. Everything
is planned from one probe round trip.
"""

from __future__ import annotations

import pytest

from kubeinit import spec as specmod
from kubeinit import workflow
from kubeinit.errors import UserError
from kubeinit.phases import etcd, reset
from kubeinit.plan import Context, Options, Target
from kubeinit.steps import Check, Notice, Run, Skip, is_change

import scripted  # noqa: E402  (tests/unit is on sys.path)

from test_up_cli import cluster_file

KUBECONFIGS = [f"/etc/kubernetes/{f}" for f in reset.KUBECONFIG_FILES]


def make_spec(cert_dir: str = "/etc/kubernetes/pki"):
    return specmod.from_dict({
        "apiVersion": specmod.API_VERSION, "kind": "Cluster", "name": "t", "kubernetesVersion": "v1.32.5",
        "hosts": [{"name": "n1", "address": "10.0.0.1", "role": "control-plane"}],
        "pki": {"certificatesDir": cert_dir}})


class ScriptedHost(scripted.ProbedHost):
    def __init__(self, lines: list[str]):
        super().__init__()
        self.lines = lines

    def probe_output(self) -> str:
        return "".join(line + "\n" for line in self.lines)


def plan(lines: list[str], spec=None) -> tuple[dict[str, list], ScriptedHost]:
    """Every reset phase, planned as the executor does (gathered first), on one scripted host."""
    spec = spec or make_spec()
    host = ScriptedHost(lines)
    t = Target(spec.hosts[0], lambda h: host)
    ctx = Context(spec, [t], Options(dry_run=True))
    host.probe_script = reset.probe(ctx)
    t.facts.gather(*reset.gather(ctx, t))
    return {p.path: list(p.planner()(ctx, t)) for p in workflow.select(workflow.reset_phases())}, host


CONVERGED = [
    "etcd.ActiveState=active", "etcd.UnitFileState=enabled", "kubelet.ActiveState=inactive",
    f"exists={etcd.UNIT}", f"exists={etcd.DATA_DIR}", f"exists={reset.ETCD_STAMP}", f"exists={etcd.APPLIED}",
    *(f"exists={p}" for p in KUBECONFIGS if "bootstrap" not in p),
    "nonempty=/etc/kubernetes/manifests", "nonempty=/etc/kubernetes/pki", "mounts=0",
]
FRESH = ["etcd.ActiveState=inactive", "etcd.UnitFileState=", "kubelet.ActiveState=inactive", "mounts=0"]


def test_all_reset_phases_are_built():
    assert all(p.plan for p in workflow.select(workflow.reset_phases()))


def test_converged_host_gets_every_removal_in_one_round_trip():
    steps, host = plan(CONVERGED)
    assert host.commands == 1, "one probe answers all three phases"
    pre = steps["preflight"]
    assert len(pre) == 1 and isinstance(pre[0], Check) and pre[0].passed
    assert "etcd unit (active)" in pre[0].message and "5 kubeconfig files in /etc/kubernetes" in pre[0].message
    assert [type(s) for s in steps["remove-etcd-member"]] == [Skip]
    assert "one member" in steps["remove-etcd-member"][0].reason
    assert scripted.brief(steps["cleanup-node"]) == [
        "skip the kubelet is not running",
        "run stop and disable etcd",
        f"run remove {etcd.UNIT}",
        f"run remove etcd's data, {etcd.DATA_DIR}",
        "run remove etcd's install stamp and applied record",
        "run empty /etc/kubernetes/manifests",
        "skip /var/lib/kubelet is empty or absent",
        "run remove the certificates and keys in /etc/kubernetes/pki",
        "run remove the kubeconfig files in /etc/kubernetes",
        "notice", "notice", "notice",
    ]
    runs = {s.note: s for s in steps["cleanup-node"] if isinstance(s, Run)}
    assert runs["remove the kubeconfig files in /etc/kubernetes"].argv == (
        "rm", "-f", "--", *(p for p in KUBECONFIGS if "bootstrap" not in p))
    assert runs["stop and disable etcd"].argv == ("systemctl", "disable", "--now", "-q", "etcd")
    assert "daemon-reload" in runs[f"remove {etcd.UNIT}"].argv[2]
    assert runs["remove etcd's install stamp and applied record"].argv[-2:] == (reset.ETCD_STAMP, etcd.APPLIED)
    # what kubeadm keeps is said, not removed
    notes = " ".join(s.text for s in steps["cleanup-node"] if isinstance(s, Notice))
    assert "container runtime" in notes and "iptables" in notes and "$HOME/.kube/config" in notes
    assert not any("/etc/cni" in " ".join(s.argv) or "containerd" in " ".join(s.argv)
                   for s in steps["cleanup-node"] if isinstance(s, Run))


@pytest.mark.parametrize("lines", [FRESH, ["etcd.ActiveState=inactive", "mounts=0"]], ids=["fresh", "reset-twice"])
def test_fresh_or_already_reset_host_gets_only_skips(lines):
    steps, host = plan(lines)
    every = [s for ss in steps.values() for s in ss]
    assert not any(is_change(s) for s in every), scripted.brief(every)
    assert isinstance(steps["preflight"][0], Skip)
    assert host.commands == 1


def test_partial_host_gets_just_what_it_still_has():
    # a reset interrupted after etcd went: certificates and one kubeconfig are left, and a stopped unit
    lines = ["etcd.ActiveState=failed", "etcd.UnitFileState=disabled", f"exists={etcd.UNIT}",
             "exists=/etc/kubernetes/admin.conf", "nonempty=/etc/kubernetes/pki", "nonempty=/etc/cni/net.d",
             "kubelet.ActiveState=active", "mounts=2", "nonempty=/var/lib/kubelet", "pods=3"]
    steps, _ = plan(lines)
    assert scripted.brief(steps["cleanup-node"]) == [
        "run stop the kubelet",
        "run stop and remove the Kubernetes pods (CRI)",
        "skip etcd is stopped and disabled",
        f"run remove {etcd.UNIT}",
        f"skip {etcd.DATA_DIR} is absent",
        "skip etcd's install stamp and applied record are absent",
        "skip /etc/kubernetes/manifests is empty or absent",
        "run unmount what is mounted under /var/lib/kubelet",
        "run empty /var/lib/kubelet",
        "run remove the certificates and keys in /etc/kubernetes/pki",
        "run remove the kubeconfig files in /etc/kubernetes",
        "notice", "notice", "notice", "notice",
    ]
    cni = [s.text for s in steps["cleanup-node"] if isinstance(s, Notice) and "/etc/cni/net.d" in s.text]
    assert cni and "not removed" in cni[0]


def test_an_etcd_kubeinit_did_not_install_is_left_alone():
    steps, _ = plan(["etcd.ActiveState=active", "etcd.UnitFileState=enabled", f"exists={etcd.DATA_DIR}", "mounts=0"])
    cleanup = steps["cleanup-node"]
    assert not any(isinstance(s, Run) and "etcd" in " ".join(s.argv) for s in cleanup), scripted.brief(cleanup)
    assert any(isinstance(s, Notice) and "did not install" in s.text for s in cleanup)


def test_custom_cert_dir_is_the_one_emptied():
    steps, _ = plan(["nonempty=/srv/k8s/pki", "mounts=0"], make_spec("/srv/k8s/pki"))
    run = [s for s in steps["cleanup-node"] if isinstance(s, Run)]
    assert len(run) == 1 and "'/srv/k8s/pki'" not in run[0].argv[2] and "find /srv/k8s/pki -mindepth 1" in run[0].argv[2]


@pytest.mark.parametrize("bad", ["/", "/etc", "/var/lib", "/etc/kubernetes", "/etc/kubernetes/.."])
def test_a_cert_dir_that_is_not_its_own_is_refused(bad):
    spec = make_spec("/etc/kubernetes/pki")
    spec.pki.cert_dir = bad  # as --cert-dir would set it
    with pytest.raises(UserError, match="not one reset may empty"):
        plan(FRESH, spec)


# --------------------------------------------------------------------------
# the command line


def test_reset_refuses_without_yes_when_there_is_no_terminal(kubeinit_cli, tmp_path):
    r = kubeinit_cli("reset", "--cert-dir", str(tmp_path / "pki"), "--kubeconfig-dir", str(tmp_path), input="")
    assert r.returncode == 2, r.stderr
    assert "without confirmation: there is no terminal to ask on; pass --yes" in r.stderr
    assert r.stdout == ""


def test_reset_f_refuses_without_yes_before_any_host_is_contacted(kubeinit_cli, tmp_path):
    r = kubeinit_cli("reset", "-f", cluster_file(tmp_path, 9, "127.0.0.1"), "--known-hosts", str(tmp_path / "kh"),
                     input="")
    assert r.returncode == 2, r.stderr
    assert r.stderr.strip() == ("error: not resetting cp1 without confirmation: there is no terminal to ask on; "
                                "pass --yes")
    assert r.stdout == ""


def test_reset_f_takes_its_dirs_from_the_file(kubeinit_cli, tmp_path):
    r = kubeinit_cli("reset", "-f", cluster_file(tmp_path), "--cert-dir", "/x/pki", "--yes")
    assert r.returncode == 2 and "drop --config, --cert-dir and --kubeconfig-dir" in r.stderr


def test_reset_dry_run_prints_the_plan_and_never_asks(kubeinit_cli, tmp_path):
    (tmp_path / "pki").mkdir()
    (tmp_path / "pki" / "ca.key").write_text("secret")
    (tmp_path / "admin.conf").write_text("secret")
    r = kubeinit_cli("reset", "--dry-run", "--cert-dir", str(tmp_path / "pki"), "--kubeconfig-dir", str(tmp_path),
                     input="")
    assert r.returncode == 0, r.stderr
    out = r.stdout
    assert "kubeinit reset --dry-run" in out and "nothing will be changed" in out
    for phase in ("[preflight]", "[remove-etcd-member]", "[cleanup-node]"):
        assert phase in out
    assert f"remove the certificates and keys in {tmp_path}/pki" in out
    assert f"remove the kubeconfig files in {tmp_path}" in out
    assert "secret" not in out.replace("<secret>", "")
    assert (tmp_path / "pki" / "ca.key").exists() and (tmp_path / "admin.conf").exists(), "dry-run changes nothing"


def test_reset_resume_hint():
    from kubeinit.up import reset_resume_command

    assert reset_resume_command("c.yaml", "/kh", 10) == "kubeinit reset -f c.yaml --yes --known-hosts /kh"
