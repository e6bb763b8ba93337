"""A host over SSH, with paramiko (imported by this package only):

connection  SSHConnection: commands as root (`sudo -n` for other users), atomic verified
            uploads, tunnels; a lost connection is HostUnreachable
login       one login per user/address/port/key for a run (LoginPool), bastions, the SSH key,
            tuned TCP sockets
hostkeys    known_hosts (OpenSSH's format): an unknown key refused unless trusted on request,
            a changed key refused always
channels    what runs on a channel: commands, long-lived commands, tunnels, upload data
"""

from kubeinit.ssh.connection import SSHConnection
from kubeinit.ssh.login import LoginPool

__all__ = ["LoginPool", "SSHConnection"]  # what the rest of kubeinit uses
