#!/usr/bin/env python3
"""Refresh kubeinit/data/checksums.json from the projects' own published checksum files.

    python scripts/update_checksums.py                     # re-read every version already listed
    python scripts/update_checksums.py containerd=1.7.31 kubelet=1.35.2 kubectl=1.35.2 kubeadm=1.35.2

Needs the internet (github.com, dl.k8s.io); it is not run in CI. Each digest comes from the
release's own checksum file at its upstream URL (kubeinit.artifacts.upstream), for amd64 and
arm64; a digest already in the table that differs from upstream's is reported and kept, never
overwritten: a release whose published digest changed is a thing for a person to look at.
"""

from __future__ import annotations

import json
import sys
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from kubeinit import artifacts

ARCHES = ("amd64", "arm64")


def published(name: str, version: str, arch: str) -> str:
    url, sums = artifacts.upstream(name, version, arch)
    with urllib.request.urlopen(sums, timeout=60) as r:  # https only: upstream() builds https URLs
        text = r.read().decode(errors="replace")
    digest = artifacts.parse_sums(text, url.rsplit("/", 1)[1])
    if digest is None:
        raise SystemExit(f"{sums} lists no sha256 for {url.rsplit('/', 1)[1]}")
    return digest


def _key(version: str) -> tuple[int, ...]:
    return tuple(int(x) for x in version.split("."))


def main(argv: list[str]) -> int:
    doc = json.loads(artifacts.TABLE.read_text())
    table = doc["artifacts"]
    wanted = (
        [(n, v.lstrip("v")) for n, v in (a.split("=", 1) for a in argv)]
        if argv
        else [(n, v) for n, vs in table.items() for v in vs]
    )
    conflicts = 0
    for name, version in wanted:
        if name not in table:
            raise SystemExit(f"unknown artifact {name!r}; one of {', '.join(table)}")
        for arch in ARCHES:
            got = published(name, version, arch)
            have = table[name].setdefault(version, {}).get(arch)
            if have is not None and have != got:
                print(f"CONFLICT {name} {version} {arch}: table {have}, upstream {got} (kept)", file=sys.stderr)
                conflicts += 1
                continue
            table[name][version][arch] = got
            print(f"{name} {version} {arch} {got}")
    doc["artifacts"] = {
        n: {v: dict(sorted(vs[v].items())) for v in sorted(vs, key=_key, reverse=True)} for n, vs in table.items()
    }
    tmp = artifacts.TABLE.with_suffix(".tmp")
    tmp.write_text(json.dumps(doc, indent=1) + "\n")
    tmp.replace(artifacts.TABLE)
    return 1 if conflicts else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
