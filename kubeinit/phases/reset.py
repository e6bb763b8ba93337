"""reset: undo what init/up did on a host, as kubeadm reset does (§1.3).

preflight          read-only: what of kubeinit's (and kubeadm's) state this host has.
remove-etcd-member kubeinit runs a one-member etcd: there is no cluster to remove the
                   member from (its data goes with cleanup-node); a Skip says so.
cleanup-node       stop the kubelet (if running) and remove Kubernetes pods through the
                   CRI (if any); stop, disable and remove kubeinit's etcd unit, its data
                   dir, its install stamp and applied record; empty /var/lib/kubelet; and
                   delete, by name, kubeadm's files: the static pod manifests, the PKI
                   files of kubeinit's catalogue in the cert dir (its `etcd` subdirectory
                   too when nothing else is left in it) and the kubeconfig files.

Only kubeinit's own names are removed from the cert, kubeconfig and manifests dirs, never
"everything in a directory": the cert dir is a setting, and a typo (`//etc`, `/etc/ssh`, a
home directory) must not cost the host its files. Both dirs are resolved on the host
(`realpath -m`, in the one probe) before any check; a cert or kubeconfig dir that resolves
to a system directory (`/`, a top-level one, /etc/ssh, a home, a `.ssh` ...) is refused.
/var/lib/kubelet is the kubelet's own: it is emptied, as kubeadm does, only when it
resolves to itself (not a symlink elsewhere); otherwise a Notice says it is left.

Kept on purpose, as kubeadm keeps them (Notices say so): the container runtime
(containerd, runc, the CNI plugins, crictl) and the etcd binaries, iptables/nftables/IPVS
rules, the CNI config in /etc/cni/net.d, and $HOME/.kube/config.

Every removal is planned from one probe and is a Skip when already absent: a second reset
changes nothing.
"""

from __future__ import annotations

import posixpath
import shlex
from collections.abc import Iterator

from kubeinit.context import Context, Target
from kubeinit.errors import UserError
from kubeinit.facts import Command, Fact
from kubeinit.facts.host import Unit, UnitState
from kubeinit.hostops.install import STAMPS
from kubeinit.phases import PhaseImpl, etcd
from kubeinit.phases.certs import all_pki_paths
from kubeinit.phases.control_plane import MANIFESTS
from kubeinit.steps import Check, Notice, Run, Skip, Step

KUBELET_DIR = "/var/lib/kubelet"
CNI_CONF = "/etc/cni/net.d"
ETCD_STAMP = f"{STAMPS}/etcd.stamp"
KUBECONFIG_FILES = (
    "admin.conf",
    "super-admin.conf",
    "kubelet.conf",
    "bootstrap-kubelet.conf",
    "controller-manager.conf",
    "scheduler.conf",
)
MANIFEST_FILES = ("kube-apiserver.yaml", "kube-controller-manager.yaml", "kube-scheduler.yaml", "etcd.yaml")
PKI_FILES = tuple(all_pki_paths())  # relative to the cert dir: ca.crt ... etcd/ca.key ... sa.pub

# A cert or kubeconfig dir resolving to one of these, or below one of the trees, is refused
# (besides `/`, every top-level directory, a home directory and anything inside a .ssh or .gnupg).
_SYSTEM_DIRS = {
    "/var/lib",
    "/var/cache",
    "/var/tmp",
    "/var/spool",
    "/var/mail",
    "/var/opt",
    "/var/local",
    "/usr/local",
    "/etc/default",
    "/etc/kubernetes/manifests",
    "/etc/cni",
}
_SYSTEM_TREES = (
    "/usr",
    "/bin",
    "/sbin",
    "/lib",
    "/lib32",
    "/lib64",
    "/libx32",
    "/boot",
    "/dev",
    "/proc",
    "/sys",
    "/etc/ssh",
    "/etc/ssl",
    "/etc/pam.d",
    "/etc/sudoers.d",
    "/etc/security",
    "/etc/systemd",
    "/etc/apt",
    "/etc/cni/net.d",
    "/var/lib/dpkg",
    "/var/lib/apt",
    "/var/lib/rpm",
    "/var/lib/systemd",
    "/var/lib/kubelet",
    "/var/lib/etcd",
    "/var/lib/containerd",
    "/var/lib/kubeinit",
    "/var/log",
)


class Refused(UserError):
    """A dir reset will not touch. Running again cannot help, so the error carries no resume
    hint (reset's would say --yes)."""

    resumable = False


def system_dir(path: str, kubeconfigs: bool = False) -> bool:
    """Whether a resolved directory is one of the system's own (never a dir of kubeinit's files)."""
    parts = [p for p in path.split("/") if p]
    if len(parts) <= 1 or path in _SYSTEM_DIRS or (parts[0] == "home" and len(parts) == 2):
        return True
    if ".ssh" in parts or ".gnupg" in parts:
        return True
    if path == "/etc/kubernetes" and not kubeconfigs:  # the kubeconfig dir's default, never the cert dir
        return True
    return any(path == t or path.startswith(t + "/") for t in _SYSTEM_TREES)


def _given(d: str, what: str) -> str:
    """A dir as given, refused before the probe when the host could not resolve it safely."""
    if not d.startswith("/") or "\n" in d:
        raise Refused(f"the {what} {d!r} must be an absolute path (of one line)")
    return d


def probe(ctx: Context) -> str:
    """One read-only script: `key=value` lines about everything reset may remove, with the cert
    and kubeconfig dirs as the host resolves them (`realpath -m`)."""
    files = " ".join(shlex.quote(p) for p in (etcd.UNIT, etcd.DATA_DIR, ETCD_STAMP, etcd.APPLIED))
    cert = shlex.quote(_given(ctx.cert_dir, "cert dir"))
    confs = shlex.quote(_given(ctx.kubeconfig_dir, "kubeconfig dir"))

    def names(key: str, d: str, listed: tuple[str, ...]) -> str:
        # a regular file or a symlink of that name (a directory of that name is not ours)
        q = " ".join(shlex.quote(f) for f in listed)
        return f'for f in {q}; do {{ [ -f "{d}/$f" ] || [ -L "{d}/$f" ]; }} && echo "{key}=$f"; done\n'

    return (
        f'for p in {files}; do [ -e "$p" ] && echo "exists=$p"; done\n'
        f'c=$(realpath -m -- {cert} 2>/dev/null); echo "certdir=$c"\n'
        f'if [ -n "$c" ]; then\n{names("pki", "$c", PKI_FILES)}'
        '  if [ -L "$c/etcd" ]; then echo pki-etcd=link\n'
        '  elif [ -d "$c/etcd" ]; then echo "pki-etcd=$(ls -A "$c/etcd" 2>/dev/null | wc -l)"; fi\nfi\n'
        f'k=$(realpath -m -- {confs} 2>/dev/null); echo "kubeconfigdir=$k"\n'
        f'[ -z "$k" ] || {names("kubeconfig", "$k", KUBECONFIG_FILES)}'
        f"{names('manifest', MANIFESTS, MANIFEST_FILES)}"
        f'echo "kubeletdir=$(realpath -m -- {KUBELET_DIR} 2>/dev/null)"\n'
        f'for d in {KUBELET_DIR} {CNI_CONF}; do [ -n "$(ls -A "$d" 2>/dev/null)" ] && echo "nonempty=$d"; done\n'
        f'echo "mounts=$(awk \'$2 ~ "^{KUBELET_DIR}/"\' /proc/mounts 2>/dev/null | wc -l)"\n'
        'if command -v crictl >/dev/null 2>&1; then echo "pods=$(crictl --timeout 5s pods -q 2>/dev/null | wc -l)"; fi\n'  # noqa: E501
        "true\n"
    )


class State:
    def __init__(self, out: str, etcd_unit: Unit | None = None, kubelet_unit: Unit | None = None):
        self.etcd, self.kubelet = etcd_unit or Unit(), kubelet_unit or Unit()
        self.values: dict[str, str] = {}
        self.exists: set[str] = set()
        self.nonempty: set[str] = set()
        self.listed: dict[str, list[str]] = {"pki": [], "kubeconfig": [], "manifest": []}
        for line in out.splitlines():
            k, sep, v = line.partition("=")
            if not sep:
                continue
            if k == "exists":
                self.exists.add(v)
            elif k == "nonempty":
                self.nonempty.add(v)
            elif k in self.listed:
                self.listed[k].append(v)
            else:
                self.values[k] = v.strip()

    def int(self, key: str) -> int:
        try:
            return int(self.values.get(key, "0") or 0)
        except ValueError:
            return 0

    @property
    def etcd_active(self) -> bool:
        return self.etcd.running

    @property
    def kubelet_active(self) -> bool:
        return self.kubelet.running


def facts(ctx: Context, target: Target) -> list[Fact]:
    return [UnitState("etcd"), UnitState("kubelet"), Command(("sh", "-c", probe(ctx)))]


def state(ctx: Context, target: Target) -> State:
    facts = target.facts
    return State(facts.run("sh", "-c", probe(ctx)).out, facts.get(UnitState("etcd")), facts.get(UnitState("kubelet")))


def resolved(ctx: Context, s: State, key: str) -> str:
    """The cert dir (key "certdir") or kubeconfig dir ("kubeconfigdir") as the host resolved it,
    refused when that is a system directory."""
    if key == "certdir":
        given, what, setting = ctx.cert_dir, "cert dir", "pki.certificatesDir or --cert-dir, like /etc/kubernetes/pki"
    else:
        given, what, setting = ctx.kubeconfig_dir, "kubeconfig dir", "kubeconfigDir or --kubeconfig-dir"
    d = s.values.get(key, "")
    if not d.startswith("/"):
        raise Refused(f"the {what} {given!r} could not be resolved on the host (realpath -m), so nothing was reset")
    if system_dir(d, kubeconfigs=key == "kubeconfigdir"):
        named = f"{given!r}" if d == given else f"{given!r} (which resolves to {d})"
        raise Refused(
            f"the {what} {named} is a system directory, not one of kubeinit's, so nothing was reset: "
            f"name the {what} init used ({setting})"
        )
    return d


def pki_files(ctx: Context, s: State) -> tuple[str, list[str]]:
    """The resolved cert dir and the catalogue's files in it; etcd/* only when `etcd` is a real
    directory there (through a symlink it could be anywhere)."""
    d = resolved(ctx, s, "certdir")
    names = [f for f in s.listed["pki"] if f in PKI_FILES]
    if s.values.get("pki-etcd") == "link":
        names = [f for f in names if not f.startswith("etcd/")]
    return d, [posixpath.join(d, f) for f in names]


def kubeconfig_files(ctx: Context, s: State) -> tuple[str, list[str]]:
    d = resolved(ctx, s, "kubeconfigdir")
    return d, [posixpath.join(d, f) for f in s.listed["kubeconfig"] if f in KUBECONFIG_FILES]


def manifest_files(s: State) -> list[str]:
    return [posixpath.join(MANIFESTS, f) for f in s.listed["manifest"] if f in MANIFEST_FILES]


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
    if s.int("pods"):
        out.append(f"{s.int('pods')} pod sandboxes")
    out += [p for p in (etcd.DATA_DIR, ETCD_STAMP, etcd.APPLIED) if p in s.exists]
    if manifest_files(s):
        out.append(f"{_count(len(manifest_files(s)), 'static pod manifest')} in {MANIFESTS}")
    if KUBELET_DIR in s.nonempty:
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


def plan_remove_etcd_member(ctx: Context, target: Target) -> Iterator[Step]:
    yield Skip(
        "kubeinit's etcd has one member, on this host: there is no etcd cluster to remove it from "
        f"(cleanup-node removes its data, {etcd.DATA_DIR}); multi-member etcd is not built yet"
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
    if s.int("pods"):
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
    records = [p for p in (ETCD_STAMP, etcd.APPLIED) if p in s.exists]
    if records:
        yield Run(("rm", "-f", "--", *records), note="remove etcd's install stamp and applied record")
    else:
        yield Skip("etcd's install stamp and applied record are absent")

    # manifests, kubelet dir, certificates, kubeconfig files: by name, but for the kubelet's own dir
    manifests = manifest_files(s)
    if manifests:
        yield Run(("rm", "-f", "--", *manifests), note=f"remove the static pod manifests in {MANIFESTS}")
    else:
        yield Skip(f"no static pod manifests in {MANIFESTS}")
    if s.int("mounts"):
        yield Run(
            ("sh", "-c", f"awk '$2 ~ \"^{KUBELET_DIR}/\" {{print $2}}' /proc/mounts | sort -r | xargs -r -n1 umount"),
            note=f"unmount what is mounted under {KUBELET_DIR}",
        )
    real = s.values.get("kubeletdir", "")
    if KUBELET_DIR in s.nonempty and real != KUBELET_DIR:
        yield Notice(
            f"{KUBELET_DIR} resolves to {real or 'nothing'}, not to itself: it is left as it is; "
            "empty the kubelet's directory yourself"
        )
    elif KUBELET_DIR in s.nonempty:
        yield _empty_kubelet_dir()
    else:
        yield Skip(f"{KUBELET_DIR} is empty or absent")
    if certs:
        yield Run(("rm", "-f", "--", *certs), note=f"remove the certificates and keys in {pki}")
    else:
        yield Skip(f"no certificates or keys of kubeinit's in {pki}")
    etcd_entries = s.values.get("pki-etcd")
    if etcd_entries == "link":
        yield Notice(f"{pki}/etcd is a symlink: the etcd certificates it points at are left as they are")
    elif etcd_entries is not None:
        ours_in_etcd = sum(1 for p in certs if p.startswith(posixpath.join(pki, "etcd") + "/"))
        if s.int("pki-etcd") <= ours_in_etcd:
            yield Run(("rmdir", "--", posixpath.join(pki, "etcd")), note=f"remove the empty {pki}/etcd")
        else:
            yield Notice(f"{pki}/etcd holds files that are not kubeinit's: it is left, with them")
    if confs:
        yield Run(("rm", "-f", "--", *confs), note=f"remove the kubeconfig files in {confdir}")
    else:
        yield Skip(f"no kubeconfig files in {confdir}")

    # what kubeadm reset leaves, and says so
    yield Notice("kept: the container runtime (containerd, runc, the CNI plugins, crictl) and the etcd binaries")
    if CNI_CONF in s.nonempty:
        yield Notice(f"the CNI configuration in {CNI_CONF} is not removed; remove it yourself if you want it gone")
    yield Notice(
        "iptables, nftables and IPVS rules are not reset; clean them yourself if needed "
        "(e.g. `iptables -F && iptables -t nat -F && iptables -t mangle -F && iptables -X`, `ipvsadm --clear`)"
    )
    yield Notice("$HOME/.kube/config files are not removed; remove the ones that point at this cluster")


PREFLIGHT = PhaseImpl(plan_preflight, facts, read_only=True)
REMOVE_ETCD_MEMBER = PhaseImpl(plan_remove_etcd_member, read_only=True)
CLEANUP = PhaseImpl(plan_cleanup, facts)
