"""kubeinit: turn plain Linux hosts into a Kubernetes cluster, or create one in a cloud."""

__version__ = "0.1.0"
