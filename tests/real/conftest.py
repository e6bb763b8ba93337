"""Fixtures of the loopback tier (loopback.py)."""

from loopback import control_plane  # noqa: F401 (fixture)
