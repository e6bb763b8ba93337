"""Host-key checking of SSHConnection against a local SSH server (tests/unit/sshserver.py).

Unknown keys are refused unless --trust-new-host-keys (which records them), and a changed
key is refused always, naming the file, the line and the ssh-keygen command that fixes it.
"""

from __future__ import annotations

import paramiko
import pytest
from sshserver import SSHServer, client_key, server  # noqa: F401 (fixtures)

from kubeinit.spec import Host, SSHOptions
from kubeinit.ssh import SSHConnection
from kubeinit.ssh.hostkeys import HostKeyRefused


def host(server, key_path, **ssh) -> Host:
    return Host("n1", "127.0.0.1", ssh=SSHOptions(user="root", port=server.port, key=key_path, **ssh))


def test_unknown_key_is_refused_by_default(server, client_key, tmp_path):
    kh = tmp_path / "known_hosts"
    with pytest.raises(HostKeyRefused) as e:
        SSHConnection(host(server, client_key[1]), known_hosts=kh)
    msg = str(e.value)
    assert "unknown host key" in msg and "--trust-new-host-keys" in msg and "verify it" in msg
    assert msg.count(". ") == 0, "one sentence"
    assert not kh.exists(), "nothing is recorded without the flag"
    assert server.commands == []


def test_trusted_key_is_recorded_then_checked(server, client_key, tmp_path):
    kh = tmp_path / "ssh" / "known_hosts"
    c = SSHConnection(host(server, client_key[1]), known_hosts=kh, trust_new_host_keys=True)
    assert c.run(["echo", "hi"]).out == "hi\n"
    c.close()
    assert kh.read_text() == server.known_hosts_line()
    assert kh.stat().st_mode & 0o777 == 0o600 and kh.parent.stat().st_mode & 0o777 == 0o700
    # next time the recorded key is simply checked, without the flag
    c = SSHConnection(host(server, client_key[1]), known_hosts=kh)
    assert c.run(["true"]).rc == 0
    c.close()
    assert kh.read_text() == server.known_hosts_line(), "a known key is not recorded twice"


def test_trusting_appends_without_touching_other_lines(server, client_key, tmp_path):
    kh = tmp_path / "known_hosts"
    kh.write_text(
        "# mine\nother.example ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl"
    )
    SSHConnection(host(server, client_key[1]), known_hosts=kh, trust_new_host_keys=True).close()
    lines = kh.read_text().splitlines()
    assert lines[:2] == [
        "# mine",
        "other.example ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl",
    ]
    assert lines[2] + "\n" == server.known_hosts_line()


@pytest.mark.parametrize("hashed", [False, True])
def test_changed_key_is_refused_even_with_the_flag(server, client_key, tmp_path, hashed):
    old = paramiko.ECDSAKey.generate()
    name = f"[127.0.0.1]:{server.port}"
    if hashed:
        name = paramiko.HostKeys.hash_host(name)
    kh = tmp_path / "known_hosts"
    before = f"# comment\nother ssh-rsa AAAA\n{name} {old.get_name()} {old.get_base64()}\n"
    kh.write_text(before)
    for trust in (False, True):
        with pytest.raises(HostKeyRefused) as e:
            SSHConnection(host(server, client_key[1]), known_hosts=kh, trust_new_host_keys=trust)
        msg = str(e.value)
        assert msg.startswith("the host key of n1 (127.0.0.1) has CHANGED")
        assert f"{kh} line 3" in msg
        assert f"ssh-keygen -R '[127.0.0.1]:{server.port}' -f {kh}" in msg
    assert kh.read_text() == before, "a changed key never overwrites the recorded one"
    assert server.commands == []


def test_bastion_key_is_checked_too(client_key, tmp_path):
    target, bastion = SSHServer([client_key[0]]), SSHServer([client_key[0]])
    try:
        kh = tmp_path / "known_hosts"
        kh.write_text(target.known_hosts_line())  # the bastion's key is not known
        h = host(target, client_key[1], bastion=f"root@127.0.0.1:{bastion.port}")
        with pytest.raises(HostKeyRefused, match="bastion 127.0.0.1 of n1 offers an unknown host key"):
            SSHConnection(h, known_hosts=kh)
        assert target.connections == 0
    finally:
        target.close()
        bastion.close()
