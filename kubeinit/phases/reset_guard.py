"""The directories reset will not touch: a cert or kubeconfig dir is a setting, and a typo
(`//etc`, `/etc/ssh`, a home directory) must not cost the host its files. Each is checked as
given (an absolute path of one line, before the host is asked) and as the host resolves it
(`realpath -m`): a system directory is refused, and nothing is reset.
"""

from __future__ import annotations

from kubeinit.context import Context
from kubeinit.errors import UserError

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


def given(d: str, what: str) -> str:
    """A dir as given, refused before the probe when the host could not resolve it safely."""
    if not d.startswith("/") or "\n" in d:
        raise Refused(f"the {what} {d!r} must be an absolute path (of one line)")
    return d


def resolved(ctx: Context, real: str, kubeconfigs: bool = False) -> str:
    """The cert dir (or, `kubeconfigs`, the kubeconfig dir) as the host resolved it (`real`),
    refused when that is a system directory."""
    if kubeconfigs:
        given, what, setting = ctx.kubeconfig_dir, "kubeconfig dir", "kubeconfigDir or --kubeconfig-dir"
    else:
        given, what, setting = ctx.cert_dir, "cert dir", "pki.certificatesDir or --cert-dir, like /etc/kubernetes/pki"
    if not real.startswith("/"):
        raise Refused(f"the {what} {given!r} could not be resolved on the host (realpath -m), so nothing was reset")
    if system_dir(real, kubeconfigs):
        named = f"{given!r}" if real == given else f"{given!r} (which resolves to {real})"
        raise Refused(
            f"the {what} {named} is a system directory, not one of kubeinit's, so nothing was reset: "
            f"name the {what} init used ({setting})"
        )
    return real
