"""kubelet-start: the kubelet's configuration, kubeadm's way, and the kubelet (re)started on it.

kubeadm writes /var/lib/kubelet/config.yaml and kubeadm-flags.env and restarts the kubelet;
the unit and its 10-kubeadm.conf drop-in come from Kubernetes' packages. kubeinit installs
the kubelet from the release binary (no package), so it writes all four, with the same
contents and paths: kubeadm's docs (KUBELET_EXTRA_ARGS in /etc/default/kubelet, the env file)
still apply.

Better than kubeadm in two ways users ask for:
- the kubelet is restarted only when its binary, one of these files or its kubeconfig changed
  since it was last started (APPLIED, as for containerd and etcd), so a re-run leaves a
  running kubelet alone, and a run killed before the restart restarts it next time;
- `--node-ip` is the host's address from the cluster file when that address is one of the
  host's own: on a host with two interfaces (Vagrant's NAT and private network) the kubelet
  would otherwise register the address of the default route. extraArgs can still override it.
"""

from __future__ import annotations

import json
import posixpath
import re
from collections.abc import Iterator

from kubeinit.context import Context, Target, ensure_file
from kubeinit.errors import KubeinitError
from kubeinit.facts import Fact, Unknown, files
from kubeinit.facts.host import Addresses, Hostname, UnitState, Which
from kubeinit.hostops import install, systemd
from kubeinit.hostops.install import STATE
from kubeinit.phases import PhaseImpl
from kubeinit.render import render
from kubeinit.steps import Notice, Run, Skip, Step, Upload

OURS = "/usr/local/bin/kubelet"  # where the kubernetes phase installs it
KUBELET_DIR = "/var/lib/kubelet"  # 0700, as kubeadm makes it
CONFIG = "/var/lib/kubelet/config.yaml"
FLAGS_ENV = "/var/lib/kubelet/kubeadm-flags.env"
UNIT = "/etc/systemd/system/kubelet.service"
DROPIN = "/etc/systemd/system/kubelet.service.d/10-kubeadm.conf"
STATIC_POD_PATH = "/etc/kubernetes/manifests"
APPLIED = f"{STATE}/kubelet.applied"
CRI_SOCKET = "unix:///var/run/containerd/containerd.sock"  # kubeadm's default for containerd
RESOLVED_CONF = "/run/systemd/resolve/resolv.conf"
SETTLE_SECONDS = 3  # a kubelet with a bad flag or config exits within this

KUBELET = Which("kubelet", OURS)  # the kubelet binary (ours, else one on PATH) and its fingerprint


def kubeconfig(ctx: Context) -> str:
    return posixpath.join(ctx.kubeconfig_dir, "kubelet.conf")


def bootstrap_kubeconfig(ctx: Context) -> str:
    return posixpath.join(ctx.kubeconfig_dir, "bootstrap-kubelet.conf")


def ca_file(ctx: Context) -> str:
    return posixpath.join(ctx.cert_dir, "ca.crt")


def compared(ctx: Context) -> list[str]:
    return [CONFIG, FLAGS_ENV, UNIT, DROPIN, APPLIED, kubeconfig(ctx), bootstrap_kubeconfig(ctx), ca_file(ctx)]


def preload() -> None:
    from kubeinit import render as r

    r.warm("kubelet/config.yaml.j2", "kubelet/kubelet.service.j2", "kubelet/10-kubeadm.conf.j2")


def facts(ctx: Context, target: Target) -> list[Fact]:
    return [
        UnitState("kubelet"),
        UnitState("systemd-resolved"),
        Hostname(),
        Addresses(),
        KUBELET,
        *files(compared(ctx)),
    ]


def flags(ctx: Context, target: Target, hostname: str, addresses: frozenset[str]) -> dict[str, str]:
    """kubeadm-flags.env's flags (kubeadm's buildKubeletArgMap), then kubelet extraArgs, sorted.
    `hostname` and `addresses`: the host's own (facts Hostname and Addresses)."""
    f = {"container-runtime-endpoint": CRI_SOCKET}
    if hostname and target.host.name != hostname:
        f["hostname-override"] = target.host.name  # the node name differs from the hostname
    if target.host.address in addresses:
        f["node-ip"] = target.host.address
    f |= ctx.spec.extra_args.get("kubelet", {})
    return dict(sorted(f.items()))


def flags_env(args: dict[str, str]) -> str:
    # kubeadm: fmt.Sprintf("%s=%q\n", ...); JSON quoting is Go's %q for these characters.
    return f"KUBELET_KUBEADM_ARGS={json.dumps(' '.join(f'--{k}={v}' for k, v in args.items()))}\n"


def config_yaml(ctx: Context, resolved_active: bool) -> str:
    net = ctx.spec.networking
    return render(
        "kubelet/config.yaml.j2",
        ca_file=ca_file(ctx),
        dns_ip=net.dns_ip,
        dns_domain=net.dns_domain,
        resolv_conf=RESOLVED_CONF if resolved_active else "",
        static_pod_path=STATIC_POD_PATH,
    )


# Why the kubelet is not up: its output, then its klog error lines (E1201 12:00:00 ... err="...").
WHY = systemd.why("kubelet", "^[EF][0-9]{4} ")


def restart_script(kubelet: str, watched: list[str]) -> str:
    # Type=simple: `restart` returns once the kubelet is exec'd, so look again a moment later.
    return (
        f"{WHY}set -e; systemctl daemon-reload; systemctl enable -q kubelet; systemctl restart kubelet; "
        f"sleep {SETTLE_SECONDS}; systemctl is-active -q kubelet || {{ "
        f"echo 'the kubelet exited at once; its log:' >&2; why; exit 1; }}; "
        + install.write_record(
            APPLIED, f'echo "$(stat -c {install.FINGERPRINT} {kubelet})  {kubelet}"; sha256sum {" ".join(watched)}'
        )
    )


class NoKubelet(KubeinitError):
    pass


def binary(ctx: Context, target: Target, found: str) -> str:
    """The kubelet the probe found, else the one this run's kubernetes phase transfers."""
    if not found and ctx.spec.artifact("kubelet").enabled and target.facts.placed(OURS) is not None:
        found = OURS
    if not found or not re.fullmatch(r"/[\w./+-]+", found):
        raise NoKubelet(
            f"{target.name} has no kubelet: run the kubernetes phase (`kubeinit up --only "
            "kubernetes`) or, with artifacts.kubelet.enabled: false, install one on the PATH"
        )
    return found


def started_on(target: Target, kubelet: str, watched: list[str]) -> dict[str, str | None]:
    """What the kubelet would start with now: its binary's fingerprint and each watched file's
    sha256 (None: missing), as restart_script() records them once it has started on them."""
    found = target.facts.get(KUBELET)
    return {
        kubelet: found.fingerprint if found else None,
        **{path: (f.sha256 if (f := target.facts.file(path)) else None) for path in watched},
    }


def restart_pending(ctx: Context, target: Target) -> bool:
    """Whether the running kubelet started on other files than the host has now (a run changed them
    and stopped before the restart): upgrade's drain asks, before this run changes anything."""
    found = target.facts.get(KUBELET)
    if found is None:
        return False
    kubeconfigs = [k for k in (kubeconfig(ctx), bootstrap_kubeconfig(ctx)) if target.facts.file(k) is not None]
    watched = [CONFIG, FLAGS_ENV, UNIT, DROPIN, *kubeconfigs]  # plan_kubelet_start's files, in its order
    return install.restart_pending(target.facts, APPLIED, started_on(target, found.path, watched))


def plan_kubelet_start(ctx: Context, target: Target, config: str | None = None) -> Iterator[Step]:
    """`config`: the KubeletConfiguration a joining node read from the cluster (kubeadm's
    kubelet-config ConfigMap); init renders its own."""
    facts = target.facts
    found = facts.get(KUBELET)
    facts.prefetch(compared(ctx))  # gathered with the other facts already, when the executor ran this phase
    kubelet = ctx.learn(
        lambda: binary(ctx, target, found.path if found else ""),
        lambda e: isinstance(e, NoKubelet) and ctx.spec.artifact("kubelet").enabled,
    )
    if isinstance(kubelet, Unknown):  # the kubernetes phase installs it: plan with where it puts it
        yield Notice(f"{kubelet}; planned with {OURS}, where the kubernetes phase installs it")
        kubelet = OURS
    if facts.file(ca_file(ctx)) is None:
        raise KubeinitError(
            f"this host has no {ca_file(ctx)}, which the kubelet checks clients with: run the certs "
            "phase first (`kubeinit up --only certs`)"
        )
    kubeconfigs = [k for k in (kubeconfig(ctx), bootstrap_kubeconfig(ctx)) if facts.file(k) is not None]
    if not kubeconfigs:
        raise KubeinitError(
            f"this host has no {kubeconfig(ctx)}: run the kubeconfig phase first (`kubeinit up --only kubeconfig`)"
        )
    resolved = facts.get(UnitState("systemd-resolved")).active == "active"

    files = [
        (CONFIG, config or config_yaml(ctx, resolved), "KubeletConfiguration"),
        (
            FLAGS_ENV,
            flags_env(flags(ctx, target, facts.get(Hostname()), facts.get(Addresses()))),
            "kubelet flags for this node",
        ),
        (UNIT, render("kubelet/kubelet.service.j2", kubelet=kubelet), "kubelet systemd unit"),
        (
            DROPIN,
            render(
                "kubelet/10-kubeadm.conf.j2",
                kubelet=kubelet,
                kubeconfig=kubeconfig(ctx),
                bootstrap_kubeconfig=bootstrap_kubeconfig(ctx),
                config=CONFIG,
                flags_env=FLAGS_ENV,
            ),
            "kubeadm's kubelet drop-in",
        ),
    ]
    watched = [path for path, _, _ in files] + kubeconfigs
    now = started_on(target, kubelet, watched)  # before this plan changes anything
    changed = False
    made_dir = False
    for path, content, note in files:
        for step in ensure_file(target, path, content, 0o644, note):
            if isinstance(step, Upload):
                changed, now[path] = True, step.sha256
                if path.startswith(KUBELET_DIR + "/") and not made_dir:  # kubeadm's mode, not the upload's 0755
                    made_dir = True
                    yield Run(
                        ("sh", "-c", f"[ -d {KUBELET_DIR} ] || mkdir -m 0700 {KUBELET_DIR}"),
                        note=f"create {KUBELET_DIR} (0700) unless it exists",
                    )
            yield step
    pending = install.restart_pending(facts, APPLIED, now)
    state = facts.get(UnitState("kubelet"))
    if changed or pending:
        yield Run(
            ("sh", "-c", restart_script(kubelet, watched)),
            timeout=SETTLE_SECONDS + 60,
            note="(re)start the kubelet on its new binary/configuration",
        )
    elif state.active != "active" or state.enabled != "enabled":
        yield Run(("systemctl", "enable", "--now", "kubelet"), note="enable and start the kubelet")
    else:
        yield Skip("the kubelet is enabled and running with this binary and configuration")


START = PhaseImpl(plan_kubelet_start, facts, preload=preload)
