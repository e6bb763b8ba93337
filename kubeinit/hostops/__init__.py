"""Helpers the phases share for changing a host: release archives and binaries installed with
their stamps (install.py), and shell for the services kubeinit runs under systemd (systemd.py).
They build step text; like the phases, they never act."""
