"""Is the process that wrote a record still alive? The one rule, for the report and the tests.

The rule lives with the lease it first served (`migration_pool.lease.pid_alive`: a reused pid
or a zombie is not the writer); the status side names it here.
"""
from __future__ import annotations

from migration_pool.lease import REUSE_SLACK_S, pid_alive

__all__ = ["REUSE_SLACK_S", "pid_alive"]
