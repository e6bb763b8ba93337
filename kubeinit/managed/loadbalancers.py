"""Free a cluster's load balancers before deleting it (not available yet)."""


def free(provider, ctx) -> None:
    return None
