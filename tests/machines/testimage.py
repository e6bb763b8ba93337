"""OCI-layout image tars that `ctr image import` takes: a tiny busybox image (Debian's
busybox-static), and images of single static binaries (write_oci + binary_layer, used by
realk8s.py for the control plane's images built from the real binaries).

Written with the stdlib so no registry, umoci or skopeo is needed. One gzip layer holds
/bin/busybox plus a symlink per applet; the image runs `sleep` forever by default, so it also
serves as a stand-in pause image.

    python tests/machines/testimage.py       # prints the tar's path
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from image import cache_dir, locked, run  # noqa: E402
from mirror import apt_download, deb_arch  # noqa: E402

REF = "docker.io/library/kubeinit-busybox:1"
# Reproducible bytes: fixed mtimes, so the digest only changes when busybox does.
_MTIME = 0


def _blob(files: dict[str, bytes], data: bytes) -> tuple[str, int]:
    digest = hashlib.sha256(data).hexdigest()
    files[f"blobs/sha256/{digest}"] = data
    return f"sha256:{digest}", len(data)


def _layer(busybox: Path) -> bytes:
    applets = subprocess.run([str(busybox), "--list"], check=True, capture_output=True, text=True).stdout.split()
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as tar:
        for d in ("bin/", "tmp/", "etc/"):
            ti = tarfile.TarInfo(d)
            ti.type, ti.mode, ti.mtime = tarfile.DIRTYPE, 0o1777 if d == "tmp/" else 0o755, _MTIME
            tar.addfile(ti)
        ti = tarfile.TarInfo("bin/busybox")
        ti.size, ti.mode, ti.mtime = busybox.stat().st_size, 0o755, _MTIME
        with open(busybox, "rb") as f:
            tar.addfile(ti, f)
        for a in sorted(set(applets) - {"busybox"}):
            ti = tarfile.TarInfo(f"bin/{a}")
            ti.type, ti.linkname, ti.mode, ti.mtime = tarfile.SYMTYPE, "busybox", 0o777, _MTIME
            tar.addfile(ti)
    return buf.getvalue()


def build_oci_tar(out: Path, busybox: Path, arch: str, ref: str = REF) -> Path:
    return write_oci(out, _layer(busybox), arch, ref, {"Env": ["PATH=/bin"], "Cmd": ["/bin/sleep", "infinity"]})


def binary_layer(files: dict[str, Path], links: dict[str, str] | None = None) -> bytes:
    """One layer holding these files (path inside the image -> file here), executable, /tmp, and
    these symlinks (path inside the image -> target)."""
    links = links or {}
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as tar:
        dirs = sorted(
            {str(Path(p).parents[i]) + "/" for p in (*files, *links) for i in range(len(Path(p).parents) - 1)}
            | {"tmp/"}
        )
        for d in dirs:
            ti = tarfile.TarInfo(d)
            ti.type, ti.mode, ti.mtime = tarfile.DIRTYPE, 0o1777 if d == "tmp/" else 0o755, _MTIME
            tar.addfile(ti)
        for name, src in sorted(files.items()):
            ti = tarfile.TarInfo(name)
            ti.size, ti.mode, ti.mtime = src.stat().st_size, 0o755, _MTIME
            with open(src, "rb") as f:
                tar.addfile(ti, f)
        for name, target in sorted(links.items()):
            ti = tarfile.TarInfo(name)
            ti.type, ti.linkname, ti.mode, ti.mtime = tarfile.SYMTYPE, target, 0o777, _MTIME
            tar.addfile(ti)
    return buf.getvalue()


def write_oci(out: Path, layer_tar: bytes, arch: str, ref: str, config: dict, compresslevel: int = 9) -> Path:
    """An OCI image layout in a tar: one gzip layer, this image config, named `ref` (the
    annotation `ctr images import` names the image after)."""
    files: dict[str, bytes] = {}
    layer, layer_size = _blob(files, gzip.compress(layer_tar, compresslevel=compresslevel, mtime=0))
    config, config_size = _blob(
        files,
        json.dumps(
            {
                "architecture": arch,
                "os": "linux",
                "config": config,
                "rootfs": {"type": "layers", "diff_ids": [f"sha256:{hashlib.sha256(layer_tar).hexdigest()}"]},
            }
        ).encode(),
    )
    manifest, manifest_size = _blob(
        files,
        json.dumps(
            {
                "schemaVersion": 2,
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "config": {
                    "mediaType": "application/vnd.oci.image.config.v1+json",
                    "digest": config,
                    "size": config_size,
                },
                "layers": [
                    {"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": layer, "size": layer_size}
                ],
            }
        ).encode(),
    )
    files["oci-layout"] = b'{"imageLayoutVersion":"1.0.0"}'
    files["index.json"] = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "manifests": [
                {
                    "mediaType": "application/vnd.oci.image.manifest.v1+json",
                    "digest": manifest,
                    "size": manifest_size,
                    "platform": {"architecture": arch, "os": "linux"},
                    # ctr import names the image after this annotation
                    "annotations": {"org.opencontainers.image.ref.name": ref},
                }
            ],
        }
    ).encode()
    tmp = out.with_suffix(".tmp")
    with tarfile.open(tmp, "w", format=tarfile.GNU_FORMAT) as tar:
        for name, data in files.items():
            ti = tarfile.TarInfo(name)
            ti.size, ti.mode, ti.mtime = len(data), 0o644, _MTIME
            tar.addfile(ti, io.BytesIO(data))
    tmp.rename(out)
    return out


def busybox_image(cache: Path | None = None) -> tuple[Path, str]:
    """(path of the OCI tar, image reference), built once per busybox-static version."""
    cache = cache or cache_dir()
    with locked(cache / ".mirror.lock"):  # shares the .deb dir with mirror.py
        deb = apt_download(["busybox-static"], cache / "debs")["busybox-static"]
        out = cache / f"testimage-{deb.stem}.tar"
        if not out.exists():
            with tempfile.TemporaryDirectory(dir=cache) as x:
                run(["dpkg-deb", "-x", str(deb), x])
                build_oci_tar(out, Path(x) / "bin/busybox", deb_arch())
    return out, REF


if __name__ == "__main__":
    print(busybox_image()[0])
