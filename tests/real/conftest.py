"""Fixtures of the loopback tier (realk8s.py)."""

from realk8s import control_plane  # noqa: F401 (fixture)
