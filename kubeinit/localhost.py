"""Facts about the machine kubeinit runs on, for `kubeinit init` without a file: its short host
name and the address kubeadm would advertise (the default route's interface)."""

from __future__ import annotations

from kubeinit.errors import SpecError


def local_hostname() -> str:
    import socket

    return socket.gethostname().split(".")[0].lower()


def default_address() -> str:
    """The IPv4 address of the interface holding the default route, as kubeadm picks it."""
    import fcntl
    import socket
    import struct

    try:
        with open("/proc/net/route") as f:
            rows = [line.split() for line in f.read().splitlines()[1:]]
    except OSError:
        rows = []
    for row in rows:
        if len(row) > 3 and row[1] == "00000000" and int(row[3], 16) & 2:  # default, RTF_GATEWAY
            iface = row[0]
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
                try:
                    packed = fcntl.ioctl(s.fileno(), 0x8915, struct.pack("256s", iface[:15].encode()))
                    return socket.inet_ntoa(packed[20:24])  # SIOCGIFADDR
                except OSError:
                    continue
    raise SpecError(
        "--apiserver-advertise-address", "is needed: this machine has no default route to pick an address from"
    )
