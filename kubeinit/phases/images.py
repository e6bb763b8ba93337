"""images: the image tarballs of `artifacts.images` imported into containerd, on every host, once.

For sites without a registry (air-gapped), as kubespray's and k0s's image bundles: each entry
names the image reference a tarball holds (docker-archive or OCI layout), where the tarball is
(a URL, fetched once into kubeinit's cache, or a local file) and its sha256. A tarball is
verified where kubeinit runs before any host is touched, verified again on arrival, imported
with `ctr -n k8s.io images import` (the namespace the CRI plugin, and so the kubelet, uses),
checked to hold the named image, and removed from the host. A host that already lists the
image is skipped: the list comes with the runtime phase's probe, so a re-run costs nothing more.
"""

from __future__ import annotations

import functools
import hashlib
import os
import threading
from collections.abc import Iterator

from kubeinit import artifacts
from kubeinit.context import Context, Target
from kubeinit.facts import Fact
from kubeinit.facts.containerd import ContainerdImages
from kubeinit.hostops import install
from kubeinit.phases import PhaseImpl
from kubeinit.phases.runtime import SOCKET
from kubeinit.spec import ImageArchive
from kubeinit.steps import Local, Run, Skip, Step, Transfer

NAMESPACE = "k8s.io"  # containerd's namespace of the CRI plugin
STAGING = f"{install.STAGING}/images"

HELD = ContainerdImages(NAMESPACE, SOCKET)  # the images containerd holds for the CRI (none while it is not running)

# Arguments: the staged tarball, the images it must hold. Import, check the names are there, drop
# the tarball (also on failure: a re-run stages it again). ctr is looked for here, not in the plan:
# on a fresh host the runtime phase of the same run installs it after the probe was taken.
IMPORT = (
    f"set -e; t=$1; shift; trap 'rm -f \"$t\"' EXIT\n"
    'command -v ctr >/dev/null 2>&1 || { echo "there is no ctr on this host, which imports images into containerd: '
    "run the runtime phase first (kubeinit up --only runtime), or install containerd's ctr\" >&2; exit 1; }\n"
    f'out=$(ctr -n {NAMESPACE} images import "$t" 2>&1) || {{ echo "$out" >&2; exit 1; }}\n'
    f"have=$(ctr -n {NAMESPACE} images ls -q)\n"
    'for want; do printf \'%s\\n\' "$have" | grep -qxF -- "$want" || {\n'
    "  echo \"the tarball holds no image named $want; ctr imported: $(echo \"$out\" | tr '\\n' ' ')\" >&2; exit 1; }\n"
    "done\n"
)


def probe_command(ctx: Context) -> list[Fact]:
    """The images containerd holds, when the cluster file lists images (the runtime phase asks
    it too, so it rides in the first round trip)."""
    return [HELD] if ctx.spec.artifacts.images else []


def facts(ctx: Context, target: Target) -> list[Fact]:
    return probe_command(ctx)


def plan_images(ctx: Context, target: Target) -> Iterator[Step]:
    images = ctx.spec.artifacts.images
    if not images:
        yield Skip("no image tarballs to import (artifacts.images is empty)")
        return
    have = target.facts.get(HELD)
    todo = [i for i in images if not set(i.names) <= have]
    for image in todo:  # verify every tarball before any host is touched
        yield from _fetch(image)
    for image in images:
        if image not in todo:
            yield Skip(f"{_images(image)} in containerd")
            continue
        staged = f"{STAGING}/{image.sha256}.tar"
        yield Transfer(local_path(image), staged, image.sha256, 0o600, note=f"stage {_images(image, False)}")
        yield Run(
            ("sh", "-c", IMPORT, "sh", staged, *image.names),
            timeout=600,
            note=f"import {_images(image, False)} into containerd ({NAMESPACE})",
        )


def _images(image: ImageArchive, verb: bool = True) -> str:
    one = len(image.names) == 1
    return f"image{'' if one else 's'} {image.label}" + ((" is" if one else " are") if verb else "")


def release(image: ImageArchive, url: str) -> artifacts.Release:
    return artifacts.Release("image", image.label, "", url, "", url.rsplit("/", 1)[-1], image.sha256)


def local_path(image: ImageArchive) -> str:
    """The tarball on this machine: kubeinit's cache of its url, or the file at its path."""
    if image.url:
        return str(artifacts.cache_path(image.url))
    if image.path:
        return image.path
    raise ValueError(f"image {image.label} has neither a url nor a path")  # the reader requires one


def _fetch(image: ImageArchive) -> Iterator[Step]:
    if image.url:
        yield from install.download(release(image, image.url), image.sha256)
    else:
        path = local_path(image)
        yield Local(functools.partial(verify_file, image, path), f"verify {path} sha256:{image.sha256[:12]}")


_verified: dict[tuple, bool] = {}  # (path, size, mtime, digest): hashed once per process, not once per host
_lock = threading.Lock()


def verify_file(image: ImageArchive, path: str) -> None:
    """A local tarball must have its pinned digest before it is sent anywhere."""
    try:
        st = os.stat(path)
        key = (path, st.st_size, st.st_mtime_ns, image.sha256)
        with _lock:
            if key in _verified:
                return
            h = hashlib.sha256()
            with open(path, "rb") as f:
                while chunk := f.read(1 << 20):
                    h.update(chunk)
            if h.hexdigest() != image.sha256:
                raise artifacts.ArtifactError(
                    f"image {image.label}: {path} does not match its checksum: expected sha256 {image.sha256} "
                    f"(pinned in artifacts.images), got {h.hexdigest()}; nothing was imported"
                )
            _verified[key] = True
    except OSError as e:
        raise artifacts.ArtifactError(
            f"image {image.label}: cannot read {path}: {e.strerror}; fix its path in "
            "artifacts.images of the cluster file"
        ) from None


IMAGES = PhaseImpl(plan_images, facts)
