"""The scheduler's records in a run directory: `RUN/slurm/` (written by `launcher/slurm.py`).

    slurm/
      job.sbatch             the batch script, replaced whole
      jobs                   one JSON line per submission (job id, pattern, index -> island)
      <job>_<index>.out      each task's output, written by SLURM itself

`SchedulerFiles` is what `RunDir.scheduler` returns.
"""
from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from migration_pool import atomic, files


@dataclass(frozen=True)
class SchedulerFiles:
    """The SLURM records of the run at `root`; touches the disk only when asked."""

    root: Path

    @property
    def slurm_dir(self) -> Path:
        """RUN/slurm: the batch script, the submitted jobs and the tasks' output files."""
        return self.root / "slurm"

    def write_slurm_script(self, text: str) -> Path:
        """Publish RUN/slurm/job.sbatch (replaced whole, so a reader never sees half of it)."""
        files.ensure(self.root)
        self.slurm_dir.mkdir(mode=0o755, exist_ok=True)
        path = self.slurm_dir / "job.sbatch"
        atomic.publish(path, text.encode())
        return path

    def record_slurm_job(self, record: dict[str, Any]) -> None:
        """Append one submission (job id, pattern, index -> island) to RUN/slurm/jobs, a JSON
        line each, so `islands status` and a later launch know which job runs which island."""
        self.slurm_dir.mkdir(mode=0o755, parents=True, exist_ok=True)
        line = (json.dumps(record, sort_keys=True) + "\n").encode()
        fd = os.open(self.slurm_dir / "jobs", os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, 0o644)
        try:
            os.write(fd, line)  # one write of one line: appends from two launchers never interleave
            os.fsync(fd)
        finally:
            os.close(fd)

    def read_slurm_output(self, task: str, max_bytes: int = 4096) -> str | None:
        """The last `max_bytes` of a SLURM task's output file RUN/slurm/TASK.out; None if absent."""
        if not re.match(r"^[0-9]+(_[0-9]+)?\Z", task):
            return None
        try:
            with open(self.slurm_dir / f"{task}.out", "rb") as f:
                f.seek(max(0, f.seek(0, os.SEEK_END) - max_bytes))
                return f.read(max_bytes).decode("utf-8", "replace")
        except FileNotFoundError:
            return None

    def read_slurm_jobs(self) -> list[dict[str, Any]]:
        """Every recorded submission, oldest first; lines that are not JSON objects are skipped."""
        try:
            with open(self.slurm_dir / "jobs", "rb") as f:
                lines = list(files.lines(f))
        except FileNotFoundError:
            return []
        return list(files.json_objects(lines))
