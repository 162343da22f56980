"""The run directory's filesystem from mountinfo lines (issue 12, item 5): the mount that holds
a path, shared filesystems, and when their file locks stop at the host."""
from __future__ import annotations

import os

import pytest

from migration_pool import fsinfo

ROOT = "22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw,errors=remount-ro"
SAMPLE = "\n".join([
    ROOT,
    "30 22 0:40 / /home rw,relatime shared:5 - nfs4 fs1:/home rw,vers=4.2,rsize=1048576,hard,proto=tcp,"
    "timeo=600,sec=sys,clientaddr=10.0.0.5,local_lock=none,addr=10.0.0.1",
    "31 22 0:41 / /scratch rw,relatime shared:6 - nfs fs2:/scratch rw,vers=3,nolock,proto=tcp,local_lock=all",
    "32 22 0:42 / /lustre rw,flock shared:7 - lustre 10.0.0.2@o2ib:/fs rw,flock,lazystatfs",
    "33 22 0:43 / /lustre2 rw - lustre 10.0.0.3@tcp:/fs rw,localflock",
    "34 22 0:44 / /lustre3 rw - lustre 10.0.0.4@tcp:/fs rw,noflock",
    "35 22 0:45 / /gpfs rw,relatime - gpfs gpfs1 rw",
    "36 22 0:46 / /ceph rw,relatime - ceph 10.0.0.6:6789:/ rw,name=admin,acl",
    r"37 30 0:47 / /home/my\040runs rw,relatime - nfs4 fs1:/runs rw,vers=4.1,local_lock=flock",
    "38 22 0:48 / /mnt/beegfs rw,relatime - beegfs beegfs_nodev rw,cfgFile=/nonexistent/beegfs-client.conf",
    "this line is not a mount",
    "39 22 0:49 / /broken rw - ",
])


def test_parse_reads_points_types_and_both_option_sets():
    mounts = fsinfo.parse_mountinfo(SAMPLE)
    assert [m.mount_point for m in mounts][:3] == ["/", "/home", "/scratch"]
    assert len(mounts) == 10  # the two malformed lines are skipped
    home = mounts[1]
    assert (home.fstype, home.source) == ("nfs4", "fs1:/home")
    assert home.option("local_lock") == "none" and home.option("relatime") == "" and home.option("nolock") is None
    assert mounts[8].mount_point == "/home/my runs"  # octal escape of a space


@pytest.mark.parametrize("path, point, shared, verdict", [
    ("/home/alice/run", "/home", "NFS", "coherent"),
    ("/home/my runs/r1", "/home/my runs", "NFS", "node-local"),  # the deeper mount wins
    ("/home/my runsx", "/home", "NFS", "coherent"),  # a prefix of the name is not a parent
    ("/scratch/r", "/scratch", "NFS", "node-local"),
    ("/lustre/r", "/lustre", "Lustre", "coherent"),
    ("/lustre2/r", "/lustre2", "Lustre", "node-local"),
    ("/lustre3", "/lustre3", "Lustre", "absent"),
    ("/gpfs/x", "/gpfs", "GPFS", "coherent"),
    ("/ceph/x", "/ceph", "CephFS", "coherent"),
    ("/mnt/beegfs/x", "/mnt/beegfs", "BeeGFS", "unknown"),  # its client config is unreadable
    ("/tmp/run", "/", None, "coherent"),
])
def test_the_mount_of_a_path_and_its_locking(path, point, shared, verdict):
    mount = fsinfo.mount_of(path, fsinfo.parse_mountinfo(SAMPLE))
    assert mount is not None and mount.mount_point == point
    assert fsinfo.SHARED.get(mount.fstype) == shared and fsinfo.locking(mount)[0] == verdict


def test_a_mount_stacked_over_another_wins():
    stacked = SAMPLE + "\n40 22 0:50 / /scratch rw - nfs4 fs3:/s rw,local_lock=none"
    assert fsinfo.mount_of("/scratch/r", fsinfo.parse_mountinfo(stacked)).source == "fs3:/s"


def test_beegfs_locking_comes_from_its_client_config(tmp_path):
    conf = tmp_path / "beegfs-client.conf"
    line = f"40 22 0:50 / /bee rw - beegfs beegfs_nodev rw,cfgFile={conf}"
    mount = fsinfo.parse_mountinfo(line)[0]
    conf.write_text("sysMgmtdHost = mgmt\n# tuneUseGlobalFileLocks = true\n")
    assert fsinfo.locking(mount)[0] == "node-local"  # BeeGFS's default; the comment does not count
    conf.write_text("tuneUseGlobalFileLocks    = true\n")
    assert fsinfo.locking(mount) == ("coherent", "tuneUseGlobalFileLocks=true")


def test_one_warning_line_only_where_locks_stop_at_the_host(tmp_path):
    tmp_path = tmp_path.resolve()
    run = tmp_path / "run"  # not created yet: its nearest existing parent decides
    for point, fstype, options, warns in [
        ("/", "ext4", "rw", False),
        (str(tmp_path), "nfs", "rw,vers=3,nolock", True),
        (str(tmp_path), "nfs4", "rw,local_lock=none", False),
        (str(tmp_path), "lustre", "rw,noflock", True),
        (str(tmp_path), "lustre", "rw,localflock", True),
        (str(tmp_path), "gpfs", "rw", False),
    ]:
        info = f"{ROOT}\n50 22 0:60 / {point} rw - {fstype} srv:/x {options}"
        line = fsinfo.lock_warning(run, info)
        assert (line is not None) == warns, (fstype, options, line)
        if warns:
            assert "\n" not in line and line.startswith("warning: ") and options.rsplit(",", 1)[1] in line


def test_this_machine_is_described_without_error(tmp_path):
    info = fsinfo.describe(tmp_path)  # whatever holds the test's temporary folder
    assert info is None or info.mount.mount_point.startswith("/")


# ----------------------------------------------------------------------------- stale handles

def test_a_read_that_fails_with_estale_or_enoent_is_tried_once_more(tmp_path, monkeypatch):
    import errno

    from migration_pool import atomic

    path = tmp_path / "f"
    path.write_bytes(b"data")
    real = atomic.read_capped
    for code in (errno.ESTALE, errno.ENOENT):
        calls = []

        def flaky(p, max_bytes=atomic.MAX_FILE_BYTES):
            calls.append(p)
            if len(calls) == 1:  # what NFS answers once for a file another host just replaced
                raise OSError(code, os.strerror(code))
            return real(p, max_bytes)

        monkeypatch.setattr(atomic, "read_capped", flaky)
        assert atomic.read_shared(path) == b"data" and len(calls) == 2
    monkeypatch.setattr(atomic, "read_capped", real)
    with pytest.raises(FileNotFoundError):  # really gone: reported as before, after one retry
        atomic.read_shared(tmp_path / "missing")
    always = []
    monkeypatch.setattr(atomic, "read_capped", lambda p, m=0: always.append(p) or (_ for _ in ()).throw(
        OSError(errno.ESTALE, "stale")))
    with pytest.raises(OSError):
        atomic.read_shared(path)
    assert len(always) == 2  # once more, not forever


def test_the_pool_reads_a_neighbours_batch_through_one_stale_handle(tmp_path, monkeypatch):
    import errno

    import numpy as np

    from migration_pool import atomic
    from migration_pool.pool import Pool
    from migration_pool.rundir import RunDir
    from support.factories import migrant_batch

    writer = Pool(RunDir(tmp_path), "run-a", dtype="float32", gene_shape=(4,))
    writer.publish(migrant_batch(np.ones((3, 4), dtype=np.float32), run_id="run-a", source="island-01",
                                 generation=5))
    real, calls = atomic.read_capped, []

    def stale_once(p, max_bytes=atomic.MAX_FILE_BYTES):
        calls.append(p)
        if len(calls) == 1:
            raise OSError(errno.ESTALE, "Stale file handle")
        return real(p, max_bytes)

    monkeypatch.setattr(atomic, "read_capped", stale_once)
    reader = Pool(RunDir(tmp_path), "run-a", dtype="float32", gene_shape=(4,), warn=lambda m: None)
    batches, bad = reader.read_new(["island-01"])
    assert [b.generation for b in batches] == [5] and bad == 0 and len(calls) == 2



@pytest.mark.parametrize("path, shared", [("/home/alice/run", True), ("/var/tmp/run", False)])
def test_migrant_rings_are_fsynced_only_on_network_filesystems(path, shared):
    """Other hosts see an in-place ring rewrite only once it reached the server (paths resolve
    to their nearest existing parent, so only mounts that exist here can be named)."""
    assert fsinfo.on_shared_filesystem(path, SAMPLE) is shared
    assert fsinfo.on_shared_filesystem(path, "") is False  # no mount known: local


FUSE = "\n".join([
    ROOT,
    "60 22 0:70 / /mnt/cluster rw,nosuid,nodev,relatime shared:80 - fuse.sshfs alice@login1:/scratch/alice "
    "rw,user_id=1000,group_id=1000",
    "61 22 0:71 / /mnt/bucket rw,nosuid,nodev,relatime - fuse.s3fs s3fs rw,user_id=1000,group_id=1000,allow_other",
    "62 22 0:72 / /mnt/rclone rw,nosuid,nodev,relatime - fuse.rclone remote:runs rw,user_id=1000,group_id=1000",
    "63 22 0:73 / /mnt/gcs rw,nosuid,nodev,relatime - fuse.gcsfuse my-bucket rw,user_id=1000,group_id=1000",
    "64 22 0:74 / /srv/bound rw,relatime - fuse.bindfs /data rw,user_id=0,group_id=0",
    "65 22 0:75 / /var/lib/lxcfs rw,nosuid,nodev,relatime - fuse.lxcfs lxcfs rw,user_id=0,group_id=0",
])


@pytest.mark.parametrize("path, shared, warns", [
    ("/mnt/cluster/runs/r1", "sshfs", True),
    ("/mnt/bucket/r", "s3fs", True),
    ("/mnt/rclone/r", "rclone", True),
    ("/mnt/gcs/r", "gcsfuse", True),
    ("/srv/bound/r", None, False),  # a local FUSE filesystem: no warning
    ("/var/lib/lxcfs/r", None, False),
])
def test_fuse_network_filesystems_warn_as_nfs_without_locks(path, shared, warns, tmp_path):
    """sshfs and object-store FUSE clients show renames and writes to other hosts, but their
    flock never leaves this host: the same one-line warning as NFS with `nolock`."""
    mount = fsinfo.mount_of(path, fsinfo.parse_mountinfo(FUSE))
    assert fsinfo.SHARED.get(mount.fstype) == shared
    assert (fsinfo.locking(mount)[0] == "node-local") is warns
    # The warning resolves the run directory to an existing path: the same mount line, at tmp_path.
    here = tmp_path.resolve()
    line_of_mount = next(x for x in FUSE.splitlines() if f" {mount.mount_point} " in x)
    info = f"{ROOT}\n" + line_of_mount.replace(f" {mount.mount_point} ", f" {here} ")
    line = fsinfo.lock_warning(here / "run", info)
    assert (line is not None) is warns
    if warns:
        assert line.startswith("warning: ") and "\n" not in line and f"on {shared} ({here}" in line
        assert "node-local" in line and "FUSE" in line
    assert fsinfo.on_shared_filesystem(here / "run", info) is warns  # rings are fsynced there too
