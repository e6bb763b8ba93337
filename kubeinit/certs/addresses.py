"""Addresses as kubeadm reads them: IPs (Go's sloppy IPv4 too), DNS-1123 names, host:port, the
API server's service IP.

    parse_ip(s) -> IPv4Address | IPv6Address | None
    is_dns1123_subdomain(s, wildcard=False) -> bool
    parse_host_port(s) -> (host, port|None)   kubeadm's ParseHostPort; UserError naming the endpoint
    join_host_port(host, port) -> str         [v6]:port
    service_vip(service_subnet)               the first address of the first service CIDR
"""

from __future__ import annotations

import ipaddress
import re

from kubeinit.errors import UserError

_LABEL = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?"
_DNS1123 = re.compile(rf"{_LABEL}(\.{_LABEL})*")
_WILDCARD = re.compile(rf"\*\.{_LABEL}(\.{_LABEL})*")
_SLOPPY_V4 = re.compile(r"(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})")


def is_dns1123_subdomain(s: str, wildcard: bool = False) -> bool:
    return len(s) <= 253 and bool((_WILDCARD if wildcard else _DNS1123).fullmatch(s))


def parse_ip(s: str):
    """An IP, or None; like Go's ParseIPSloppy, IPv4 octets may have leading zeros."""
    try:
        return ipaddress.ip_address(s)
    except ValueError:
        m = _SLOPPY_V4.fullmatch(s)
        if m and all(int(o) <= 255 for o in m.groups()):
            return ipaddress.IPv4Address(".".join(str(int(o)) for o in m.groups()))
        return None


def parse_host_port(hostport: str) -> tuple[str, int | None]:
    """kubeadm's ParseHostPort: host is an IP or DNS-1123 name; IPv6 with a port needs [ ]."""
    host, port = hostport, None
    if hostport.startswith("["):
        end = hostport.find("]")
        if end > 0 and hostport[end + 1 : end + 2] == ":":
            host, port = hostport[1:end], hostport[end + 2 :]
    elif hostport.count(":") == 1:
        host, port = hostport.split(":")
    if port:
        if not port.isdigit() or not 1 <= int(port) <= 65535:
            raise UserError(f"endpoint {hostport!r}: port {port!r} must be a number from 1 to 65535")
    if parse_ip(host) is None and not is_dns1123_subdomain(host):
        raise UserError(f"endpoint {hostport!r}: host {host!r} must be an IP address or an RFC-1123 DNS name")
    return host, int(port) if port else None


def join_host_port(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def service_vip(service_subnet: str):
    """First address after the network of the first service CIDR (10.96.0.0/12 -> 10.96.0.1)."""
    first = service_subnet.split(",")[0].strip()
    try:
        net = ipaddress.ip_network(first, strict=False)
    except ValueError:
        raise UserError(f"service subnet {first!r} is not a CIDR") from None
    if net.num_addresses < 2:
        raise UserError(f"service subnet {first!r} has no room for the API server's service IP")
    return net.network_address + 1
