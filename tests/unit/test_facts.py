"""Facts over a real shell (LocalConnection): one round trip for many probes and digests,
each probe answered as if it had run alone."""

from __future__ import annotations

import hashlib

from kubeinit.connection import LocalConnection
from kubeinit.facts import Command, Facts, batch, files


class Counting(LocalConnection):
    def __init__(self):
        super().__init__()
        self.calls = 0

    def run(self, argv, stdin=None, timeout=600):
        self.calls += 1
        return super().run(argv, stdin, timeout)


def test_batch_keeps_each_commands_stdout_stderr_and_exit_code():
    conn = Counting()
    rs = batch(
        conn,
        [
            ("sh", "-c", "printf 'a\\nb'; echo oops >&2; exit 3"),
            ("echo", 'it\'s "quoted" $HOME'),
            ("sh", "-c", "printf 'no newline'"),
            ("false",),
        ],
    )
    assert conn.calls == 1
    assert [(r.rc, r.out, r.err) for r in rs] == [
        (3, "a\nb", "oops"),
        (0, 'it\'s "quoted" $HOME\n', ""),
        (0, "no newline", ""),
        (1, "", ""),
    ]


def test_batched_scripts_are_inlined_but_stay_apart():
    """An `sh -c` script runs in the batch's own shell (no second shell started), yet its
    variables, positional parameters and `exit` stay its own, and a `case` pattern's `)`
    inside the command substitution parses."""
    rs = batch(
        Counting(),
        [
            ("sh", "-c", 'v=1; set -- a b; case x in x) echo "matched $#";; esac; exit 4'),
            ("sh", "-c", 'echo "v=${v:-unset} $#"'),
        ],
    )
    assert [(r.rc, r.out) for r in rs[:2]] == [(4, "matched 2\n"), (0, "v=unset 0\n")]


def test_batch_output_that_looks_like_a_marker_does_not_confuse_it():
    rs = batch(Counting(), [("echo", "@@kubeinit-0000000000000000 0"), ("echo", "second")])
    assert [r.out for r in rs] == ["@@kubeinit-0000000000000000 0\n", "second\n"]


def test_gather_answers_runs_and_file_digests_in_one_round_trip(tmp_path):
    (tmp_path / "a").write_bytes(b"alpha")
    (tmp_path / "a").chmod(0o640)
    staged = tmp_path / "staged"
    staged.mkdir()
    (staged / "x.tgz").write_bytes(b"xx")
    (staged / "sub").mkdir()  # a directory in a listed directory is not a file
    conn = Counting()
    f = Facts(conn)
    f.gather(
        [
            Command(("uname", "-m")),
            Command(("sh", "-c", "echo $((6*7))")),
            *files([str(tmp_path / "a"), str(tmp_path / "missing"), f"{staged}/", str(tmp_path / "with space")]),
        ]
    )
    assert conn.calls == 1
    assert f.run("sh", "-c", "echo $((6*7))").out == "42\n"
    a = f.file(str(tmp_path / "a"))
    assert (a.sha256, a.mode) == (hashlib.sha256(b"alpha").hexdigest(), 0o640)
    assert f.file(str(tmp_path / "missing")) is None
    assert f.file(str(tmp_path / "with space")) is None
    assert f.file(f"{staged}/x.tgz").sha256 == hashlib.sha256(b"xx").hexdigest()
    assert f.file(f"{staged}/not-there.tgz") is None  # known absent: its directory was listed
    assert f.file(f"{staged}/sub") is None
    assert conn.calls == 1, "everything asked after gather came from the cache"
    f.gather([Command(("uname", "-m")), *files([str(tmp_path / "a"), f"{staged}/"])])
    assert conn.calls == 1, "a second gather of known facts costs nothing"


def test_a_file_another_program_wrote_is_asked_again_once_forgotten(tmp_path):
    # The kubelet writes kubelet.conf during join's TLS bootstrap, after kubelet-start read it absent.
    conf = tmp_path / "kubelet.conf"
    f = Facts(LocalConnection())
    assert f.file(str(conf)) is None and f.read(str(conf)) is None
    conf.write_bytes(b"written by the kubelet")
    assert f.file(str(conf)) is None, "cached: the executor must say what changed"
    f.forget([str(conf)])
    assert f.file(str(conf)).sha256 == hashlib.sha256(b"written by the kubelet").hexdigest()
    assert f.read(str(conf)) == b"written by the kubelet"


def test_a_file_with_spaces_in_its_name_is_found(tmp_path):
    p = tmp_path / "with space"
    p.write_bytes(b"z")
    f = Facts(LocalConnection())
    f.prefetch([str(p)])
    assert f.file(str(p)).sha256 == hashlib.sha256(b"z").hexdigest()


def test_shared_facts_are_asked_in_one_round_trip_and_parsed_here():
    """The typed facts' commands, run by this machine's shell, parse to what is true here."""
    import platform
    import shutil

    from kubeinit.facts.host import GOARCH, Addresses, Arch, Hostname, OsRelease, Stamps, UnitState

    conn = Counting()
    f = Facts(conn)
    f.gather([Arch(), OsRelease(), UnitState("kubeinit-no-such-unit"), Stamps("kubeinit-no-such-*")])
    assert conn.calls == 1
    assert f.get(Arch()) == GOARCH.get(platform.machine(), platform.machine()) and f.get(Arch()) != "x86_64"
    release = dict(line.split("=", 1) for line in open("/etc/os-release").read().splitlines() if "=" in line)
    assert f.get(OsRelease()).id == release["ID"].strip('"')
    assert f.get(UnitState("kubeinit-no-such-unit")).running is False
    assert f.get(Stamps("kubeinit-no-such-*")) == {}
    assert conn.calls == 1, "answered from the cache"
    f.gather([Hostname(), Addresses()])
    assert f.get(Hostname()) == platform.node() and conn.calls == 2
    assert "127.0.0.1" in f.get(Addresses()) or shutil.which("ip") is None
    f.changed()
    assert f.get(Arch()) and conn.calls == 2, "the architecture is kept when a phase changed the host"
    f.get(UnitState("kubeinit-no-such-unit"))
    assert conn.calls == 3, "a unit's state is asked again"


def test_path_and_command_facts_parse_what_this_machines_shell_says(tmp_path, monkeypatch):
    """Which, Commands, Exists, Writable, Mode, RealPath, Listening and the containerd facts, asked
    in one round trip over a real shell, about a directory laid out here."""
    import os
    import socket

    from kubeinit.facts.containerd import ContainerdConfig, ContainerdImages, CriSettings
    from kubeinit.facts.host import Commands, Exists, Listening, Mode, RealPath, Which, Writable

    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    ctr = bin_dir / "ctr"  # lists two images in k8s.io, as `ctr -n k8s.io images ls -q` prints them
    ctr.write_text('#!/bin/sh\n[ "$2" = k8s.io ] && printf "registry.k8s.io/pause:3.10\\nimg:1\\n"\n')
    ctr.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(tmp_path / "containerd.sock"))
    (tmp_path / "ro").write_text("x")
    (tmp_path / "ro").chmod(0o444)
    (tmp_path / "link").symlink_to(tmp_path / "bin")
    config = tmp_path / "config.toml"
    config.write_text("[plugins]\n  SystemdCgroup = true\n  # restrict_oom_score_adj = true\n")
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    port = listener.getsockname()[1]

    asked = {
        Which("no-such-command-here"): None,
        Commands(("ctr", "sh", "no-such-command-here")): {"ctr", "sh"},
        Exists((str(tmp_path / "ro"), str(tmp_path / "missing"), str(tmp_path / "link"))): {
            str(tmp_path / "ro"),
            str(tmp_path / "link"),
        },
        Mode(str(tmp_path / "ro")): 0o444,
        Mode(str(tmp_path / "missing")): None,
        RealPath(str(tmp_path / "link" / ".." / "x")): str(tmp_path / "x"),
        ContainerdConfig(str(config)): CriSettings(systemd_cgroup=True, restrict_oom_score_adj=False),
        ContainerdConfig(str(tmp_path / "missing")): None,
        ContainerdImages("k8s.io", str(tmp_path / "containerd.sock")): {"registry.k8s.io/pause:3.10", "img:1"},
        ContainerdImages("k8s.io", str(tmp_path / "no.sock")): set(),
    }
    conn = Counting()
    f = Facts(conn)
    which = Which("ctr", "/nowhere/ctr")  # not there: the PATH's
    f.gather([*asked, which, Listening(), Writable((str(tmp_path / "ro"), str(tmp_path)))])
    assert conn.calls == 1
    assert {fact: f.get(fact) for fact in asked} == asked
    program, st = f.get(which), os.stat(ctr)
    size, _, inode, _ = program.fingerprint.split(":")  # install.FINGERPRINT: size, mtime, inode, ctime
    assert (program.path, int(size), int(inode)) == (str(ctr), st.st_size, st.st_ino)
    assert port in f.get(Listening())
    writable = f.get(Writable((str(tmp_path / "ro"), str(tmp_path))))
    assert str(tmp_path) in writable and (str(tmp_path / "ro") in writable) == (os.geteuid() == 0)
    listener.close()
    sock.close()
