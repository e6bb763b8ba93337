"""Managed-cluster providers (EKS, GKE, AKS). Their SDKs are imported only when a call is sent."""

from __future__ import annotations

import importlib

from kubeinit.providers.base import Provider

_CLASSES = {
    "eks": ("kubeinit.providers.eks", "EKS"),
    "gke": ("kubeinit.providers.gke", "GKE"),
    "aks": ("kubeinit.providers.aks", "AKS"),
}


def get_provider(name: str) -> Provider:
    module, cls = _CLASSES[name]
    return getattr(importlib.import_module(module), cls)()
