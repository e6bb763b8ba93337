"""--zones checked against the resolved region before any call (exit 2, one line)."""

from __future__ import annotations

import re

from kubeinit.errors import UserError

_AWS_ZONE = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d{1,2}[a-z]$")  # eu-west-1a
_GCP_ZONE = re.compile(r"^[a-z]+(-[a-z]+)*\d+-[a-z]$")  # europe-west1-b


def check(spec) -> None:
    zones, where = spec.zones, spec.region or ""
    if not zones:
        return
    if spec.provider == "eks":
        bad = [z for z in zones if not (_AWS_ZONE.match(z) and z[:-1] == where)]
        if bad:
            raise UserError(f"--zones: {bad[0]!r} is not an availability zone of region {where} (e.g. {where}a)")
    elif spec.provider == "gke":
        region = where.rsplit("-", 1)[0] if _GCP_ZONE.match(where) else where
        bad = [z for z in zones if not (_GCP_ZONE.match(z) and z.rsplit("-", 1)[0] == region)]
        if bad:
            raise UserError(f"--zones: {bad[0]!r} is not a zone of region {region} (e.g. {region}-b)")
        if where != region and where not in zones:  # a zonal cluster's node locations include its own zone
            raise UserError(f"--zones must include the cluster's zone {where} (GKE's rule for zonal clusters)")
