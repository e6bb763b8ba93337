"""reset: undo what init/up did on a host, as kubeadm reset does (§1.3).

preflight          read-only: what of kubeinit's (and kubeadm's) state this host has.
remove-etcd-member a control plane whose etcd has other members leaves the etcd cluster first
                   (`etcdctl member remove`, asked of its own etcd over TLS), so the others keep
                   their quorum; the only member just goes with its data (cleanup-node).
cleanup-node       stop the kubelet (if running) and remove Kubernetes pods through the
                   CRI (if any); stop, disable and remove kubeinit's etcd unit, its data
                   dir, its install stamp and applied record; empty /var/lib/kubelet; and
                   delete, by name, kubeadm's files: the static pod manifests, the PKI
                   files of kubeinit's catalogue in the cert dir (its `etcd` subdirectory
                   too when nothing else is left in it) and the kubeconfig files.

Only kubeinit's own names are removed from the cert, kubeconfig and manifests dirs, never
"everything in a directory": the cert dir is a setting, and a typo (`//etc`, `/etc/ssh`, a
home directory) must not cost the host its files. Both dirs are resolved on the host
(`realpath -m`, with reset's other facts: reset_state.py) before any check; a cert or kubeconfig
dir that resolves to a system directory (`/`, a top-level one, /etc/ssh, a home, a `.ssh` ...)
is refused (reset_guard.py).
/var/lib/kubelet is the kubelet's own: it is emptied, as kubeadm does, only when it
resolves to itself (not a symlink elsewhere); otherwise a Notice says it is left.

Kept on purpose, as kubeadm keeps them (Notices say so): the container runtime
(containerd, runc, the CNI plugins, crictl) and the etcd binaries, and $HOME/.kube/config. The
pod network's leftovers (CNI config, routes, iptables/nftables) are cleanup-network's
(reset_network.py): removed with --clean-network, else named.

Every removal is planned from facts asked in one round trip and is a Skip when already
absent: a second reset changes nothing.
"""

from __future__ import annotations

import posixpath
from collections.abc import Iterator

from kubeinit.context import Context, Target
from kubeinit.facts.etcd import EtcdMembers
from kubeinit.phases import PhaseImpl, etcd
from kubeinit.phases.control_plane import MANIFESTS
from kubeinit.phases.reset_state import (
    ETCD_FILES,
    ETCD_STAMP,
    KUBELET_DIR,
    State,
    facts,
    kubeconfig_files,
    manifest_files,
    pki_files,
    state,
)
from kubeinit.steps import Check, Notice, Run, Skip, Step


def _count(n: int, what: str) -> str:
    return f"{n} {what}{'s' if n != 1 else ''}"


def found(ctx: Context, s: State) -> list[str]:
    """What of kubeinit's/kubeadm's state the host has, in words."""
    pki, certs = pki_files(ctx, s)
    confdir, confs = kubeconfig_files(ctx, s)
    out = []
    if etcd.UNIT in s.exists:
        out.append(f"etcd unit ({s.etcd.active or 'unknown'})")
    elif s.etcd_active:
        out.append("an etcd service kubeinit did not install (left alone)")
    if s.kubelet_active:
        out.append("a running kubelet")
    if s.pods:
        out.append(f"{s.pods} pod sandboxes")
    out += [p for p in (etcd.DATA_DIR, ETCD_STAMP, etcd.APPLIED) if p in s.exists]
    if manifest_files(s):
        out.append(f"{_count(len(manifest_files(s)), 'static pod manifest')} in {MANIFESTS}")
    if s.kubelet_dir_used:
        out.append(f"{KUBELET_DIR}/*")
    if certs:
        out.append(f"{_count(len(certs), 'certificate and key file')} in {pki}")
    if confs:
        out.append(f"{_count(len(confs), 'kubeconfig file')} in {confdir}")
    return out


def plan_preflight(ctx: Context, target: Target) -> Iterator[Step]:
    s = state(ctx, target)
    what = found(ctx, s)
    if what:
        yield Check("reset", True, "found: " + ", ".join(what))
    else:
        yield Skip("nothing of kubeinit's or kubeadm's to reset on this host")


def _members_fact(ctx: Context) -> EtcdMembers:
    pki = posixpath.join(ctx.cert_dir, "etcd")
    return EtcdMembers(
        etcd.ETCDCTL,
        f"https://127.0.0.1:{etcd.CLIENT_PORT}",
        f"{pki}/ca.crt",
        f"{pki}/healthcheck-client.crt",
        f"{pki}/healthcheck-client.key",
    )


def plan_remove_etcd_member(ctx: Context, target: Target) -> Iterator[Step]:
    if etcd.UNIT not in target.facts.get(ETCD_FILES):
        yield Skip("no etcd of kubeinit's on this host")
        return
    got = target.facts.get(_members_fact(ctx))
    if got.error:
        yield Notice(
            f"this host's etcd could not list its members ({got.error}); if it is a member of an etcd "
            "with other members, remove it there: `etcdctl member remove <its ID>` on another control plane"
        )
        return
    me = got.find(target.host.name, etcd.peer_url(target.host.address))
    if me is None:
        yield Skip(f"{target.name} is not a member of its etcd cluster")
    elif len(got.members) == 1:
        yield Skip(f"etcd has one member, this host: its data goes with cleanup-node ({etcd.DATA_DIR})")
    else:
        pki = posixpath.join(ctx.cert_dir, "etcd")
        yield Run(
            (
                "env",
                "ETCDCTL_API=3",
                etcd.ETCDCTL,
                f"--endpoints=https://127.0.0.1:{etcd.CLIENT_PORT}",
                f"--cacert={pki}/ca.crt",
                f"--cert={pki}/healthcheck-client.crt",
                f"--key={pki}/healthcheck-client.key",
                "member",
                "remove",
                me.id,
            ),
            note=f"remove {target.name} (member {me.id}) from etcd; {len(got.members) - 1} members stay",
        )


def _rm(paths: list[str], note: str) -> Run:
    return Run(("rm", "-rf", "--one-file-system", "--", *paths), note=note)


def _empty_kubelet_dir() -> Run:
    # kubeadm's cleanDir: the directory stays, its entries (dotfiles too) go. Only while it is
    # still itself, not a symlink made since the probe.
    d = KUBELET_DIR
    return Run(
        (
            "sh",
            "-c",
            f'[ "$(realpath -- {d})" = {d} ] || {{ echo "{d} is not a directory of its own" >&2; '
            f"exit 1; }}; find {d} -mindepth 1 -maxdepth 1 -exec rm -rf --one-file-system -- {{}} +",
        ),
        note=f"empty {d}",
    )


def plan_cleanup(ctx: Context, target: Target) -> Iterator[Step]:
    s = state(ctx, target)
    pki, certs = pki_files(ctx, s)
    confdir, confs = kubeconfig_files(ctx, s)

    # kubelet and its pods first: they would restart what is removed below
    if s.kubelet_active:
        yield Run(("systemctl", "stop", "kubelet"), note="stop the kubelet")
    else:
        yield Skip("the kubelet is not running")
    if s.pods:
        yield Run(
            ("sh", "-c", "crictl --timeout 30s stopp $(crictl pods -q) && crictl --timeout 30s rmp -a -f"),
            note="stop and remove the Kubernetes pods (CRI)",
        )

    # etcd
    ours = etcd.UNIT in s.exists
    if ours and (s.etcd_active or s.etcd.enabled in ("enabled", "enabled-runtime")):
        yield Run(("systemctl", "disable", "--now", "-q", "etcd"), note="stop and disable etcd")
    elif ours:
        yield Skip("etcd is stopped and disabled")
    if ours:
        yield Run(
            (
                "sh",
                "-c",
                f"rm -f {etcd.UNIT} && systemctl daemon-reload && systemctl reset-failed etcd 2>/dev/null; true",
            ),
            note=f"remove {etcd.UNIT}",
        )
    else:
        yield Skip(f"{etcd.UNIT} is absent")
    if etcd.DATA_DIR in s.exists and s.etcd_active and not ours:
        yield Notice(f"an etcd kubeinit did not install is running: {etcd.DATA_DIR} is left as it is")
    elif etcd.DATA_DIR in s.exists:
        yield _rm([etcd.DATA_DIR], f"remove etcd's data, {etcd.DATA_DIR}")
    else:
        yield Skip(f"{etcd.DATA_DIR} is absent")
    records = [p for p in (ETCD_STAMP, etcd.APPLIED, etcd.JOIN_ENV) if p in s.exists]
    if records:
        yield Run(("rm", "-f", "--", *records), note="remove etcd's install stamp, applied record and join settings")
    else:
        yield Skip("etcd's install stamp, applied record and join settings are absent")

    # manifests, kubelet dir, certificates, kubeconfig files: by name, but for the kubelet's own dir
    manifests = manifest_files(s)
    if manifests:
        yield Run(("rm", "-f", "--", *manifests), note=f"remove the static pod manifests in {MANIFESTS}")
    else:
        yield Skip(f"no static pod manifests in {MANIFESTS}")
    if s.mounts:
        yield Run(
            ("sh", "-c", f"awk '$2 ~ \"^{KUBELET_DIR}/\" {{print $2}}' /proc/mounts | sort -r | xargs -r -n1 umount"),
            note=f"unmount what is mounted under {KUBELET_DIR}",
        )
    real = s.kubeletdir
    if s.kubelet_dir_used and real != KUBELET_DIR:
        yield Notice(
            f"{KUBELET_DIR} resolves to {real or 'nothing'}, not to itself: it is left as it is; "
            "empty the kubelet's directory yourself"
        )
    elif s.kubelet_dir_used:
        yield _empty_kubelet_dir()
    else:
        yield Skip(f"{KUBELET_DIR} is empty or absent")
    if certs:
        yield Run(("rm", "-f", "--", *certs), note=f"remove the certificates and keys in {pki}")
    else:
        yield Skip(f"no certificates or keys of kubeinit's in {pki}")
    etcd_dir = s.pki_etcd
    if etcd_dir is not None and etcd_dir.link:
        yield Notice(f"{pki}/etcd is a symlink: the etcd certificates it points at are left as they are")
    elif etcd_dir is not None:
        ours_in_etcd = sum(1 for p in certs if p.startswith(posixpath.join(pki, "etcd") + "/"))
        if etcd_dir.entries <= ours_in_etcd:
            yield Run(("rmdir", "--", posixpath.join(pki, "etcd")), note=f"remove the empty {pki}/etcd")
        else:
            yield Notice(f"{pki}/etcd holds files that are not kubeinit's: it is left, with them")
    if confs:
        yield Run(("rm", "-f", "--", *confs), note=f"remove the kubeconfig files in {confdir}")
    else:
        yield Skip(f"no kubeconfig files in {confdir}")

    # what kubeadm reset leaves, and says so
    yield Notice("kept: the container runtime (containerd, runc, the CNI plugins, crictl) and the etcd binaries")
    # the CNI config, routes, iptables/nftables: cleanup-network (reset_network.py) names or removes them
    yield Notice("$HOME/.kube/config files are not removed; remove the ones that point at this cluster")


PREFLIGHT = PhaseImpl(plan_preflight, facts, read_only=True)
# serial: members leave one at a time, each planned on the members the one before left
REMOVE_ETCD_MEMBER = PhaseImpl(plan_remove_etcd_member, lambda ctx, t: [ETCD_FILES, _members_fact(ctx)], serial=True)
CLEANUP = PhaseImpl(plan_cleanup, facts)
