#!/bin/sh
# TEST DOUBLE of the kubelet. No kubelet build of a supported Kubernetes release exists on the
# test machines' package mirror, so tests/machines/mirror.py serves this script where the
# release's kubelet binary goes (dl.k8s.io/release/v<version>/bin/linux/<arch>/kubelet), and
# kubeinit downloads, verifies, installs and starts it exactly as it would the real one.
#
# It does what the tests can observe of a kubelet's start: refuses an unknown flag, a missing
# --config (or one that is not a KubeletConfiguration), a missing kubeconfig and a runtime
# socket that is not there, each with a kubelet-like error and exit 1; otherwise it records
# its command line in /run/kubelet-double/ and stays up. It serves no API.
set -u
VERSION="@VERSION@"
[ "${1:-}" = "--version" ] && { echo "Kubernetes v$VERSION"; exit 0; }
config= kubeconfig= bootstrap= endpoint=
for a in "$@"; do
  case $a in
    --config=*) config=${a#*=} ;;
    --kubeconfig=*) kubeconfig=${a#*=} ;;
    --bootstrap-kubeconfig=*) bootstrap=${a#*=} ;;
    --container-runtime-endpoint=*) endpoint=${a#*=} ;;
    --node-ip=*|--hostname-override=*|--v=*|--node-labels=*|--register-with-taints=*) ;;
    *) echo "E0000 run.go:72] \"command failed\" err=\"unknown flag: ${a%%=*}\"" >&2; exit 1 ;;
  esac
done
fail() { echo "E0000 run.go:72] \"command failed\" err=\"$1\"" >&2; exit 1; }
[ -r "$config" ] || fail "failed to load kubelet config file, path: $config"
grep -qx 'kind: KubeletConfiguration' "$config" || fail "$config is not a KubeletConfiguration"
[ -r "$kubeconfig" ] || [ -r "$bootstrap" ] || fail "unable to load bootstrap kubeconfig: stat $bootstrap: no such file or directory"
sock=${endpoint#unix://}
[ -S "$sock" ] || fail "validate service connection: dial unix $sock: connect: no such file or directory"
mkdir -p /run/kubelet-double
printf '%s\n' "$@" > /run/kubelet-double/args
date +%s.%N >> /run/kubelet-double/starts
exec sleep infinity
