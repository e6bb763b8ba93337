"""More control planes in `up`: the join tree's control-plane phases over facts given parsed
(FactsStub), the executor's serial phases, and reset's remove-etcd-member.

Three control planes n1 (first), n2, n3 behind api.example.com:6443: the shared CAs come from n1's
files as this run plans them, each joining host makes its own certificates, joins etcd through the
members before it, and a joined host only skips.
"""

from __future__ import annotations

import base64
import threading

import pytest
import scripted
import yaml
from cryptography import x509
from factsstub import FactsStub
from test_apply import MemoryHost, View
from test_apply import make as make_ctx
from test_etcd_plan import FRESH, cert_files
from test_etcd_plan import ScriptedHost as EtcdHost

from kubeinit import spec as specmod
from kubeinit.apply import execute, unavailable
from kubeinit.certs import catalogue
from kubeinit.certs.pki import plan_pki
from kubeinit.connection import Result
from kubeinit.context import Context, Options, Target
from kubeinit.errors import KubeinitError, NotAvailableYet
from kubeinit.facts import _READ_MANY as READ_MANY
from kubeinit.facts.etcd import EtcdMembers, Member, Members
from kubeinit.facts.host import Exists
from kubeinit.phases import PhaseImpl, certs, cp_prepare, etcd, etcd_join, join
from kubeinit.redact import Secret
from kubeinit.steps import Run, Skip, Upload
from kubeinit.workflow import ALL, Phase, up_phases

PKI = "/etc/kubernetes/pki"
HOSTS = [
    {"name": "n1", "address": "10.0.0.1", "role": "control-plane"},
    {"name": "n2", "address": "10.0.0.2", "role": "control-plane"},
    {"name": "n3", "address": "10.0.0.3", "role": "control-plane"},
    {"name": "w1", "address": "10.0.0.4", "role": "worker"},
]


def make_spec():
    return specmod.from_dict(
        {
            "apiVersion": specmod.API_VERSION,
            "kind": "Cluster",
            "name": "ha",
            "kubernetesVersion": "v1.32.5",
            "controlPlaneEndpoint": "api.example.com:6443",
            "hosts": HOSTS,
            "artifacts": {"etcd": {"version": "3.5.17", "sha256": "e" * 64}},
        }
    )


@pytest.fixture(scope="module")
def shared_pki() -> dict[str, bytes]:
    """The CAs and keys the first control plane's certs phase makes (kubeinit's own PKI code)."""
    spec = make_spec()
    plan = plan_pki(certs.pki_config(spec, spec.hosts[0]), {}, only=["ca", "front-proxy-ca", "etcd-ca", "sa"])
    return {f.path: f.content for f in plan.files}


class Bare(scripted.FilesHost):
    """A host whose files are `files` (path -> (content, mode)): their digests, and what reading
    them (Facts.read_many, one round trip) prints; any other command is an error."""

    def __init__(self, files: dict[str, tuple[bytes, int]]):
        super().__init__(scripted.contents(files))
        self.data = {p: c for p, (c, _) in files.items()}

    def _one(self, argv):
        if argv[:3] == ["sh", "-c", READ_MANY]:
            asked = [p for p in argv[4:] if p in self.data]
            out = "".join(f"F {p} {base64.b64encode(self.data[p]).decode()}\n" for p in asked)
            return Result(0, out.encode(), b"")
        return super()._one(argv)


def context(shared: dict[str, bytes], joined: dict[str, dict] | None = None) -> Context:
    """n1 holds `shared` (planned by this run's certs phase: no host is read); the others are fresh,
    or hold the files `joined` gives them (path -> (content, mode))."""
    spec = make_spec()
    targets = []
    for h in spec.hosts:
        facts = FactsStub({}, conn=Bare((joined or {}).get(h.name, {})))
        t = Target(h, lambda host, conn=facts.conn: conn, facts=facts)
        if h.name == "n1":
            for rel, data in shared.items():
                t.facts.plan_write(f"{PKI}/{rel}", data, 0o600 if rel.endswith(".key") else 0o644)
        targets.append(t)
    return Context(spec, targets, Options())


def target(ctx: Context, name: str) -> Target:
    return next(t for t in ctx.targets if t.name == name)


# --- the tree ------------------------------------------------------------------------------


def test_up_with_three_control_planes_has_every_phase_built_and_the_right_hosts():
    spec = make_spec()
    phases = [p for top in up_phases() for p in top.leaves()]
    assert unavailable(phases, spec) == []
    ctx = Context(spec, [Target(h, lambda h: None) for h in spec.hosts], Options())
    hosts = {p.path: [t.name for t in ctx.targets_for(p)] for p in phases}
    for path in ("certs/ca", "etcd/local", "control-plane/apiserver", "kubelet-start"):
        assert hosts[path] == ["n1"], path
    for path in ("join/control-plane-prepare/download-certs", "join/control-plane-join/etcd"):
        assert hosts[path] == ["n2", "n3"], path
    assert hosts["join/kubelet-start"] == ["n2", "n3", "w1"]
    assert (
        [p.path for p in phases].index("join/control-plane-prepare/control-plane")
        < [p.path for p in phases].index("join/kubelet-start")
        < [p.path for p in phases].index("join/control-plane-join/etcd")
    )
    assert etcd_join.ETCD.serial, "etcd members join one at a time"


def test_the_run_token_is_made_while_a_control_plane_has_to_join():
    ctx = context({})
    assert [t.name for t in join.joining_targets(ctx)] == ["n2", "n3", "w1"]


# --- control-plane-prepare ------------------------------------------------------------------


def test_download_certs_copies_the_first_control_planes_shared_files(shared_pki):
    ctx = context(shared_pki)
    steps = list(cp_prepare.plan_download_certs(ctx, target(ctx, "n2")))
    ups = {s.path: s for s in steps if isinstance(s, Upload)}
    assert set(ups) == {f"{PKI}/{rel}" for rel in cp_prepare.SHARED}
    for rel, mode in cp_prepare.SHARED.items():
        up = ups[f"{PKI}/{rel}"]
        assert up.data == shared_pki[rel] and up.mode == mode, rel
        assert isinstance(up.content, Secret) == (mode == 0o600), "keys never print (sa.pub is 0600 too, as certs')"
    assert "<secret>" in ups[f"{PKI}/ca.key"].describe()


def test_download_certs_skips_what_the_host_has_and_refuses_another_clusters_ca(shared_pki):
    have = {f"{PKI}/{rel}": (shared_pki[rel], mode) for rel, mode in cp_prepare.SHARED.items()}
    ctx = context(shared_pki, {"n2": have})
    assert all(isinstance(s, Skip) for s in cp_prepare.plan_download_certs(ctx, target(ctx, "n2")))
    other = {**have, f"{PKI}/ca.crt": (b"another cluster's CA", 0o644)}
    ctx = context(shared_pki, {"n2": other})
    with pytest.raises(KubeinitError, match=r"/ca.crt on this host is not the cluster's \(the one on n1\)"):
        list(cp_prepare.plan_download_certs(ctx, target(ctx, "n2")))


def test_download_certs_says_to_run_certs_first_when_the_first_has_no_ca():
    ctx = context({})
    with pytest.raises(KubeinitError, match="n1 has no /etc/kubernetes/pki/ca.crt to share: run the certs phase"):
        list(cp_prepare.plan_download_certs(ctx, target(ctx, "n2")))


def test_outside_up_the_shared_certificates_are_not_available_yet():
    spec = make_spec()
    ctx = Context(spec, [Target(spec.hosts[1], lambda h: None, facts=FactsStub({}))], Options())
    with pytest.raises(NotAvailableYet, match="kubeadm-certs"):
        list(cp_prepare.plan_download_certs(ctx, ctx.targets[0]))


def _prepared(shared_pki) -> tuple[Context, dict[str, Upload]]:
    ctx = context(shared_pki)
    n2 = target(ctx, "n2")
    steps = [
        *cp_prepare.plan_download_certs(ctx, n2),
        *cp_prepare.plan_certs(ctx, n2),
        *cp_prepare.plan_kubeconfigs(ctx, n2),
    ]
    return ctx, {s.path: s for s in steps if isinstance(s, Upload)}


def test_each_joining_control_plane_makes_its_own_certificates_signed_by_the_shared_cas(shared_pki):
    _, ups = _prepared(shared_pki)
    ca = x509.load_pem_x509_certificate(shared_pki["ca.crt"])
    etcd_ca = x509.load_pem_x509_certificate(shared_pki["etcd/ca.crt"])
    for rel, issuer, ip in (
        ("apiserver", ca, "10.0.0.2"),
        ("etcd/server", etcd_ca, "10.0.0.2"),
        ("etcd/peer", etcd_ca, "10.0.0.2"),
    ):
        cert = x509.load_pem_x509_certificate(ups[f"{PKI}/{rel}.crt"].data)
        assert cert.issuer == issuer.subject, rel
        sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        assert ip in {str(a) for a in sans.get_values_for_type(x509.IPAddress)}, rel
        assert "n2" in sans.get_values_for_type(x509.DNSName), rel
    apiserver = x509.load_pem_x509_certificate(ups[f"{PKI}/apiserver.crt"].data)
    assert "api.example.com" in apiserver.extensions.get_extension_for_class(
        x509.SubjectAlternativeName
    ).value.get_values_for_type(x509.DNSName)
    made = {p.removeprefix(f"{PKI}/") for p in ups if p.startswith(PKI)} - set(cp_prepare.SHARED)
    assert made == {p for n in cp_prepare.NODE_CERTS for p in (catalogue.BY_NAME[n].crt, catalogue.BY_NAME[n].key)}
    assert all(isinstance(ups[f"{PKI}/{p}"].content, Secret) for p in made if p.endswith(".key"))


def test_admin_conf_points_at_the_endpoint_and_the_components_at_this_host(shared_pki):
    _, ups = _prepared(shared_pki)
    assert set(p for p in ups if p.endswith(".conf")) == {
        "/etc/kubernetes/admin.conf",
        "/etc/kubernetes/controller-manager.conf",
        "/etc/kubernetes/scheduler.conf",
    }

    def server(path: str) -> str:
        return yaml.safe_load(ups[path].data)["clusters"][0]["cluster"]["server"]

    assert server("/etc/kubernetes/admin.conf") == "https://api.example.com:6443"
    assert server("/etc/kubernetes/scheduler.conf") == "https://10.0.0.2:6443"


# --- control-plane-join/etcd -----------------------------------------------------------------


@pytest.fixture
def empty_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("KUBEINIT_HOME", str(tmp_path / "home"))


def join_plan(name: str, member_dir: bool = False) -> list:
    """control-plane-join/etcd on a host with its etcd certificates (test_etcd_plan's host double)."""
    spec = make_spec()
    host = next(h for h in spec.hosts if h.name == name)
    double = EtcdHost(FRESH, files=cert_files())
    given = {**double.typed(), Exists((etcd.MEMBER_DIR,)): frozenset({etcd.MEMBER_DIR} if member_dir else ())}
    facts = FactsStub(given, conn=double)
    t = Target(host, lambda h: double, facts=facts)
    ctx = Context(spec, [t], Options())
    declared = etcd_join.ETCD.facts(ctx, t)
    facts.gather(declared)
    facts.declared = set(declared)  # the plan asks nothing else
    return list(etcd_join.plan_etcd_join(ctx, t))


def test_a_fresh_control_plane_is_added_to_etcd_before_its_etcd_starts(empty_cache):
    steps = join_plan("n3")
    brief = scripted.brief(steps)
    add = "run add n3 to etcd as a member (through https://10.0.0.1:2379, https://10.0.0.2:2379)"
    assert brief.index(f"upload {etcd.UNIT}") < brief.index(add)
    assert brief[-3:] == [
        add,
        "run start etcd 3.5.17 as the new member",
        "run wait until etcd answers its health check (up to 60 s)",
    ]
    script = next(s for s in steps if isinstance(s, Run) and s.note.startswith("add n3")).argv[2]
    assert "--endpoints=https://10.0.0.1:2379,https://10.0.0.2:2379" in script
    assert "member add n3 --peer-urls=https://10.0.0.3:2380" in script
    assert f"--cert={PKI}/apiserver-etcd-client.crt" in script and "--cacert=" in script
    assert f"> {etcd.JOIN_ENV}.tmp" in script and "ETCD_INITIAL_CLUSTER(_STATE)?=" in script
    unit = next(s for s in steps if isinstance(s, Upload) and s.path == etcd.UNIT).data.decode()
    assert f"EnvironmentFile={etcd.JOIN_ENV}" in unit and "--initial-cluster=" not in unit
    assert "--initial-advertise-peer-urls=https://10.0.0.3:2380" in unit


def test_a_joined_control_plane_is_never_added_again(empty_cache):
    steps = join_plan("n2", member_dir=True)
    assert not any(isinstance(s, Run) and s.note.startswith("add ") for s in steps), scripted.brief(steps)


# --- the executor's serial phases -------------------------------------------------------------


def test_a_serial_phase_plans_each_host_after_the_one_before_is_applied():
    hosts = [MemoryHost("a"), MemoryHost("b"), MemoryHost("c")]
    order: list[str] = []
    lock = threading.Lock()

    def plan(ctx, t):
        with lock:
            order.append(f"plan {t.name} after {sorted(h.name for h in hosts if h.ran and ['mark'] in h.ran)}")
        yield Run(("mark",))

    serial = Phase("s", "s", PhaseImpl(plan, serial=True), ALL, path="s")
    execute(make_ctx(hosts), [serial], View())
    assert order == ["plan a after []", "plan b after ['a']", "plan c after ['a', 'b']"]


def test_a_serial_phase_stops_at_the_first_failed_host():
    hosts = [MemoryHost("a", fail_on="mark"), MemoryHost("b")]
    serial = Phase("s", "s", PhaseImpl(lambda ctx, t: iter([Run(("mark",))]), serial=True), ALL, path="s")
    with pytest.raises(Exception, match="a: phase s failed"):
        execute(make_ctx(hosts), [serial], View())
    assert ["mark"] not in hosts[1].ran


# --- reset's remove-etcd-member ----------------------------------------------------------------


def remove_plan(members: Members, name: str = "n3") -> list:
    from kubeinit.phases import reset
    from kubeinit.phases.reset_state import ETCD_FILES

    spec = make_spec()
    ctx = Context(spec, [], Options())
    fact = reset.REMOVE_ETCD_MEMBER.facts(ctx, None)[1]
    assert isinstance(fact, EtcdMembers) and fact.endpoint == "https://127.0.0.1:2379"
    facts = FactsStub({ETCD_FILES: frozenset({etcd.UNIT}), fact: members})
    t = Target(next(h for h in spec.hosts if h.name == name), lambda h: facts.conn, facts=facts)
    return list(reset.plan_remove_etcd_member(Context(spec, [t], Options()), t))


THREE = Members(tuple(Member(f"{i}a", f"n{i}", (f"https://10.0.0.{i}:2380",)) for i in (1, 2, 3)))


def test_reset_removes_this_control_planes_member_first():
    (step,) = remove_plan(THREE)
    assert isinstance(step, Run) and step.argv[-3:] == ("member", "remove", "3a")
    assert "--endpoints=https://127.0.0.1:2379" in step.argv and "2 members stay" in step.note


def test_reset_leaves_the_only_member_to_cleanup_and_says_when_etcd_cannot_be_asked():
    (step,) = remove_plan(Members((THREE.members[2],)))
    assert isinstance(step, Skip) and "one member" in step.reason
    (step,) = remove_plan(Members(error="context deadline exceeded"))
    assert "context deadline exceeded" in step.text and "etcdctl member remove" in step.text


def test_member_list_is_read_from_etcdctls_json():
    from kubeinit.connection import Result

    fact = EtcdMembers("/usr/local/bin/etcdctl", "https://127.0.0.1:2379", "ca", "crt", "key")
    out = b'{"header":{},"members":[{"ID":10276657743932975437,"name":"n1","peerURLs":["https://10.0.0.1:2380"]},{"ID":1,"peerURLs":["https://10.0.0.3:2380"]}]}'
    got = fact.parse(Result(0, out, b""))
    assert got.members[0].id == "8e9e05c52164694d" and got.members[1].name == ""
    assert got.find("n3", "https://10.0.0.3:2380") == got.members[1], "an unstarted member is found by its peer URL"
    assert fact.parse(Result(1, b"", b"Error: context deadline exceeded\n")).error == "Error: context deadline exceeded"


# --- the member-add script, in this machine's shell, against a stand-in etcdctl ---------------

FAKE_ETCDCTL = """#!/bin/sh
# prints what etcdctl 3.4 prints for member list/remove/add; refuses the first $REFUSE adds
echo "$*" >> "$LOG"
for a; do last=$a; done
case "$*" in
*"member list"*) cat "$LIST";;
*"member remove"*) echo "Member $last removed from cluster 83402c3d45c3a7fa";;
*"member add"*)
  n=$(grep -c "member add" "$LOG")
  if [ "$n" -le "$REFUSE" ]; then echo "Error: etcdserver: unhealthy cluster" >&2; exit 1; fi
  printf 'Member 8f0d582e8fca6002 added to cluster 83402c3d45c3a7fa\\n\\nETCD_NAME="n3"\\n'
  printf 'ETCD_INITIAL_CLUSTER="n1=https://10.0.0.1:2380,n2=https://10.0.0.2:2380,n3=https://10.0.0.3:2380"\\n'
  printf 'ETCD_INITIAL_ADVERTISE_PEER_URLS="https://10.0.0.3:2380"\\nETCD_INITIAL_CLUSTER_STATE="existing"\\n';;
esac
"""


def run_add_script(tmp_path, listed: str, refuse: int = 0):
    import os
    import subprocess

    fake, log, members = tmp_path / "etcdctl", tmp_path / "log", tmp_path / "list"
    fake.write_text(FAKE_ETCDCTL)
    fake.chmod(0o755)
    members.write_text(listed)
    spec = make_spec()
    ctx = Context(spec, [], Options())
    script = etcd_join.add_member_script(ctx, Target(spec.hosts[2], lambda h: None))
    script = script.replace(etcd.ETCDCTL, str(fake)).replace("/var/lib/kubeinit", str(tmp_path / "state"))
    script = script.replace("sleep 2", "sleep 0")
    env = {**os.environ, "LOG": str(log), "LIST": str(members), "REFUSE": str(refuse)}
    r = subprocess.run(["sh", "-c", script], capture_output=True, text=True, env=env, timeout=30, check=False)
    calls = log.read_text().splitlines() if log.exists() else []
    joined = tmp_path / "state" / "etcd-join.env"
    return r, calls, joined.read_text() if joined.exists() else None


STARTED = "8e9e05c52164694d, started, n1, https://10.0.0.1:2380, https://10.0.0.1:2379, false\n"
STARTED += "91bc3c398fb3c146, started, n2, https://10.0.0.2:2380, https://10.0.0.2:2379, false\n"


def test_the_add_script_keeps_the_cluster_that_add_printed(tmp_path):
    r, calls, env = run_add_script(tmp_path, STARTED, refuse=2)
    assert r.returncode == 0, r.stderr
    assert [c.split(" member ")[1] for c in calls] == [
        "list",
        "add n3 --peer-urls=https://10.0.0.3:2380",
        "add n3 --peer-urls=https://10.0.0.3:2380",
        "add n3 --peer-urls=https://10.0.0.3:2380",
    ], "refused while the member before is starting: asked again"
    assert env == (
        'ETCD_INITIAL_CLUSTER="n1=https://10.0.0.1:2380,n2=https://10.0.0.2:2380,n3=https://10.0.0.3:2380"\n'
        'ETCD_INITIAL_CLUSTER_STATE="existing"\n'
    )


def test_a_member_left_by_a_stopped_run_is_removed_and_added_anew(tmp_path):
    stale = STARTED + "a8266ecf031671f3, unstarted, , https://10.0.0.3:2380, , false\n"
    r, calls, env = run_add_script(tmp_path, stale)
    assert r.returncode == 0, r.stderr
    assert [c.split(" member ")[1] for c in calls] == [
        "list",
        "remove a8266ecf031671f3",
        "add n3 --peer-urls=https://10.0.0.3:2380",
    ]
    assert env is not None and "ETCD_INITIAL_CLUSTER_STATE" in env


def test_an_add_refused_for_good_fails_with_etcds_words_and_writes_nothing(tmp_path):
    r, _, env = run_add_script(tmp_path, STARTED, refuse=etcd_join.ADD_TRIES)
    assert r.returncode != 0 and "etcdserver: unhealthy cluster" in r.stderr
    assert env is None
