"""EtcdMembers: the members of the etcd cluster this host's etcd belongs to, asked of that etcd
over TLS with etcdctl (kubeinit installs both), as reset's remove-etcd-member needs them."""

from __future__ import annotations

import json
from dataclasses import dataclass

from kubeinit.connection import Result
from kubeinit.facts import Fact


@dataclass(frozen=True)
class Member:
    id: str  # hexadecimal, as `etcdctl member remove` takes it
    name: str  # "" while the member has not started
    peer_urls: tuple[str, ...]


@dataclass(frozen=True)
class Members:
    members: tuple[Member, ...] = ()
    error: str = ""  # why they could not be listed ("" when they were)

    def find(self, name: str, peer_url: str) -> Member | None:
        return next((m for m in self.members if peer_url in m.peer_urls or (m.name and m.name == name)), None)


@dataclass(frozen=True)
class EtcdMembers(Fact[Members]):
    etcdctl: str
    endpoint: str
    cacert: str
    cert: str
    key: str

    def argv(self) -> tuple[str, ...]:
        return (
            "env",
            "ETCDCTL_API=3",
            self.etcdctl,
            f"--endpoints={self.endpoint}",
            f"--cacert={self.cacert}",
            f"--cert={self.cert}",
            f"--key={self.key}",
            "--command-timeout=5s",
            "--dial-timeout=3s",
            "member",
            "list",
            "-w",
            "json",
        )

    def parse(self, r: Result) -> Members:
        if r.rc != 0:
            lines = (r.err or r.out).strip().splitlines()
            return Members(error=lines[-1] if lines else f"etcdctl exited with {r.rc}")
        try:
            data = json.loads(r.out)
            return Members(
                tuple(
                    Member(format(int(m["ID"]), "x"), m.get("name", ""), tuple(m.get("peerURLs") or ()))
                    for m in data.get("members") or ()
                )
            )
        except (ValueError, KeyError, TypeError, AttributeError) as e:
            return Members(error=f"etcdctl's member list could not be read ({e})")
