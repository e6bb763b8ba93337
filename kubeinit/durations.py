"""Durations as kubectl and kubeadm print them."""

from __future__ import annotations

from datetime import timedelta


def short_duration(d: timedelta) -> str:
    """kubectl's ShortHumanDuration: kubeadm's RESIDUAL TIME and TTL columns; 2 s past or more is <invalid>."""
    s = int(d.total_seconds())  # truncates toward zero, like Go's int()
    if s < -1:
        return "<invalid>"
    if s < 0:
        return "0s"
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m"
    hours = s // 3600
    if hours < 24:
        return f"{hours}h"
    return f"{hours // 24}d" if hours < 24 * 365 else f"{hours // (24 * 365)}y"
