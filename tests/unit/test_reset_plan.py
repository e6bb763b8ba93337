"""The reset phases over facts given parsed (facts in -> steps out), and the reset command line.

A converged host (after `up --only ...,etcd,control-plane`) gets every removal; a fresh or
already reset host gets only skips; a partial one gets just what it still has. Everything
is planned from the facts gathered in one round trip. A host is described by the reset_state.State
its facts make (`typed` gives them).
"""

from __future__ import annotations

import dataclasses
import posixpath

import pytest
import scripted  # noqa: E402  (tests/unit is on sys.path)
from factsstub import FactsStub
from test_up_cli import cluster_file

from kubeinit import workflow
from kubeinit.connection import LocalConnection, Result
from kubeinit.context import Context, Options, Target
from kubeinit.facts import Facts
from kubeinit.facts.etcd import Member, Members
from kubeinit.facts.host import RealPath, Unit, UnitState
from kubeinit.phases import etcd, reset, reset_guard
from kubeinit.phases import reset_state as rs
from kubeinit.phases.reset_network import Leftovers, NetworkLeftovers
from kubeinit.phases.reset_state import Dir, Directory, MountsUnder, Named, PodSandboxes, State
from kubeinit.steps import Check, Notice, Run, Skip, is_change

KUBECONFIGS = [f"/etc/kubernetes/{f}" for f in rs.KUBECONFIG_FILES]


def make_spec(cert_dir: str = "/etc/kubernetes/pki"):
    return scripted.one_host_spec(pki={"certificatesDir": cert_dir})


def typed(ctx: Context, s: State) -> dict:
    """The facts of a host whose reset state is `s`, parsed, for the dirs `ctx` names."""
    cert, confs = ctx.cert_dir, ctx.kubeconfig_dir
    return {
        UnitState("etcd"): s.etcd,
        UnitState("kubelet"): s.kubelet,
        rs.ETCD_FILES: s.exists,
        RealPath(cert): s.certdir,
        RealPath(confs): s.kubeconfigdir,
        RealPath(rs.KUBELET_DIR): s.kubeletdir,
        Named(cert, rs.PKI_FILES): s.pki,
        Directory(posixpath.join(cert, "etcd")): s.pki_etcd,
        Named(confs, rs.KUBECONFIG_FILES): s.kubeconfigs,
        Named(reset.MANIFESTS, rs.MANIFEST_FILES): s.manifests,
        Directory(rs.KUBELET_DIR): s.kubelet_dir,
        MountsUnder(rs.KUBELET_DIR): s.mounts,
        PodSandboxes(): s.pods,
        NetworkLeftovers(): Leftovers(),  # cleanup-network's (test_reset_network.py)
    }


# etcd's members as its own etcd lists them: n1 alone
ALONE = Members((Member("8e9e05c52164694d", "n1", ("https://10.0.0.1:2380",)),))


def plan(s: State, spec=None, members: Members = ALONE) -> tuple[dict[str, list], FactsStub]:
    """Every reset phase, planned as the executor does (reset's facts gathered first), on one host."""
    spec = spec or make_spec()
    dirs = Context(spec, [], Options(dry_run=True))  # the cert and kubeconfig dirs it names
    declared = [*rs.facts(dirs, None), *reset.REMOVE_ETCD_MEMBER.facts(dirs, None)]  # refuses a bad dir first
    facts = FactsStub({**typed(dirs, s), reset.REMOVE_ETCD_MEMBER.facts(dirs, None)[1]: members})
    t = Target(spec.hosts[0], lambda h: facts.conn, facts=facts)
    ctx = Context(spec, [t], Options(dry_run=True))
    facts.gather(declared)
    facts.declared = {*declared, NetworkLeftovers()}
    return {p.path: list(p.impl().plan(ctx, t)) for p in workflow.select(workflow.reset_phases())}, facts


# the dirs as the host resolves them, when none is a symlink; nothing of kubeinit's
FRESH = State(
    etcd=Unit("inactive", ""),
    kubelet=Unit("inactive", ""),
    exists=frozenset(),
    certdir="/etc/kubernetes/pki",
    kubeconfigdir="/etc/kubernetes",
    kubeletdir="/var/lib/kubelet",
    pki=(),
    kubeconfigs=(),
    manifests=(),
    pki_etcd=None,
    kubelet_dir=None,
    mounts=0,
    pods=0,
)
CONVERGED = dataclasses.replace(
    FRESH,
    etcd=Unit("active", "enabled"),
    exists=frozenset({etcd.UNIT, etcd.DATA_DIR, rs.ETCD_STAMP, etcd.APPLIED}),
    pki=rs.PKI_FILES,
    pki_etcd=Dir(False, sum(f.startswith("etcd/") for f in rs.PKI_FILES)),
    kubeconfigs=tuple(f for f in rs.KUBECONFIG_FILES if "bootstrap" not in f),
    manifests=tuple(f for f in rs.MANIFEST_FILES if f != "etcd.yaml"),
)


def test_all_reset_phases_are_built():
    assert all(p.plan for p in workflow.select(workflow.reset_phases()))


def test_converged_host_gets_every_removal_in_one_round_trip():
    steps, facts = plan(CONVERGED)
    assert facts.round_trips == 0, "the facts gathered first answer every phase"
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
        "run remove etcd's install stamp, applied record and join settings",
        "run remove the static pod manifests in /etc/kubernetes/manifests",
        "skip /var/lib/kubelet is empty or absent",
        "run remove the certificates and keys in /etc/kubernetes/pki",
        "run remove the empty /etc/kubernetes/pki/etcd",
        "run remove the kubeconfig files in /etc/kubernetes",
        "notice",
        "notice",
    ]
    runs = {s.note: s for s in steps["cleanup-node"] if isinstance(s, Run)}
    # by name only: kubeinit's PKI catalogue, kubeadm's manifests; the etcd dir with rmdir (only if empty)
    pki_rm = runs["remove the certificates and keys in /etc/kubernetes/pki"].argv
    assert pki_rm == ("rm", "-f", "--", *(f"/etc/kubernetes/pki/{f}" for f in rs.PKI_FILES))
    assert {"/etc/kubernetes/pki/ca.key", "/etc/kubernetes/pki/sa.pub", "/etc/kubernetes/pki/etcd/peer.key"} < set(
        pki_rm
    )
    assert runs["remove the empty /etc/kubernetes/pki/etcd"].argv == ("rmdir", "--", "/etc/kubernetes/pki/etcd")
    assert runs["remove the static pod manifests in /etc/kubernetes/manifests"].argv == (
        "rm",
        "-f",
        "--",
        *(f"/etc/kubernetes/manifests/kube-{n}.yaml" for n in ("apiserver", "controller-manager", "scheduler")),
    )
    assert runs["remove the kubeconfig files in /etc/kubernetes"].argv == (
        "rm",
        "-f",
        "--",
        *(p for p in KUBECONFIGS if "bootstrap" not in p),
    )
    assert runs["stop and disable etcd"].argv == ("systemctl", "disable", "--now", "-q", "etcd")
    assert "daemon-reload" in runs[f"remove {etcd.UNIT}"].argv[2]
    assert runs["remove etcd's install stamp, applied record and join settings"].argv[-2:] == (
        rs.ETCD_STAMP,
        etcd.APPLIED,
    )
    # what kubeadm keeps is said, not removed
    notes = " ".join(s.text for s in steps["cleanup-node"] if isinstance(s, Notice))
    assert "container runtime" in notes and "$HOME/.kube/config" in notes
    assert not any(
        "/etc/cni" in " ".join(s.argv) or "containerd" in " ".join(s.argv)
        for s in steps["cleanup-node"]
        if isinstance(s, Run)
    )


AFTER_RESET = dataclasses.replace(FRESH, etcd=Unit("inactive", "disabled"))
# reset once, with foreign files beside kubeinit's: they (and the etcd dir holding one) stay, and nothing is planned
FOREIGN_LEFT = dataclasses.replace(AFTER_RESET, pki_etcd=Dir(False, 1))


@pytest.mark.parametrize("state", [FRESH, AFTER_RESET, FOREIGN_LEFT], ids=["fresh", "reset-twice", "foreign-left"])
def test_fresh_or_already_reset_host_gets_only_skips(state):
    steps, facts = plan(state)
    every = [s for ss in steps.values() for s in ss]
    assert not any(is_change(s) for s in every), scripted.brief(every)
    assert isinstance(steps["preflight"][0], Skip)
    assert facts.round_trips == 0


def test_partial_host_gets_just_what_it_still_has():
    # a reset interrupted after etcd went: certificates and one kubeconfig are left, and a stopped unit
    partial = dataclasses.replace(
        FRESH,
        etcd=Unit("failed", "disabled"),
        exists=frozenset({etcd.UNIT}),
        kubeconfigs=("admin.conf",),
        pki=("ca.crt", "sa.key"),
        kubelet=Unit("active", "enabled"),
        mounts=2,
        kubelet_dir=Dir(False, 4),
        pods=3,
    )
    steps, _ = plan(partial)
    assert scripted.brief(steps["cleanup-node"]) == [
        "run stop the kubelet",
        "run stop and remove the Kubernetes pods (CRI)",
        "skip etcd is stopped and disabled",
        f"run remove {etcd.UNIT}",
        f"skip {etcd.DATA_DIR} is absent",
        "skip etcd's install stamp, applied record and join settings are absent",
        "skip no static pod manifests in /etc/kubernetes/manifests",
        "run unmount what is mounted under /var/lib/kubelet",
        "run empty /var/lib/kubelet",
        "run remove the certificates and keys in /etc/kubernetes/pki",
        "run remove the kubeconfig files in /etc/kubernetes",
        "notice",
        "notice",
    ]
    # the CNI config is cleanup-network's to name or remove (test_reset_network.py), not cleanup-node's
    assert not [s for s in steps["cleanup-node"] if isinstance(s, Notice) and "/etc/cni" in s.text]


def test_an_etcd_kubeinit_did_not_install_is_left_alone():
    steps, _ = plan(dataclasses.replace(FRESH, etcd=Unit("active", "enabled"), exists=frozenset({etcd.DATA_DIR})))
    cleanup = steps["cleanup-node"]
    assert not any(isinstance(s, Run) and "etcd" in " ".join(s.argv) for s in cleanup), scripted.brief(cleanup)
    assert any(isinstance(s, Notice) and "did not install" in s.text for s in cleanup)


def runs(steps) -> list[Run]:
    return [s for s in steps if isinstance(s, Run)]


def test_a_custom_cert_dir_loses_only_kubeinits_file_names():
    # what the host has: two of kubeinit's files, foreign ones beside them (not looked for),
    # and an etcd dir with one foreign file in it
    custom = dataclasses.replace(FRESH, certdir="/srv/k8s/pki", pki=("ca.key", "etcd/ca.key"), pki_etcd=Dir(False, 2))
    steps, _ = plan(custom, make_spec("/srv/k8s/pki"))
    cleanup = steps["cleanup-node"]
    assert [s.argv for s in runs(cleanup)] == [("rm", "-f", "--", "/srv/k8s/pki/ca.key", "/srv/k8s/pki/etcd/ca.key")]
    kept = [s.text for s in cleanup if isinstance(s, Notice) and "/srv/k8s/pki/etcd" in s.text]
    assert kept == ["/srv/k8s/pki/etcd holds files that are not kubeinit's: it is left, with them"]


def test_a_symlinked_cert_dir_is_resolved_on_the_host_and_only_its_names_go():
    linked = dataclasses.replace(FRESH, certdir="/data/real-pki", pki=("ca.crt", "sa.pub"))
    steps, facts = plan(linked, make_spec("/srv/pki-link"))
    assert RealPath("/srv/pki-link") in facts.declared and facts.round_trips == 0, "resolved with the other facts"
    assert "found: 2 certificate and key files in /data/real-pki" in steps["preflight"][0].message
    assert [s.argv for s in runs(steps["cleanup-node"])] == [
        ("rm", "-f", "--", "/data/real-pki/ca.crt", "/data/real-pki/sa.pub")
    ]


def test_an_etcd_subdir_that_is_a_symlink_is_not_followed():
    steps, _ = plan(dataclasses.replace(FRESH, pki=("ca.crt", "etcd/ca.key"), pki_etcd=Dir(True, 1)))
    cleanup = steps["cleanup-node"]
    assert [s.argv for s in runs(cleanup)] == [("rm", "-f", "--", "/etc/kubernetes/pki/ca.crt")]
    assert any(isinstance(s, Notice) and "/etc/kubernetes/pki/etcd is a symlink" in s.text for s in cleanup)


def test_a_kubelet_dir_that_resolves_elsewhere_is_left_with_a_notice():
    steps, _ = plan(dataclasses.replace(FRESH, kubeletdir="/etc", kubelet_dir=Dir(True, 90)))
    cleanup = steps["cleanup-node"]
    assert runs(cleanup) == [], scripted.brief(cleanup)
    assert any(isinstance(s, Notice) and "/var/lib/kubelet resolves to /etc" in s.text for s in cleanup)


def test_the_kubelet_dir_is_emptied_only_while_it_is_still_itself():
    steps, _ = plan(dataclasses.replace(FRESH, kubelet_dir=Dir(False, 3)))
    (run,) = runs(steps["cleanup-node"])
    script = run.argv[2]
    assert script.startswith('[ "$(realpath -- /var/lib/kubelet)" = /var/lib/kubelet ] || {')
    assert "find /var/lib/kubelet -mindepth 1" in script


def test_no_directory_but_the_kubelets_is_ever_emptied():
    steps, facts = plan(dataclasses.replace(CONVERGED, kubelet_dir=Dir(False, 3)))
    every = " ".join(" ".join(s.argv) for ss in steps.values() for s in runs(ss))
    assert every.count("find ") == 1 and "find /var/lib/kubelet " in every
    assert "rm -rf" not in every.replace("rm -rf --one-file-system -- /var/lib/etcd", "").replace(
        "-exec rm -rf --one-file-system -- {} +", ""
    )
    assert not any("find" in " ".join(f.argv()) for f in facts.declared), "nor does asking about them search a tree"


# (cert dir as given, as the host resolves it)
SYSTEM = [
    ("//", "/"),
    ("//etc", "/etc"),
    ("/etc/ssh", "/etc/ssh"),
    ("/root/.ssh", "/root/.ssh"),
    ("/home/alice", "/home/alice"),
    ("/var/lib/dpkg", "/var/lib/dpkg"),
    ("/srv/pki", "/etc"),
    ("/srv/pki", "/etc/ssh"),
    ("/etc/kubernetes/..", "/etc"),
    ("/etc/kubernetes", "/etc/kubernetes"),
    ("/var/lib", "/var/lib"),
    ("/home/alice/.ssh/k8s", "/home/alice/.ssh/k8s"),
    ("/usr/local", "/usr/local"),
    ("/usr/share/ca", "/usr/share/ca"),
    ("/boot", "/boot"),
]


@pytest.mark.parametrize("given,real", SYSTEM, ids=[f"{g}->{r}" for g, r in SYSTEM])
def test_a_cert_dir_that_resolves_to_a_system_dir_is_refused(given, real):
    # the host has kubeinit's file names there too: still nothing is planned
    there = dataclasses.replace(FRESH, certdir=real, pki=("ca.key", "etcd/ca.crt"), pki_etcd=Dir(False, 7))
    with pytest.raises(reset_guard.Refused) as e:
        plan(there, make_spec(given))
    msg = str(e.value)
    assert e.value.exit_code == 2 and e.value.resumable is False
    assert f"the cert dir {given!r}" in msg and "is a system directory" in msg and "nothing was reset" in msg
    assert (f"resolves to {real}" in msg) == (given != real)
    assert "--yes" not in msg


@pytest.mark.parametrize("real", ["/", "/etc", "/root", "/home/bob", "/root/.ssh"])
def test_a_kubeconfig_dir_that_resolves_to_a_system_dir_is_refused(real):
    there = dataclasses.replace(FRESH, kubeconfigdir=real, kubeconfigs=("admin.conf",))
    with pytest.raises(reset_guard.Refused, match="the kubeconfig dir '/srv/kc' .*is a system directory"):
        plan(there, kubeconfig_spec("/srv/kc"))


def kubeconfig_spec(d: str):
    return dataclasses.replace(make_spec(), kubeconfig_dir=d)  # as --kubeconfig-dir would set it


@pytest.mark.parametrize("bad", ["pki", "", "/srv/pki\n/etc"])
def test_a_cert_dir_that_is_not_one_absolute_path_is_refused_before_the_probe(bad):
    spec = make_spec()
    spec = dataclasses.replace(spec, pki=dataclasses.replace(spec.pki, cert_dir=bad))
    with pytest.raises(reset_guard.Refused, match="must be an absolute path"):
        plan(FRESH, spec)


@pytest.mark.parametrize(
    "d", ["/etc/kubernetes/pki", "/srv/k8s/pki", "/home/alice/k8s/pki", "/opt/kube/pki", "/var/lib/k8s/pki"]
)
def test_dirs_of_their_own_are_not_system_dirs(d):
    assert not reset_guard.system_dir(d)
    assert not reset_guard.system_dir("/etc/kubernetes", kubeconfigs=True)


# --------------------------------------------------------------------------
# the command line


def test_reset_refuses_without_yes_when_there_is_no_terminal(kubeinit_cli, tmp_path):
    r = kubeinit_cli("reset", "--cert-dir", str(tmp_path / "pki"), "--kubeconfig-dir", str(tmp_path), input="")
    assert r.returncode == 2, r.stderr
    assert "without confirmation: there is no terminal to ask on; pass --yes" in r.stderr
    assert r.stdout == ""


def test_reset_f_refuses_without_yes_before_any_host_is_contacted(kubeinit_cli, tmp_path):
    r = kubeinit_cli(
        "reset", "-f", cluster_file(tmp_path, 9, "127.0.0.1"), "--known-hosts", str(tmp_path / "kh"), input=""
    )
    assert r.returncode == 2, r.stderr
    assert r.stderr.strip() == (
        "error: not resetting cp1 without confirmation: there is no terminal to ask on; pass --yes"
    )
    assert r.stdout == ""


def test_reset_f_takes_its_dirs_from_the_file(kubeinit_cli, tmp_path):
    r = kubeinit_cli("reset", "-f", cluster_file(tmp_path), "--cert-dir", "/x/pki", "--yes")
    assert r.returncode == 2 and "drop --config, --cert-dir and --kubeconfig-dir" in r.stderr


def test_reset_dry_run_prints_the_plan_and_never_asks(kubeinit_cli, tmp_path):
    (tmp_path / "pki").mkdir()
    (tmp_path / "pki" / "ca.key").write_text("secret")
    (tmp_path / "admin.conf").write_text("secret")
    r = kubeinit_cli(
        "reset", "--dry-run", "--cert-dir", str(tmp_path / "pki"), "--kubeconfig-dir", str(tmp_path), input=""
    )
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


@pytest.mark.parametrize("given", ["//", "//etc", "/etc/ssh", "/root/.ssh", "/var/lib/dpkg", "etc-link"])
def test_reset_refuses_a_system_cert_dir_in_one_sentence_without_suggesting_yes(kubeinit_cli, tmp_path, given):
    if given == "etc-link":  # a symlink to /etc, resolved by this host's realpath
        (tmp_path / "etc-link").symlink_to("/etc")
        given = str(tmp_path / "etc-link")
    r = kubeinit_cli("reset", "--dry-run", "--cert-dir", given, "--kubeconfig-dir", str(tmp_path), input="")
    assert r.returncode == 2, r.stdout + r.stderr
    (line,) = r.stderr.strip().splitlines()
    assert line.startswith("error: vm: phase preflight failed at 'plan': the cert dir ") and "system directory" in line
    assert "--yes" not in line and "resume" not in line
    assert " rm " not in r.stdout and "find " not in r.stdout, r.stdout


# this host's fixed paths a real local reset would also clean: the real run below needs them absent
HOST_STATE = [etcd.UNIT, etcd.DATA_DIR, rs.ETCD_STAMP, etcd.APPLIED, rs.KUBELET_DIR, reset.MANIFESTS]


def test_a_real_local_reset_removes_only_kubeinits_names_through_a_symlinked_cert_dir(kubeinit_cli, tmp_path):
    import os

    if os.geteuid() != 0:
        pytest.skip("a real local reset runs as root")
    present = [p for p in HOST_STATE if os.path.lexists(p)]
    if present:
        pytest.skip(f"this host has cluster state a real reset would remove: {present}")
    pki, confs = tmp_path / "data" / "pki", tmp_path / "kube"
    (pki / "etcd").mkdir(parents=True)
    confs.mkdir()
    ours = [pki / f for f in rs.PKI_FILES] + [confs / f for f in rs.KUBECONFIG_FILES]
    foreign = [
        pki / "foreign.crt",
        pki / ".hidden",
        pki / "ca.crt.orig",
        pki / "notes" / "ca.key",
        confs / "config",
        confs / "admin.conf.bak",
        tmp_path / "data" / "ca.key",
    ]
    for p in ours + foreign:
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text("x")
    (pki / "apiserver.key").unlink()
    (pki / "apiserver.key").mkdir()  # a directory by one of kubeinit's names is not kubeinit's
    (pki / "sa.pub").unlink()
    (pki / "sa.pub").symlink_to(tmp_path / "data" / "ca.key")  # a symlink of kubeinit's goes, not its target
    (tmp_path / "pki-link").symlink_to(pki)
    args = ("reset", "--yes", "--cert-dir", str(tmp_path / "pki-link"), "--kubeconfig-dir", str(confs))

    r = kubeinit_cli(*args)
    assert r.returncode == 0, r.stdout + r.stderr
    left = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*") if "kubeinit-home" not in str(p))
    assert left == sorted(
        [
            "data",
            "data/pki",
            "data/pki/apiserver.key",
            "data/pki/foreign.crt",
            "data/pki/.hidden",
            "data/pki/ca.crt.orig",
            "data/pki/notes",
            "data/pki/notes/ca.key",
            "kube",
            "kube/config",
            "kube/admin.conf.bak",
            "data/ca.key",
            "pki-link",
        ]
    ), "only kubeinit's names went"
    assert f"remove the certificates and keys in {pki}" in r.stdout and f"remove the empty {pki}/etcd" in r.stdout

    again = kubeinit_cli(*args)
    assert again.returncode == 0 and "(0 changed)" in again.stdout, again.stdout


def test_the_facts_reset_reads_run_in_this_machines_shell(tmp_path):
    """Reset's facts over this machine's shell: kubeinit's names only, a directory by such a name
    is not one, a symlink is, and a symlinked etcd dir says so."""
    pki = tmp_path / "pki"
    (pki / "etcd").mkdir(parents=True)
    (pki / "ca.crt").write_text("x")
    (pki / "ca.key").mkdir()  # a directory by one of kubeinit's names is not kubeinit's
    (pki / "sa.pub").symlink_to(tmp_path / "nowhere")  # a symlink of kubeinit's name is, even dangling
    (pki / "foreign.crt").write_text("x")
    (pki / "etcd" / ".hidden").write_text("x")
    (tmp_path / "etcd-link").symlink_to(pki / "etcd")
    facts = Facts(LocalConnection())
    asked = [
        Named(str(pki), rs.PKI_FILES),
        Directory(str(pki / "etcd")),
        Directory(str(tmp_path / "etcd-link")),
        Directory(str(pki / "ca.crt")),
        Directory(str(tmp_path / "missing")),
        MountsUnder(str(tmp_path)),
        PodSandboxes(),
        RealPath(str(tmp_path / "etcd-link" / "..")),
    ]
    facts.gather(asked)
    assert facts.get(asked[0]) == ("ca.crt", "sa.pub")
    assert [facts.get(f) for f in asked[1:6]] == [Dir(False, 1), Dir(True, 1), None, None, 0]
    assert facts.get(PodSandboxes()) >= 0
    assert facts.get(asked[-1]) == str(pki)
    # a name printed that was not asked is not an answer (a file named by a newline, say)
    assert Named("/d", ("ca.crt",)).parse(Result(0, b"ca.crt\n../../etc/passwd\n", b"")) == ("ca.crt",)
