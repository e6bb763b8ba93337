"""Test doubles of the clouds' APIs, on loopback only. Not kubeinit code.

aws.py  moto's server (ThreadedMotoServer) plus a request log and injected faults
gke.py  a fake GKE container v1 REST API with its OAuth token endpoint
arm.py  a fake Azure Resource Manager (ContainerService, resource groups) over
        HTTPS with the Azure-AsyncOperation protocol and a managed-identity endpoint
"""
