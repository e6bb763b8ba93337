"""etcd/local: etcd as a systemd service on the control-plane host, with kubeadm's flags
and TLS layout (kubeadm calls this external etcd; the flags are its stacked etcd's).

The plan, and why it has this shape (runtime.py's, through install.py):
1. Download the release archive where kubeinit runs, verified, before touching the host.
2. Stage it on the host and install etcd and etcdctl into /usr/local/bin with kubeinit's
   installer, which stamps their fingerprints: a re-run checks them by stat.
3. The unit through ensure_file; the data dir 0700 (etcd refuses looser since 3.4.10).
4. (Re)start only when the binary, the unit or the certificates etcd reads changed since
   etcd was last started healthy (APPLIED), then wait, bounded, until it answers a health
   check over mTLS; only then is APPLIED written, so a failed start is retried next run.

The certificates come from the certs phase (they are made where kubeinit runs and
uploaded); this phase only checks that they are there and what they hash to.
"""

from __future__ import annotations

import ipaddress
import posixpath
import re
from collections.abc import Iterator

from kubeinit import artifacts
from kubeinit.context import Context, Target, ensure_file
from kubeinit.errors import KubeinitError, NotAvailableYet
from kubeinit.facts import Fact, files
from kubeinit.facts.host import Arch, Exists, Mode, Stamps, UnitState
from kubeinit.hostops import install, systemd
from kubeinit.hostops.install import INSTALL_SCRIPT, INSTALLER, STAGING, STATE
from kubeinit.phases import PhaseImpl
from kubeinit.render import render
from kubeinit.steps import Run, Skip, Step, Upload

BIN = "/usr/local/bin"
ETCD = f"{BIN}/etcd"
ETCDCTL = f"{BIN}/etcdctl"
UNIT = "/etc/systemd/system/etcd.service"
DATA_DIR = "/var/lib/etcd"
APPLIED = f"{STATE}/etcd.applied"
# A joining member's --initial-cluster and --initial-cluster-state, as `etcdctl member add` printed
# them (etcd reads ETCD_* variables as flags): the members at the time it joined, which no re-run
# can compute again, so they stay out of the unit.
JOIN_ENV = f"{STATE}/etcd-join.env"
MEMBER_DIR = f"{DATA_DIR}/member"  # etcd has joined a cluster once this exists
CLIENT_PORT, PEER_PORT, METRICS = 2379, 2380, "http://127.0.0.1:2381"
HEALTH_SECONDS = 60
# The files etcd reads, relative to the cert dir (kubeadm's layout, §2), and the client
# certificate the health check uses.
CERTS = ("etcd/ca.crt", "etcd/server.crt", "etcd/server.key", "etcd/peer.crt", "etcd/peer.key")
HEALTHCHECK = ("etcd/healthcheck-client.crt", "etcd/healthcheck-client.key")

# Why etcd is not up; its error lines: "flag provided but not defined" (then its usage), and
# error/fatal lines in both of etcd's log formats.
WHY = systemd.why("etcd", 'flag provided|^[0-9-]+ [0-9:.]+ [CE] [|]|"level":"(error|fatal|panic)"')

# (Re)start etcd on what is on disk now. Type=notify: the restart returns once etcd serves,
# and fails at once when etcd exits (an unknown flag, a bad certificate): show why.
RESTART = (
    f"{WHY}set -e; mkdir -p {DATA_DIR}; chmod 0700 {DATA_DIR}; systemctl daemon-reload; systemctl enable -q etcd; "
    "systemctl restart etcd || { why; exit 1; }"
)


def cert_paths(ctx: Context) -> list[str]:
    return [posixpath.join(ctx.cert_dir, rel) for rel in (*CERTS, *HEALTHCHECK)]


def compared(ctx: Context) -> list[str]:
    return [UNIT, APPLIED, INSTALLER, STAGING + "/", *cert_paths(ctx)]


def preload() -> None:
    from kubeinit import render as r

    r.warm("etcd/etcd.service.j2")


def facts(ctx: Context, target: Target) -> list[Fact]:
    return [Arch(), UnitState("etcd"), Stamps(), Mode(DATA_DIR), *files(compared(ctx))]


def join_facts(ctx: Context, target: Target) -> list[Fact]:
    return [*facts(ctx, target), Exists((MEMBER_DIR,))]


def _version(v: str) -> tuple[int, int]:
    m = re.match(r"v?(\d+)\.(\d+)", v)
    return (int(m.group(1)), int(m.group(2))) if m else (0, 0)


def peer_url(address: str) -> str:
    return f"https://{f'[{address}]' if ':' in address else address}:{PEER_PORT}"


def client_url(address: str) -> str:
    return f"https://{f'[{address}]' if ':' in address else address}:{CLIENT_PORT}"


def flags(ctx: Context, target: Target, version: str, joining: bool = False) -> dict[str, str]:
    """kubeadm's etcd arguments (§5.5), then components.etcd.extraArgs: a name given there
    replaces kubeadm's value, as kubeadm does. The first member starts a cluster of itself; a
    `joining` one takes the cluster from JOIN_ENV."""
    name, adv = target.host.name, target.host.address
    pki = posixpath.join(ctx.cert_dir, "etcd")
    a = f"[{adv}]" if ":" in adv else adv
    client, peer = f"https://{a}:{CLIENT_PORT}", f"https://{a}:{PEER_PORT}"
    f = {
        "name": name,
        "data-dir": DATA_DIR,
        "listen-client-urls": f"https://127.0.0.1:{CLIENT_PORT},{client}",
        "advertise-client-urls": client,
        "listen-peer-urls": peer,
        "initial-advertise-peer-urls": peer,
        "initial-cluster": f"{name}={peer}",
        "cert-file": f"{pki}/server.crt",
        "key-file": f"{pki}/server.key",
        "trusted-ca-file": f"{pki}/ca.crt",
        "client-cert-auth": "true",
        "peer-cert-file": f"{pki}/peer.crt",
        "peer-key-file": f"{pki}/peer.key",
        "peer-trusted-ca-file": f"{pki}/ca.crt",
        "peer-client-cert-auth": "true",
        "snapshot-count": "10000",
        "listen-metrics-urls": METRICS,
    }
    # By the etcd actually run, not the Kubernetes version: 3.6 dropped these experimental-*
    # flags for feature gates, and etcd exits on a flag it does not know. 3.4 and 3.5 accept both.
    if _version(version) >= (3, 6):
        f |= {"feature-gates": "InitialCorruptCheck=true", "watch-progress-notify-interval": "5s"}
    else:
        f |= {"experimental-initial-corrupt-check": "true", "experimental-watch-progress-notify-interval": "5s"}
    if joining:
        del f["initial-cluster"]
    f |= ctx.spec.extra_args.get("etcd", {})
    return dict(sorted(f.items()))  # kubeadm sorts its arguments by name


def _systemd_arg(text: str) -> str:
    """One ExecStart word: systemd expands % and $ and splits on blanks; keep the value as given."""
    text = text.replace("%", "%%").replace("$", "$$")
    if re.search(r"[\s\"'\\;]", text):
        text = '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return text


def unit(ctx: Context, target: Target, version: str, arch: str, joining: bool = False) -> str:
    args = [_systemd_arg(f"--{k}={v}") for k, v in flags(ctx, target, version, joining).items()]
    # etcd before 3.5 refuses to start on arm64 unless told it is on purpose.
    env = [("ETCD_UNSUPPORTED_ARCH", arch)] if arch != "amd64" and _version(version) < (3, 5) else []
    return render(
        "etcd/etcd.service.j2",
        etcd_version=version,
        etcd=ETCD,
        args=args,
        env=env,
        env_file=JOIN_ENV if joining else "",
    )


def health_script(ctx: Context, watched: list[str]) -> str:
    """Wait until etcd answers a health check over mTLS (bounded), then record what it runs with."""
    pki = posixpath.join(ctx.cert_dir, "etcd")
    check = (
        f"ETCDCTL_API=3 {ETCDCTL} --endpoints=https://127.0.0.1:{CLIENT_PORT} --cacert={pki}/ca.crt "
        f"--cert={pki}/healthcheck-client.crt --key={pki}/healthcheck-client.key --command-timeout=3s "
        "endpoint health"
    )
    return (
        f"{WHY}i=0; until out=$({check} 2>&1); do i=$((i+1)); if [ $i -ge {HEALTH_SECONDS} ]; then "
        f'echo "$out" >&2; why; '
        f'echo "etcd did not become healthy within {HEALTH_SECONDS} s (its log is above)" >&2; exit 1; fi; '
        "sleep 1; done; "
        "set -e; "
        + install.write_record(
            APPLIED, f'echo "$(stat -c {install.FINGERPRINT} {ETCD})  {ETCD}"; sha256sum {" ".join(watched)}'
        )
    )


def plan_etcd(ctx: Context, target: Target, join: Step | None = None) -> Iterator[Step]:
    """etcd on this host: the first member of a new cluster, or with `join` (the step that adds this
    member to the cluster and writes JOIN_ENV, kubeinit.phases.etcd_join) a member joining one."""
    spec, facts = ctx.spec, target.facts
    try:
        ipaddress.ip_address(target.host.address)
    except ValueError:
        raise KubeinitError(
            f"{target.name}: etcd listens on the host's address, and {target.host.address!r} is a "
            "name; give the host's IP address as its address"
        ) from None
    art = spec.artifact("etcd")
    if not art.enabled:
        raise NotAvailableYet(
            "artifacts.etcd.enabled: false (an etcd installed by you)", "leave etcd enabled, or skip the etcd phase"
        )
    stamps, service = facts.get(Stamps()), facts.get(UnitState("etcd"))
    active, enabled = service.active, service.enabled
    facts.prefetch(compared(ctx))  # gathered with the probe already, when the executor ran this phase

    missing = [path for path in cert_paths(ctx) if facts.file(path) is None]
    if missing:
        what = (
            f"etcd certificates in {posixpath.join(ctx.cert_dir, 'etcd')}"
            if len(missing) == len(cert_paths(ctx))
            else ", ".join(missing)
        )
        raise KubeinitError(
            f"this host has no {what}: run the certs phase first (`kubeinit up --only certs`), then this one"
        )

    arch = install.host_arch(spec, target.name, facts.get(Arch()))
    rel = artifacts.release(spec, "etcd", arch)
    notices: list[Step] = []
    digest = install.expected_sha256(ctx, rel, notices)
    yield from notices
    todo = not install.installed(stamps.get("etcd"), digest)

    # What etcd would run with now, before this plan changes anything; what it last ran healthy with.
    watched = [UNIT, *(posixpath.join(ctx.cert_dir, rel_) for rel_ in (*CERTS, *HEALTHCHECK))]
    now = {
        ETCD: None if todo else stamps["etcd"].files.get(ETCD),
        **{path: (f.sha256 if (f := facts.file(path)) else None) for path in watched},
    }

    # 1. download, before the host is changed
    if todo:
        yield from install.download(rel, digest)
    # 2. binaries
    if todo:
        yield from ensure_file(target, INSTALLER, INSTALL_SCRIPT, 0o755, "kubeinit's archive installer")
        yield from install.install_archive(
            rel, digest, f"etcd-v{rel.version.lstrip('v')}-linux-{arch}", BIN, facts, names=("etcd", "etcdctl")
        )
    else:
        yield Skip(f"{rel.label} is installed")
    # 3. unit and data dir
    changed = False
    for step in ensure_file(target, UNIT, unit(ctx, target, art.version, arch, join is not None), 0o644, "etcd unit"):
        changed |= isinstance(step, Upload)
        if isinstance(step, Upload):
            now[UNIT] = step.sha256
        yield step
    # 4. the service
    pending = install.restart_pending(facts, APPLIED, now)
    health = Run(
        ("sh", "-c", health_script(ctx, watched)),
        timeout=HEALTH_SECONDS + 60,
        note=f"wait until etcd answers its health check (up to {HEALTH_SECONDS} s)",
    )
    if join is not None and MEMBER_DIR not in facts.get(Exists((MEMBER_DIR,))):
        yield join
        yield Run(("sh", "-c", RESTART), note=f"start etcd {art.version} as the new member")
        yield health
    elif changed or todo or pending:
        yield Run(("sh", "-c", RESTART), note=f"(re)start etcd {art.version} on its new binary/unit/certificates")
        yield health
    elif active != "active" or enabled != "enabled" or facts.get(Mode(DATA_DIR)) != 0o700:
        yield Run(
            ("sh", "-c", f"mkdir -p {DATA_DIR}; chmod 0700 {DATA_DIR}; systemctl enable -q --now etcd"),
            note="start etcd (enabled, its data dir 0700)",
        )
        yield health
    else:
        yield Skip(f"etcd {art.version} is enabled, running and was healthy with this binary, unit and certificates")


LOCAL = PhaseImpl(plan_etcd, facts, preload=preload)
