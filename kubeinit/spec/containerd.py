"""containerd settings judged against the containerd version kubeinit installs: a patch in the other
config layout would be ignored by containerd (or refused at start), so it is refused before any host."""

from __future__ import annotations

from .model import ClusterSpec

# In config version 3 (containerd 2.x) the CRI options moved out of io.containerd.grpc.v1.cri,
# which keeps only its streaming server's; version 2 (containerd 1.x) knows no cri.v1 plugins.
_CRI_V3_KEEPS = {
    "disable_tcp_service",
    "stream_server_address",
    "stream_server_port",
    "stream_idle_timeout",
    "enable_tls_streaming",
    "x509_key_pair_streaming",
}


def check_containerd(spec: ClusterSpec, fail) -> None:
    c = spec.runtime.containerd
    if not c.given:
        return
    a = spec.artifact("containerd")
    if not a.enabled:
        fail(
            "runtime.containerd",
            "is set, but artifacts.containerd.enabled is false: kubeinit writes containerd's "
            "config only when it installs containerd; remove these settings or let kubeinit install it",
        )
    if not c.config_patch:
        return
    import tomllib

    patch = tomllib.loads(c.config_patch)  # parsed when read
    major = int(a.version.split(".")[0]) if a.version.split(".")[0].isdigit() else 1
    version, path = (3 if major >= 2 else 2), "runtime.containerd.configPatch"
    if "version" in patch and patch["version"] != version:
        fail(
            path,
            f"sets version = {patch['version']!r}, but containerd {a.version} is configured with version "
            f"{version}; leave version out",
        )
    plugins = patch.get("plugins", {}) if isinstance(patch.get("plugins"), dict) else {}
    if version == 2 and (v3 := sorted(p for p in plugins if p.startswith("io.containerd.cri.v1."))):
        fail(
            path,
            f"uses {v3[0]!r}, a plugin of containerd 2.x's config version 3; containerd {a.version} reads "
            'version 2: write it under plugins."io.containerd.grpc.v1.cri"',
        )
    cri = plugins.get("io.containerd.grpc.v1.cri", {})
    if version == 3 and isinstance(cri, dict) and (old := sorted(set(cri) - _CRI_V3_KEEPS)):
        fail(
            path,
            f'sets plugins."io.containerd.grpc.v1.cri".{old[0]}, which containerd {a.version}\'s config '
            "version 3 moved to io.containerd.cri.v1.runtime or io.containerd.cri.v1.images; write it there",
        )
