"""Managed Kubernetes clusters (EKS, GKE, AKS): spec, record, orchestration.

Importing this package imports no cloud SDK; providers import theirs when a
call is actually sent.
"""

from kubeinit.managed.spec import ManagedSpec, NodePoolSpec, parse_managed

__all__ = ["ManagedSpec", "NodePoolSpec", "parse_managed"]
