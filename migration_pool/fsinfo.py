"""Which filesystem holds a run directory, and whether its file locks reach other hosts.

Islands on several hosts share a run directory over a network filesystem. `flock` (the
manifest lock, the island claim) is coherent across hosts on most of them, but a mount can
keep locks on the client (NFS `nolock`, `local_lock=flock|all`; Lustre `localflock`) or have
none (Lustre `noflock`), and BeeGFS keeps them node-local unless the client sets
`tuneUseGlobalFileLocks`. FUSE network filesystems (sshfs, s3fs, rclone, gcsfuse, ...; their
mountinfo fstype is `fuse.<name>`) show a rename or an in-place write to other hosts, but their
flock is only this host's FUSE client's. There a second copy of an island on another host is kept out only by
the island's lease (`migration_pool.lease`), and two hosts creating a run's manifest at the same
instant may each keep their own, so `islands launch` (which writes the manifest before any
island starts) is the safe way to start a cluster run. `lock_warning` says so in one line.

The mount is found in /proc/self/mountinfo (proc(5)): the longest mount point containing the
run directory's real path, the last listed on a tie (a mount stacked over another). Lines that
do not parse are skipped: this is advice, never a reason to refuse a run.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

MOUNTINFO = "/proc/self/mountinfo"
MAX_MOUNTINFO_BYTES = 16 << 20
MAX_CONF_BYTES = 1 << 20
# Filesystem types (mountinfo's fstype field) that hosts share, by the name users know.
SHARED = {"nfs": "NFS", "nfs4": "NFS", "lustre": "Lustre", "gpfs": "GPFS", "beegfs": "BeeGFS",
          "ceph": "CephFS", "fuse.ceph-fuse": "CephFS", "fuse.ceph": "CephFS"}
# FUSE clients of network or object storage: the kernel's flock on a FUSE mount stays in this
# host's kernel (these clients implement no lock operations), so locks are node-local. Other
# fuse.* types (bindfs, mergerfs, fuse-overlayfs, lxcfs, ...) are local and not listed.
FUSE_NETWORK = {"fuse.sshfs": "sshfs", "fuse.s3fs": "s3fs", "fuse.rclone": "rclone",
                "fuse.gcsfuse": "gcsfuse", "fuse.goofys": "goofys", "fuse.blobfuse": "blobfuse",
                "fuse.blobfuse2": "blobfuse", "fuse.mountpoint-s3": "mountpoint-s3", "fuse.davfs": "davfs",
                "fuse.s3backer": "s3backer", "fuse.curlftpfs": "curlftpfs"}
SHARED.update(FUSE_NETWORK)
_ESCAPE = re.compile(r"\\([0-7]{3})")


@dataclass(frozen=True)
class Mount:
    """One line of mountinfo: where, what type, from where, and its options (the per-mount and
    the superblock options together: NFS lists `nolock` and `local_lock=` among the latter)."""

    mount_point: str
    fstype: str
    source: str
    options: tuple[str, ...]

    def option(self, name: str) -> str | None:
        """The value of `name=value` ("" for a bare flag), None when absent."""
        for opt in self.options:
            key, sep, value = opt.partition("=")
            if key == name:
                return value if sep else ""
        return None


@dataclass(frozen=True)
class FsInfo:
    """The run directory's mount and what it means for locking.

    `shared` is the filesystem's common name ("NFS", "Lustre", ...) or None for a local one;
    `locking` is "coherent", "node-local", "absent" or "unknown", and `why` the option that
    decided it.
    """

    path: str
    mount: Mount
    shared: str | None
    locking: str
    why: str


def _unescape(field: str) -> str:
    """mountinfo writes space, tab, newline and backslash in paths as octal escapes (\\040)."""
    return _ESCAPE.sub(lambda m: chr(int(m.group(1), 8)), field)


def parse_mountinfo(text: str) -> list[Mount]:
    """The mounts listed in `text` (the format of /proc/self/mountinfo), in order.

    A line: `ID PARENT MAJ:MIN ROOT MOUNT_POINT OPTIONS [OPTIONAL...] - FSTYPE SOURCE SUPER_OPTIONS`.
    Malformed lines are skipped.
    """
    mounts = []
    for line in text.splitlines():
        fields = line.split()
        try:
            sep = fields.index("-", 6)
        except ValueError:
            continue
        if len(fields) < sep + 3 or not fields[4].startswith("/"):
            continue
        options = fields[5].split(",") + (fields[sep + 3].split(",") if len(fields) > sep + 3 else [])
        mounts.append(Mount(_unescape(fields[4]), _unescape(fields[sep + 1]), _unescape(fields[sep + 2]),
                            tuple(o for o in options if o)))
    return mounts


def mount_of(path: str | os.PathLike, mounts: list[Mount]) -> Mount | None:
    """The mount holding `path` (an absolute, resolved path): the longest mount point that is
    `path` or one of its parents; the last listed wins a tie."""
    path = os.fspath(path)
    best: Mount | None = None
    for m in mounts:
        point = m.mount_point.rstrip("/") or "/"
        inside = path == point or path.startswith(point if point == "/" else point + "/")
        if inside and (best is None or len(point) >= len(best.mount_point.rstrip("/") or "/")):
            best = m
    return best


def locking(mount: Mount) -> tuple[str, str]:
    """(coherent | node-local | absent | unknown, the option that says so) for `mount`'s flock."""
    kind = SHARED.get(mount.fstype)
    if kind is None:
        return "coherent", "a local filesystem"
    if kind == "NFS":
        if mount.option("nolock") is not None:
            return "node-local", "nolock"
        local = mount.option("local_lock")
        if local in ("flock", "all"):  # "posix" leaves flock to the server; "none" is the default
            return "node-local", f"local_lock={local}"
        return "coherent", f"local_lock={local}" if local is not None else "NFS locking"
    if kind == "Lustre":
        for opt, verdict in (("noflock", "absent"), ("localflock", "node-local"), ("flock", "coherent")):
            if mount.option(opt) is not None:
                return verdict, opt
        return "unknown", "no flock option (Lustre's default depends on its version)"
    if kind == "BeeGFS":
        return _beegfs(mount)
    if mount.fstype in FUSE_NETWORK:
        return "node-local", "a FUSE client: flock stays on this host"
    return "coherent", f"{kind} locks are cluster-wide"


def _beegfs(mount: Mount) -> tuple[str, str]:
    """BeeGFS keeps locks node-local unless its client config sets tuneUseGlobalFileLocks."""
    conf = mount.option("cfgFile")
    if not conf:
        return "unknown", "no cfgFile option to read tuneUseGlobalFileLocks from"
    try:
        with open(conf, "rb") as f:
            text = f.read(MAX_CONF_BYTES).decode("utf-8", "replace")
    except OSError:
        return "unknown", f"{conf} unreadable"
    for line in text.splitlines():
        key, sep, value = line.split("#", 1)[0].partition("=")
        if sep and key.strip() == "tuneUseGlobalFileLocks":
            on = value.strip().lower() in ("true", "1", "yes")
            return ("coherent" if on else "node-local"), f"tuneUseGlobalFileLocks={value.strip()}"
    return "node-local", "tuneUseGlobalFileLocks unset (false)"


def _existing(path: Path) -> Path:
    """`path` resolved, or its nearest existing parent (a run directory not created yet)."""
    path = Path(os.path.abspath(path))
    while not path.exists() and path.parent != path:
        path = path.parent
    return path.resolve()


def describe(path: str | os.PathLike, mountinfo: str | None = None) -> FsInfo | None:
    """What holds `path`; None where mountinfo cannot be read (not Linux) or lists no mount."""
    if mountinfo is None:
        try:
            with open(MOUNTINFO, "rb") as f:
                mountinfo = f.read(MAX_MOUNTINFO_BYTES).decode("utf-8", "replace")
        except OSError:
            return None
    where = str(_existing(Path(path)))
    mount = mount_of(where, parse_mountinfo(mountinfo))
    if mount is None:
        return None
    verdict, why = locking(mount)
    return FsInfo(where, mount, SHARED.get(mount.fstype), verdict, why)


def lock_warning(path: str | os.PathLike, mountinfo: str | None = None) -> str | None:
    """One line for stderr when the run directory's file locks stop at this host; else None."""
    try:
        info = describe(path, mountinfo)
    except OSError:
        return None
    if info is None or info.shared is None or info.locking not in ("node-local", "absent"):
        return None
    what = "node-local" if info.locking == "node-local" else "absent"
    return (f"warning: the run directory is on {info.shared} ({info.mount.mount_point}, {info.why}): file locks "
            f"are {what} there, so only the islands' leases keep an island from running twice on two "
            "hosts (see README, \"Running on a cluster\")")


def on_shared_filesystem(path: str | os.PathLike, mountinfo: str | None = None) -> bool:
    """Whether `path` lies on a network filesystem (NFS, Lustre, ...): False when unknown.

    The pool fsyncs its in-place migrant rings there, because other hosts see a file's new
    bytes only once the writer's client has sent them to the server (close-to-open caching).
    """
    try:
        info = describe(path, mountinfo)
    except OSError:
        return False
    return info is not None and info.shared is not None
