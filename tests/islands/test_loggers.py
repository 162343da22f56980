"""User loggers and the on_generation callback (`islands.loggers`) on real island runs."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from islands.errors import ConfigError
from islands.loggers import Logger, LoggerSpec, parse_logger
from islands.runs import evolve
from migration_pool.rundir import RunDir
from support.factories import QUIET, small_config
from support.procs import child_env


def _history(root, island="island-00"):
    return RunDir(root).island(island).read_history()


class Recording(Logger):
    def __init__(self, fail_at=None):
        self.lines, self.events, self.closed, self.fail_at = [], [], 0, fail_at

    def on_generation(self, record):
        if record.generation == self.fail_at:
            raise RuntimeError("disk full")
        self.lines.append(record.to_body())

    def on_migration(self, event):
        self.events.append(event)

    def close(self):
        self.closed += 1


def test_callback_and_jsonl_logger_see_every_history_line(tmp_path):
    seen = []
    rec = Recording()
    evolve("island-00", tmp_path / "run", small_config(generations=12), loggers=[rec, f"jsonl:{tmp_path / 'logs'}"],
           on_generation=lambda island, record: seen.append((island, record.to_body())), **QUIET)
    history = _history(tmp_path / "run")
    assert [b for _, b in seen] == history and {i for i, _ in seen} == {"island-00"}
    assert rec.lines == history and rec.closed == 1
    logged = [json.loads(x) for x in (tmp_path / "logs" / "island-00.jsonl").read_text().splitlines()]
    gens = [x for x in logged if x["kind"] == "generation"]
    assert [{k: v for k, v in x.items() if k not in ("island", "kind")} for x in gens] == history
    assert all(x["island"] == "island-00" for x in logged)


class Crash(BaseException):
    """Not an Exception: it ends the island as a crash would, past the loggers' guard."""


def crash_at_14(root, cfg, logger) -> None:
    """Run island-00 with `logger` until it crashes at generation 14 (its last checkpoint: 10)."""
    def crash(_island, record):
        if record.generation == 14:
            raise Crash()

    with pytest.raises(Crash):
        evolve("island-00", root, cfg, loggers=[logger], on_generation=crash, **QUIET)


def test_a_resumed_island_cuts_its_jsonl_log_back_so_each_generation_is_logged_once(tmp_path):
    """A crash after the checkpoint at generation 10: the resumed island replays 11-14. Before,
    the jsonl log then held those generations twice (history.jsonl was cut back, the log was
    not); now it is told `on_resume` and holds each once, equal to the history."""
    cfg, logs = small_config(generations=20, checkpoint_every=10), f"jsonl:{tmp_path / 'logs'}"
    crash_at_14(tmp_path / "run", cfg, logs)
    path = tmp_path / "logs" / "island-00.jsonl"
    assert [json.loads(x)["generation"] for x in path.read_text().splitlines()][-1] == 14
    resumed = []

    class Told(Logger):
        def on_generation(self, record):
            pass

        def on_resume(self, generation, migrated):
            resumed.append(generation)

    evolve("island-00", tmp_path / "run", cfg, loggers=[logs, Told()], **QUIET)
    assert resumed == [10]
    logged = [json.loads(x) for x in path.read_text().splitlines()]
    gens = [x for x in logged if x["kind"] == "generation"]
    assert [g["generation"] for g in gens] == list(range(21))
    assert [x["generation"] for x in logged if x["kind"] == "migration"] == [10]  # once, not replayed
    assert [{k: v for k, v in x.items() if k not in ("island", "kind")} for x in gens] == _history(tmp_path / "run")


@pytest.mark.parametrize("migrated, kept", [(True, [4, 5]), (False, [4])])
def test_the_jsonl_cut_keeps_a_migration_at_the_checkpoint_only_if_it_is_not_replayed(tmp_path, migrated, kept):
    from islands.loggers import JsonlLogger

    path = tmp_path / "island-00.jsonl"
    lines = [{"kind": "generation", "generation": g} for g in range(8)]
    lines[5:5] = [{"kind": "migration", "generation": 4}]  # after generation 4's line
    lines[7:7] = [{"kind": "migration", "generation": 5}]
    path.write_text("".join(json.dumps(x) + "\n" for x in lines) + "not json\n")
    logger = JsonlLogger(path, "island-00")
    logger.on_resume(5, migrated)
    logger.close()
    body = path.read_text().splitlines()
    assert body[-1] == "not json"  # what it cannot read is not its to drop
    got = [json.loads(x) for x in body[:-1]]
    assert [x["generation"] for x in got if x["kind"] == "generation"] == list(range(6))
    assert [x["generation"] for x in got if x["kind"] == "migration"] == kept


def test_a_failing_logger_is_reported_once_and_detached_and_the_island_evolves_on(tmp_path):
    bad, good, messages = Recording(fail_at=3), Recording(), []
    result = evolve("island-00", tmp_path, small_config(generations=10), loggers=[bad, good], log=messages.append)
    assert result.reason == "generations" and result.generation == 10
    warnings = [m for m in messages if "logger" in m]
    assert len(warnings) == 1 and "RuntimeError: disk full" in warnings[0] and "detached" in warnings[0], messages
    assert [x["generation"] for x in bad.lines] == [0, 1, 2] and bad.closed == 1  # closed once, not again at the end
    assert good.lines == _history(tmp_path) and good.closed == 1  # the other logger is not affected


def test_logger_specs_are_checked_before_anything_is_written(tmp_path):
    assert parse_logger("jsonl:a:b") == LoggerSpec("jsonl", "a:b")
    assert parse_logger("my.pkg:make") == LoggerSpec("factory", "my.pkg:make")
    for bad in ("jsonl", "jsonl:", "csv", "my pkg:make", "pkg:ma-ke"):
        with pytest.raises(ConfigError):
            parse_logger(bad)
    for spec in ("no_such_module_here:make", "json:dumps_nothing", "bogus"):
        with pytest.raises(ConfigError, match="--logger"):
            evolve("island-00", tmp_path / "run", small_config(generations=2), loggers=[spec], **QUIET)
    assert not (tmp_path / "run").exists()


def test_cli_logger_options_in_a_real_process(tmp_path):
    """`islands evolve --logger jsonl:... --logger module:factory`: per-island files, the user's
    factory imported from the working folder; a bad spec is one line, exit 2, nothing written."""
    (tmp_path / "mylogs.py").write_text(
        "from islands.loggers import Logger\n"
        "class Count(Logger):\n"
        "    def __init__(self, island):\n"
        "        self.island, self.n = island, 0\n"
        "    def on_generation(self, record):\n"
        "        self.n += 1\n"
        "    def close(self):\n"
        "        open(f'{self.island}.count', 'w').write(str(self.n))\n"
        "def make(island):\n"
        "    return Count(island)\n")
    cmd = [sys.executable, "-m", "islands", "evolve", "island-02", "--run-dir", "run", "--generations", "7",
           "--dim", "3", "--quiet", "--logger", "jsonl:logs", "--logger", "mylogs:make"]
    r = subprocess.run(cmd, cwd=tmp_path, env=child_env(), capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "island-02.count").read_text() == "8"  # generations 0..7
    lines = (tmp_path / "logs" / "island-02.jsonl").read_text().splitlines()
    assert [json.loads(x)["generation"] for x in lines if '"generation"' in x][-1] == 7
    bad = cmd[:6] + ["other"] + cmd[7:-2] + ["--logger", "mylogs:nothing"]
    r = subprocess.run(bad, cwd=tmp_path, env=child_env(), capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "mylogs has no nothing" in r.stderr, r.stderr
    assert not (tmp_path / "other").exists()


def test_tensorboard_logger_writes_events_tensorboard_reads_back(tmp_path):
    pytest.importorskip("tensorboard", reason="tensorboard not installed (the islands[tensorboard] extra)")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    evolve("island-00", tmp_path / "run", small_config(generations=9), loggers=[f"tensorboard:{tmp_path / 'tb'}"],
           **QUIET)
    acc = EventAccumulator(str(tmp_path / "tb" / "island-00"))
    acc.Reload()
    history = _history(tmp_path / "run")
    for tag in ("best", "best_ever", "mean", "evaluations"):
        events = acc.Scalars(tag)
        assert [e.step for e in events] == [h["generation"] for h in history]
        assert [e.value for e in events] == pytest.approx([h[tag] for h in history], rel=1e-6)
    assert [e.step for e in acc.Scalars("diversity")] == [h["generation"] for h in history if "diversity" in h]


def test_a_resumed_islands_tensorboard_curve_has_each_generation_once(tmp_path):
    pytest.importorskip("tensorboard", reason="tensorboard not installed (the islands[tensorboard] extra)")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    cfg, tb = small_config(generations=20, checkpoint_every=10), f"tensorboard:{tmp_path / 'tb'}"
    crash_at_14(tmp_path / "run", cfg, tb)
    evolve("island-00", tmp_path / "run", cfg, loggers=[tb], **QUIET)
    acc = EventAccumulator(str(tmp_path / "tb" / "island-00"))
    acc.Reload()
    history = _history(tmp_path / "run")
    assert [e.step for e in acc.Scalars("best")] == list(range(21))
    assert [e.value for e in acc.Scalars("best")] == pytest.approx([h["best"] for h in history], rel=1e-6)


def test_tensorboard_missing_is_one_line_naming_the_extra(tmp_path, monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "tensorboard" else real(name, *a))
    with pytest.raises(ConfigError, match=r"islands\[tensorboard\]"):
        evolve("island-00", tmp_path / "run", small_config(generations=2), loggers=["tensorboard:tb"], **QUIET)
    assert not (tmp_path / "run").exists()


def test_a_logger_that_cannot_be_built_is_left_out_with_one_warning(tmp_path, monkeypatch):
    """A factory that raises (or a folder that cannot be made) costs the logger, not the island."""
    (tmp_path / "brokenlogs.py").write_text("def make(island):\n    raise OSError('no space left')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    (tmp_path / "a_file").write_text("x")
    messages = []
    result = evolve("island-00", tmp_path / "run", small_config(generations=4),
                    loggers=["brokenlogs:make", f"jsonl:{tmp_path / 'a_file'}"], log=messages.append)
    assert result.reason == "generations"
    warnings = [m for m in messages if "could not be built" in m]
    assert len(warnings) == 2 and "brokenlogs:make" in warnings[0] and "OSError: no space left" in warnings[0]
    assert f"jsonl:{tmp_path / 'a_file'}" in warnings[1], warnings
