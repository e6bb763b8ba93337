"""Reading the `artifacts` and `runtime.containerd` sections of a cluster file."""

from __future__ import annotations

import re
from pathlib import Path

from kubeinit.errors import SpecError

from .model import DEFAULT_ARTIFACTS, KUBERNETES_BINARIES, Artifact, Artifacts, ContainerdSettings, ImageArchive
from .reader import Reader


def artifacts(a: Reader) -> Artifacts:
    images_ = images(a)
    mirror = a.get("mirror", str)
    arch = a.get("arch", str)
    unlisted = a.get("allowUnlistedVersions", bool, False)
    insecure = a.get("allowInsecureMirror", bool, False)
    comps: dict[str, Artifact] = {}
    for key in list(a.data):
        if key in ("mirror", "arch", "allowUnlistedVersions", "allowInsecureMirror"):
            continue
        if key not in (*DEFAULT_ARTIFACTS, *KUBERNETES_BINARIES):
            continue  # reported by done() as unknown
        c = a.child(key)
        enabled = c.get("enabled", bool, key != "kubeadm")  # kubeadm: opt-in
        version = c.get("version", str)
        if not version and enabled and key not in KUBERNETES_BINARIES:  # those default to kubernetesVersion
            c.fail("is missing", "version")
        if not version:
            version = DEFAULT_ARTIFACTS.get(key, "")
        sha = c.get("sha256", str)
        if sha is not None and not re.fullmatch(r"[0-9a-fA-F]{64}", sha):
            c.fail(f"{sha!r} is not a sha256 digest (64 hexadecimal characters)", "sha256")
        c.done()
        comps[key] = Artifact(version.lstrip("v"), sha.lower() if sha else None, enabled)
    a.done()
    if arch is not None and arch not in ("amd64", "arm64"):
        a.fail(f"{arch!r} is not one of amd64, arm64", "arch")
    return Artifacts(
        mirror=mirror,
        arch=arch,
        components=comps,
        allow_unlisted_versions=unlisted,
        allow_insecure_mirror=insecure,
        images=images_,
    )


# A fully qualified reference, as containerd stores it: registry host first, then a tag or digest.
_IMAGE_REF = re.compile(
    r"^(localhost|[a-z0-9-]+(\.[a-z0-9-]+)+|[a-z0-9.-]+:[0-9]+)(/[a-z0-9]+([._-]+[a-z0-9]+)*)+"
    r"(:[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?(@sha256:[0-9a-f]{64})?$"
)


def images(a: Reader) -> tuple[ImageArchive, ...]:
    items = a.get("images", list, [])
    out: list[ImageArchive] = []
    base = Path(a.source).expanduser().resolve().parent if a.source and not a.source.startswith("(") else Path.cwd()
    for i, raw in enumerate(items):
        c = Reader(raw, f"{a.sub('images')}[{i}]", a.source)
        name, names, sha = c.get("name", str), c.get("names", list), c.get("sha256", str)
        url, path = c.get("url", str), c.get("path", str)
        c.done()
        if (name is None) == (names is None):
            c.fail(
                "give the image reference the tarball holds as name (e.g. registry.k8s.io/pause:3.10), or "
                "several as names",
                "names" if names is not None else "name",
            )
        key, names = ("name", [name]) if name is not None else ("names", names)
        if not names:
            c.fail("is empty; list the image references the tarball holds", key)
        for j, n in enumerate(names):
            where = key if key == "name" else f"names[{j}]"
            if not isinstance(n, str) or not _IMAGE_REF.match(n) or not re.search(r"(:[^/]+|@sha256:[0-9a-f]{64})$", n):
                c.fail(
                    f"{n!r} is not a full image reference with a tag, as containerd lists it (e.g. "
                    "registry.k8s.io/kube-apiserver:v1.31.4, docker.io/library/busybox:1.36)",
                    where,
                )
            if n in names[:j] or any(n in x.names for x in out):
                c.fail(f"{n!r} is listed twice", where)
        if (url is None) == (path is None):
            c.fail("give either url or path (where the image tarball is)", "url" if url else "")
        if url is not None and not re.match(r"^(https?|file)://\S+$", url):
            c.fail(f"{url!r} must be an http(s):// or file:// URL", "url")
        if not sha or not re.fullmatch(r"[0-9a-fA-F]{64}", sha):
            c.fail(
                "is missing; every image tarball needs its sha256 (`sha256sum FILE`)"
                if not sha
                else f"{sha!r} is not a sha256 digest (64 hexadecimal characters)",
                "sha256",
            )
        if path is not None:
            path = str(base / Path(path).expanduser())
        out.append(ImageArchive(tuple(names), sha.lower(), url, path))
    return tuple(out)


_REGISTRY = re.compile(r"^(_default|[a-z0-9]([-a-z0-9.]*[a-z0-9])?(:[0-9]{1,5})?)$")


def containerd(c: Reader) -> ContainerdSettings:
    restrict = c.get("restrictOOMScoreAdj", bool, False)
    sandbox_image, config_patch = c.get("sandboxImage", str), c.get("configPatch", str, "")
    if sandbox_image is not None and not re.fullmatch(r"[a-z0-9][^\s\"\\]*", sandbox_image):
        c.fail(f"{sandbox_image!r} is not an image reference like registry.k8s.io/pause:3.10", "sandboxImage")
    mirrors: dict[str, tuple[str, ...]] = {}
    for host, urls in c.get("registryMirrors", dict, {}).items():
        path = f"{c.sub('registryMirrors')}.{host}"
        if not isinstance(host, str) or not _REGISTRY.match(host):
            raise SpecError(
                path,
                "is not a registry host (docker.io, registry.example.com:5000, or _default for every registry)",
                c.source,
            )
        if isinstance(urls, str):
            urls = [urls]
        if not isinstance(urls, list) or not urls:
            raise SpecError(path, "must list one or more mirror URLs", c.source)
        for i, u in enumerate(urls):
            if not isinstance(u, str) or not re.fullmatch(r"https?://[^\s\"\\/]+(/[^\s\"\\]*)?", u):
                raise SpecError(f"{path}[{i}]", f"{u!r} is not an http(s) URL of a registry mirror", c.source)
        mirrors[host] = tuple(urls)
    if config_patch:
        import tomllib

        try:
            tomllib.loads(config_patch)
        except tomllib.TOMLDecodeError as e:
            c.fail(f"is not valid TOML: {e}", "configPatch")
    c.done()
    return ContainerdSettings(
        restrict_oom_score_adj=restrict,
        sandbox_image=sandbox_image,
        registry_mirrors=mirrors,
        config_patch=config_patch,
    )
