#!/usr/bin/env bash
# Install kubeinit, boot 3 local Debian machines (systemd-nspawn, as root) and run
# `kubeinit up` on them from the artifact mirror. Machines stay up afterwards:
#   .venv/bin/python tests/machines/machines.py ssh 1 'systemctl status containerd'
#   .venv/bin/python tests/machines/machines.py down
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/pip install -q -e .
exec .venv/bin/python demo/up_local.py "$@"
