"""`kubeinit kubeconfig -f cluster.yaml`: the cluster admin's credentials where kubeinit runs.

The control plane's admin.conf is read over SSH (never printed) and merged into a kubeconfig
(0600) as one entry named after the cluster, made current, as `aws eks update-kubeconfig`
or k0sctl's `kubeconfig` do: `kubectl` works from the workstation at once.
"""

from __future__ import annotations

import posixpath
from pathlib import Path

from kubeinit import ui


def write(file: str, known_hosts: str | None, trust_new_host_keys: bool, kubeconfig: str | None) -> None:
    from kubeinit import kubeconfig as kc
    from kubeinit.errors import KubeinitError, UserError
    from kubeinit.spec import load_file
    from kubeinit.ssh import SSHConnection

    spec = load_file(file)
    host = spec.first_control_plane
    path = posixpath.join(spec.kubeconfig_dir, "admin.conf")
    conn = SSHConnection(host, known_hosts=known_hosts, trust_new_host_keys=trust_new_host_keys)
    try:
        data = conn.read(path)
    finally:
        conn.close()
    if data is None:
        raise KubeinitError(f"{host.name} has no {path}: run `kubeinit up -f {file} --only kubeconfig` first")
    what, redo = f"{host.name}:{path}", f"; re-create it with `kubeinit up -f {file} --only kubeconfig`"
    try:
        chosen = kc.current(kc.load(data, what), what)
    except UserError as e:
        raise KubeinitError(f"{e}{redo}") from None  # the host's file, not the user's input: exit 1
    ca = chosen.cluster.get("certificate-authority-data")
    credentials = {k: chosen.user.get(k) for k in ("client-certificate-data", "client-key-data")}
    if not (ca and all(credentials.values())):
        raise KubeinitError(f"{what} is not a kubeconfig with embedded credentials{redo}")
    doc = kc.entry(spec.name, spec.api_endpoint(), ca, credentials)
    target = Path(kubeconfig).expanduser() if kubeconfig else kc.default_path()
    context = kc.merge(target, doc)
    ui.ok(f"wrote context {context} (the admin of cluster {spec.name!r}, server {spec.api_endpoint()}) to {target}")
