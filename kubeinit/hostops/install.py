"""Release archives installed on a host, shared by the phases that install binaries
(runtime, etcd).

An archive goes to the host as it is, compressed, into a staging dir, verified on arrival;
one command (INSTALLER) extracts it and installs its files by rename, then writes a stamp:
the archive's sha256 and each installed file's stat fingerprint. A plan then compares
fingerprints (one stat) instead of hashing binaries on every run, and a killed run is
redone rather than trusted (the stamp is written last).
"""

from __future__ import annotations

import functools
import hashlib
import posixpath
from collections.abc import Iterator
from dataclasses import dataclass, field

from kubeinit import artifacts
from kubeinit.errors import KubeinitError
from kubeinit.facts import Unknown
from kubeinit.steps import Local, Notice, Run, Skip, Step, Transfer

STATE = "/var/lib/kubeinit"
STAGING = f"{STATE}/staging"
STAMPS = f"{STATE}/installed"
ARCH = {"x86_64": "amd64", "aarch64": "arm64", "amd64": "amd64", "arm64": "arm64"}
# A file's stat fingerprint: size, mtime, inode, ctime. Rewritten, replaced or chmod-ed, it changes.
FINGERPRINT = "%s:%.9Y:%i:%.9Z"

# Arguments: archive, its sha256, directory inside it, destination directory, stamp path, and
# optionally the names to install (default: every regular file in that directory).
INSTALLER = f"{STATE}/bin/install-archive"
INSTALL_SCRIPT = """#!/bin/sh
# Written by kubeinit: installs a release archive (see kubeinit/hostops/install.py). The archive
# was verified against its sha256 when it was uploaded.
set -e
a=$1; d=$2; src=$3; dest=$4; stamp=$5; shift 5
mkdir -p "$dest" "${stamp%/*}"
# One install at a time: a killed kubeinit leaves its install running here, and the re-run's
# must wait for it - and then find the work done (archive gone, stamp written).
exec 9>>"${stamp%/*}/.lock"
if command -v flock >/dev/null 2>&1; then flock 9; fi
if [ ! -e "$a" ] && grep -qx "archive $d" "$stamp" 2>/dev/null; then exit 0; fi
# Extract inside the destination directory: same filesystem, so each file is put in place by
# rename (atomic; a running binary keeps its old inode), never copied over.
w=$(mktemp -d "$dest/.kubeinit.XXXXXX"); trap 'rm -rf "$w"' EXIT
ino=$(stat -c %i "$a")
tar -xzf "$a" -C "$w" --no-same-owner
echo "archive $d" > "$w/.stamp"
# The source must be a real directory inside the unpack directory: were it (or a parent) a
# symlink in the archive, the loop below would move the host's own files from where it points.
s=$(realpath -e -- "$w/$src" 2>/dev/null) || s=
[ "$src" = . ] && want=$(realpath -e -- "$w") || want="$(realpath -e -- "$w")/${src%/}"
[ -n "$s" ] && [ "$s" = "$want" ] && [ -d "$s" ] && [ ! -L "$w/${src%/}" ] || {
  echo "$a: $src/ in the archive is not a directory of its own (a symlink?); refused, nothing installed" >&2; exit 1; }
n=0
for f in "$w/$src"/*; do
  [ -f "$f" ] && [ ! -L "$f" ] || continue
  b=${f##*/}
  # Named files only, when names are given: a release also holds READMEs and docs.
  if [ $# -gt 0 ]; then case " $* " in *" $b "*) ;; *) continue;; esac; fi
  chmod 0755 "$f"
  mv -f "$f" "$dest/$b"
  echo "file $(stat -c %s:%.9Y:%i:%.9Z "$dest/$b") $dest/$b" >> "$w/.stamp"
  n=$((n+1))
done
[ "$n" -gt 0 ] || { echo "$a holds no files under $src/" >&2; exit 1; }
[ $# -eq 0 ] || [ "$n" -eq $# ] || { echo "$a lacks some of: $*" >&2; exit 1; }
t=$(mktemp "$stamp.XXXXXX"); cat "$w/.stamp" > "$t"; chmod 0644 "$t"; mv -f "$t" "$stamp"
# Drop the archive unless a newer run (this one's kubeinit was killed) has staged it again.
[ "$(stat -c %i "$a" 2>/dev/null)" != "$ino" ] || rm -f "$a"
"""


def stamps_probe(glob: str = "*") -> str:
    """Shell lines printing the stamps matching STAMPS/<glob>.stamp (`<stamp file>:<line>`)
    and the fingerprint now of every file they list (`now:<fingerprint> <path>`): builtins
    and one stat, since this runs on every host on every re-run."""
    return (
        f'set --\nfor s in {STAMPS}/{glob}.stamp; do [ -f "$s" ] || continue\n'
        '  while IFS= read -r l; do echo "$s:$l"\n'
        '    case $l in "file "*) set -- "$@" "${l#file * }";; esac; done < "$s"\n'
        "done\n"
        f"[ $# -eq 0 ] || stat -c 'now:{FINGERPRINT} %n' -- \"$@\" 2>/dev/null\n"
    )


def applied_text(ids: dict[str, str]) -> str:
    """An applied record (what a service was last started on): each file's fingerprint or
    sha256, two spaces, its path, one line each in `ids` order, as `stat`/`sha256sum` print them."""
    return "".join(f"{v}  {p}\n" for p, v in ids.items())


def restart_pending(facts, record: str, now: dict[str, str | None]) -> bool:
    """True unless the service's applied record says it was started on exactly `now`: a file
    changed since, or a run was killed between writing files and restarting."""
    ids = {p: v for p, v in now.items() if v}
    applied = facts.file(record)
    return not (
        len(ids) == len(now)
        and applied is not None
        and applied.sha256 == hashlib.sha256(applied_text(ids).encode()).hexdigest()
    )


@dataclass
class Stamp:
    archive: str = ""
    files: dict[str, str] = field(default_factory=dict)  # installed path -> its fingerprint now
    intact: bool = True  # every file still has the fingerprint it was installed with


# Where kubeinit writes on a host, so where a killed run may have left a temp file: an upload's
# `.kubeinit.*` beside its target (connection.ATOMIC_WRITE: a staged archive is megabytes) or an
# INSTALLER's half-extracted `.kubeinit.*` directory beside the binaries.
TEMP_DIRS = (
    STAGING,
    f"{STATE}/bin",
    STATE,
    "/usr/local/bin",
    "/usr/local/sbin",
    "/opt/cni/bin",
    "/etc",
    "/etc/containerd",
    "/etc/systemd/system",
    "/etc/systemd/system/kubelet.service.d",
    "/etc/sysctl.d",
    "/etc/modules-load.d",
    "/etc/kubernetes",
    "/etc/kubernetes/manifests",
    "/etc/kubernetes/pki",
    "/etc/kubernetes/pki/etcd",
    "/var/lib/kubelet",
)
# A live run's temp file changes as it is written (an upload times out after minutes): one
# untouched this long is a killed run's, whatever other runs (or the host lock) are doing now.
STALE_MINUTES = 60


def leftovers_probe(dirs: tuple[str, ...] = TEMP_DIRS) -> str:
    """Shell lines printing each stale `.kubeinit.*` in `dirs`, a line each (facts.host.Leftovers):
    a glob and builtins on a clean host (no fork on a re-run); `find` only when there are candidates."""
    globs = " ".join(f"{d}/.kubeinit.*" for d in dirs)
    return (
        f'set --; for f in {globs}; do [ -e "$f" ] && set -- "$@" "$f"; done\n'
        f'[ $# -eq 0 ] || find "$@" -maxdepth 0 -mmin +{STALE_MINUTES} '
        "-exec printf '%s\\n' {} + 2>/dev/null\n"
    )


def remove_leftovers(paths: tuple[str, ...]) -> Iterator[Step]:
    """One Run removing the stale temp files the probe listed (Leftovers), only when there are some.
    Their mktemp names are never reused while they exist, so what the probe saw stale stays stale."""
    if paths:
        yield Run(
            ("rm", "-rf", "--", *paths),
            note=f"remove {len(paths)} temp {'file' if len(paths) == 1 else 'files'} a stopped run left",
        )


def parse_stamps(out: str) -> dict[str, Stamp]:
    """The stamps stamps_probe() printed (facts.host.Stamps)."""
    lines: list[tuple[str, str]] = []  # (component, stamp line)
    now: dict[str, str] = {}  # installed path -> its fingerprint now
    for line in out.splitlines():
        if line.startswith(STAMPS + "/"):  # grep -H: <stamp file>:<line>
            path, _, rest = line.partition(":")
            lines.append((path.rsplit("/", 1)[1].removesuffix(".stamp"), rest))
        elif line.startswith("now:"):
            fp, _, path = line[4:].partition(" ")
            now[path] = fp
    stamps: dict[str, Stamp] = {}
    for name, line in lines:
        s = stamps.setdefault(name, Stamp())
        f = line.split(" ", 2)  # "archive <sha256>" | "file <fingerprint at install> <path>"
        if f[0] == "archive" and len(f) >= 2:
            s.archive = f[1]
        elif f[0] == "file" and len(f) == 3:
            s.files[f[2]] = now.get(f[2], "missing")
            s.intact &= f[1] == s.files[f[2]]
        else:
            s.intact = False
    return stamps


def installed(stamp: Stamp | None, digest: str) -> bool:
    """The stamp names this archive, and every file from it is still as it was installed."""
    return bool(stamp and stamp.archive == digest and stamp.files and stamp.intact)


def write_record(path: str, commands: str) -> str:
    """Shell that writes what `commands` print to the record `path` (in STATE) through a temp file of
    its own beside it, then renames it: two runs never share a temp name, and the record is 0644
    whatever the umask (mktemp makes 0600)."""
    return (
        f"mkdir -p {STATE}; chmod 0700 {STATE}; t=$(mktemp {posixpath.dirname(path)}/.kubeinit.XXXXXX); "
        f'{{ {commands}; }} > "$t"; chmod 0644 "$t"; mv -f "$t" {path}'
    )


def binary_stamp(name: str, path: str) -> str:
    """The command that records a single binary uploaded straight into place (Transfer, verified
    on arrival) as installed: its stamp, written like an archive's, so a re-run checks it by
    stat instead of hashing it. Argument: the binary's sha256."""
    return (
        f"set -e; mkdir -p {STAMPS}; t=$(mktemp {STAMPS}/{name}.stamp.XXXXXX); "
        f'{{ echo "archive $1"; echo "file $(stat -c %s:%.9Y:%i:%.9Z {path}) {path}"; }} > "$t"; '
        f'chmod 0644 "$t"; mv -f "$t" {STAMPS}/{name}.stamp'
    )


def install_binary(rel: artifacts.Release, digest: str, path: str) -> Iterator[Step]:
    """A single binary: the verified download uploaded into place (0755), then its stamp."""
    yield Transfer(str(artifacts.cache_path(rel.url)), path, digest, 0o755, note=f"install {rel.label}")
    yield Run(("sh", "-c", binary_stamp(rel.name, path), "sh", digest), note=f"record {rel.label} as installed")


def host_arch(spec, target_name: str, machine: str) -> str:
    """artifacts.arch, else the host's (from `uname -m`); an unsupported one is an error."""
    arch = spec.artifacts.arch or ARCH.get(machine)
    if arch is None:
        raise KubeinitError(f"{target_name}: the architecture {machine or 'unknown'} is not supported (amd64, arm64)")
    return arch


UNFETCHED = "(published sha256)"  # stands in for a digest --dry-run could not fetch


def expected_sha256(ctx, rel: artifacts.Release, notices: list[Step]) -> str:
    """The digest the artifact must have (pinned, or from the release's checksum file). A
    checksum file --dry-run cannot fetch (no network yet) is an Unknown fact: a Notice says a
    real run would stop there, and the plan goes on. A version with no release stops it."""
    digest = ctx.learn(
        lambda: artifacts.expected_sha256(rel),
        lambda e: isinstance(e, artifacts.ArtifactError) and not isinstance(e, artifacts.UnlistedVersion),
    )
    if isinstance(digest, Unknown):
        notices.append(
            Notice(
                f"{str(digest).rstrip('.')}; a real run would stop here (pin artifacts.{rel.name}.sha256 "
                "or set artifacts.mirror for a site without internet)"
            )
        )
        return UNFETCHED
    return digest


def download(rel: artifacts.Release, digest: str) -> Iterator[Step]:
    """The Local download step, unless the cache already holds the verified file."""
    if artifacts.cached(rel, digest) is None:
        check = "the published sha256" if digest == UNFETCHED else f"sha256:{digest[:12]}"
        yield Local(
            functools.partial(artifacts.fetch, rel, digest),
            f"download {rel.label} (linux/{rel.arch}) from {rel.url} and verify {check}",
        )


def install_archive(
    rel: artifacts.Release, digest: str, src: str, dest: str, facts, names: tuple[str, ...] = ()
) -> Iterator[Step]:
    """Stage the archive (unless a stopped run left it there) and install it with INSTALLER.
    The caller uploads INSTALLER first (ensure_file)."""
    staged = f"{STAGING}/{rel.filename}"
    have = facts.file(staged)
    if have is not None and have.sha256 == digest:
        yield Skip(f"{rel.filename} is already staged")  # uploaded by a run that stopped before installing
    else:
        yield Transfer(str(artifacts.cache_path(rel.url)), staged, digest, 0o600, note=f"stage {rel.label}")
    yield Run(
        ("sh", INSTALLER, staged, digest, src, dest, f"{STAMPS}/{rel.name}.stamp", *names),
        note=f"install {rel.label} into {dest}",
    )
