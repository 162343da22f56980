"""User loggers: the island's generations and migrations, sent to files and tools of the user's choice.

A `Logger` sees what the island records in its `history.jsonl`, one `HistoryLine` per
generation (`on_generation`), each migration event (`on_migration`), and `close()` once at
the island's end. It is one more recorder (`islands.events`): `LoggerRecorder` adapts it and
runs after the island's own recorders, so the line it is given is the one the history holds,
and the island's files are written before any user code runs.

A failing logger must not kill the island (an evolution of hours is worth more than its
plot): the first exception a logger raises is reported in one warning line on the island's
log, the logger is closed (quietly) and detached, and the island evolves on.

Built in, named on the command line by `--logger KIND:FOLDER` (one file or run per island):

    jsonl:FOLDER        FOLDER/<island>.jsonl, one JSON object per generation or migration
    tensorboard:FOLDER  TensorBoard event files in FOLDER/<island>/ (extra islands[tensorboard])
    MODULE:FACTORY      your own: FACTORY(island) returns a Logger (imported in the island)

A resumed island replays the generations after its last checkpoint. As history.jsonl is cut
back to that generation first, a logger is told so (`on_resume`) before the replay: the jsonl
logger cuts its file back the same way, the TensorBoard logger purges the later steps, and a
logger of your own overrides `on_resume` (by default it sees the replayed generations again).
"""
from __future__ import annotations

import importlib
import importlib.util
import json
import os
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable, Mapping, Sequence

from islands.errors import ConfigError
from islands.events import Recorder
from islands.status.record import HistoryLine, MigrationEvent

if TYPE_CHECKING:
    from islands.checkpoint import Progress
    from islands.recorders import HistoryRecorder

LOGGERS_ENV = "ISLANDS_LOGGERS"  # set by `launch --logger` for its islands: specs, one per line
BUILT_IN = ("jsonl", "tensorboard")
TENSORBOARD_MISSING = "--logger tensorboard needs the tensorboard package: pip install 'islands[tensorboard]'"
FLUSH_S = 1.0  # a file logger flushes at most this often (and at close): tail -f sees it live


class Logger(ABC):
    """What a user logger implements; one instance per island, used by that island's process only."""

    @abstractmethod
    def on_generation(self, record: HistoryLine) -> None:
        """A generation (0: the first population) was evaluated; `record.to_body()` is its
        history.jsonl line as a dict."""

    def on_migration(self, event: MigrationEvent) -> None:
        """A migration event ran (sent, received, adopted, ... and the sources read)."""

    def on_resume(self, generation: int, migrated: bool) -> None:
        """The island resumes from its checkpoint at `generation`, before any other call: the
        generations after it come again, and so does the migration at `generation` unless
        `migrated` (drop what you logged of them)."""

    def close(self) -> None:
        """The island ended (finished, stopped or failed): flush and release files."""


class CallbackLogger(Logger):
    """`evolve(..., on_generation=fn)`: fn(island, record) per generation."""

    def __init__(self, island: str, fn: Callable[[str, HistoryLine], None]) -> None:
        self.island, self.fn = island, fn

    def on_generation(self, record: HistoryLine) -> None:
        self.fn(self.island, record)

    def __repr__(self) -> str:
        return f"on_generation={getattr(self.fn, '__qualname__', self.fn)!r}"


class JsonlLogger(Logger):
    """One JSON object per line: {"island", "kind": "generation", ...the history line} or
    {"island", "kind": "migration", "generation", "time", ...the event}. Appends, so a resume
    continues the file, cut back first to what the resumed island does not replay."""

    def __init__(self, path: str | Path, island: str) -> None:
        self.path, self.island = Path(path), island
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.file = open(self.path, "a", encoding="utf-8")
        self.flushed = time.monotonic()
        self.generation = 0

    def on_generation(self, record: HistoryLine) -> None:
        self.generation = record.generation or 0
        self._write({"island": self.island, "kind": "generation", **record.to_body()})

    def on_migration(self, event: MigrationEvent) -> None:  # it runs at the last generation seen
        self._write({"island": self.island, "kind": "migration", "generation": self.generation,
                     "time": round(time.time(), 3), **event.to_body()})

    def on_resume(self, generation: int, migrated: bool) -> None:
        """Keep the generation lines up to `generation` and the migration lines before it (at it:
        if `migrated`), replacing the file atomically; a line that does not parse is kept."""
        self.file.close()
        kept = []
        with open(self.path, encoding="utf-8", errors="replace") as f:
            for line in f:
                try:
                    body = json.loads(line)
                    g, kind = body.get("generation"), body.get("kind")
                except (ValueError, AttributeError):
                    g, kind = None, None
                if not isinstance(g, int) or g < generation or (g == generation and (kind != "migration" or migrated)):
                    kept.append(line if line.endswith("\n") else line + "\n")
        tmp = self.path.with_name(self.path.name + ".tmp")
        tmp.write_text("".join(kept), encoding="utf-8")
        os.replace(tmp, self.path)
        self.file = open(self.path, "a", encoding="utf-8")
        self.generation = generation  # a replayed migration at `generation` comes before any line

    def _write(self, body: dict[str, Any]) -> None:
        self.file.write(json.dumps(body) + "\n")
        if time.monotonic() - self.flushed >= FLUSH_S:
            self.file.flush()
            self.flushed = time.monotonic()

    def close(self) -> None:
        self.file.close()

    def __repr__(self) -> str:
        return f"jsonl:{self.path}"


class TensorBoardLogger(Logger):
    """TensorBoard scalars, step = generation: best, mean, best_ever, evaluations, and on sampled
    generations diversity and foreign share; per migration event its counters (migration/...).
    Each island is one TensorBoard run (FOLDER/<island>), so `tensorboard --logdir FOLDER` shows
    the islands' curves on one chart."""

    TAGS = ("best", "mean", "best_ever", "evaluations", "diversity", "foreign")

    def __init__(self, logdir: str | Path) -> None:
        try:
            from torch.utils.tensorboard import SummaryWriter  # lazy: needs the optional tensorboard package
        except ImportError:
            raise ConfigError(TENSORBOARD_MISSING) from None
        self.logdir = Path(logdir)
        self.make = SummaryWriter
        self.writer = SummaryWriter(log_dir=str(self.logdir))
        self.generation = 0

    def on_resume(self, generation: int, migrated: bool) -> None:
        """TensorBoard's own way: a writer with purge_step drops the earlier events at later steps."""
        self.writer.close()
        self.writer = self.make(log_dir=str(self.logdir), purge_step=generation + 1)
        self.generation = generation

    def on_generation(self, record: HistoryLine) -> None:
        self.generation = record.generation or 0
        for tag in self.TAGS:
            value = getattr(record, tag)
            if value is not None:
                self.writer.add_scalar(tag, value, self.generation, walltime=record.time)

    def on_migration(self, event: MigrationEvent) -> None:
        for tag, value in event.to_body().items():
            if isinstance(value, (int, float)):
                self.writer.add_scalar(f"migration/{tag}", value, self.generation)

    def close(self) -> None:
        self.writer.close()

    def __repr__(self) -> str:
        return f"tensorboard:{self.logdir}"


@dataclass(frozen=True)
class LoggerSpec:
    """A logger named on the command line: KIND:FOLDER for a built-in one, MODULE:FACTORY for yours."""

    kind: str  # "jsonl", "tensorboard", or "factory"
    target: str  # the folder, or the import path "module:factory"

    def build(self, island: str) -> Logger:
        """This island's logger (in the island's process: a factory's module is imported here)."""
        if self.kind == "jsonl":
            return JsonlLogger(Path(self.target) / f"{island}.jsonl", island)
        if self.kind == "tensorboard":
            return TensorBoardLogger(Path(self.target) / island)
        logger = self.factory()(island)
        if not isinstance(logger, Logger):
            raise ConfigError(f"--logger {self.target}: {self.target.partition(':')[2]}(island) returned "
                              f"{type(logger).__name__}, not an islands.loggers.Logger")
        return logger

    def __str__(self) -> str:  # as typed
        return self.target if self.kind == "factory" else f"{self.kind}:{self.target}"

    def check(self) -> None:
        """Refuse (ConfigError) what cannot be built, before a run is created, so a typo or a
        missing extra writes nothing: a factory that cannot be imported, tensorboard missing."""
        if self.kind == "factory":
            self.factory()
        elif self.kind == "tensorboard" and importlib.util.find_spec("tensorboard") is None:
            raise ConfigError(TENSORBOARD_MISSING)

    def factory(self) -> Callable[[str], Any]:
        """A `module:factory` spec's factory, imported (ConfigError if it cannot be): checked
        before a run is created, so a typo writes nothing."""
        module, _, name = self.target.partition(":")
        try:
            factory = getattr(importlib.import_module(module), name)
        except ImportError as e:
            raise ConfigError(f"--logger {self.target}: cannot import {module} ({e})") from None
        except AttributeError:
            raise ConfigError(f"--logger {self.target}: {module} has no {name}") from None
        if not callable(factory):
            raise ConfigError(f"--logger {self.target}: {name} is not callable")
        return factory


def parse_logger(text: str) -> LoggerSpec:
    """`jsonl:FOLDER`, `tensorboard:FOLDER` or `module:factory`; ConfigError (one line) otherwise."""
    kind, sep, target = text.partition(":")
    if not sep or not kind or not target:
        raise ConfigError(f"--logger {text!r}: use jsonl:FOLDER, tensorboard:FOLDER or module:factory")
    if kind in BUILT_IN:
        return LoggerSpec(kind, target)
    if not all(part.isidentifier() for part in (*kind.split("."), target)):
        raise ConfigError(f"--logger {text!r}: not a built-in logger ({', '.join(BUILT_IN)}) nor an "
                          "import path module:factory")
    return LoggerSpec("factory", text)


def specs_from_env(environ: Any) -> list[LoggerSpec]:
    """The loggers a launching `islands launch --logger` asked its islands for."""
    return [parse_logger(line) for line in environ.get(LOGGERS_ENV, "").splitlines() if line.strip()]


def island_environ(environ: Mapping[str, str], specs: Sequence[str]) -> dict[str, str] | None:
    """The environment a launcher gives its islands so that each builds `specs` (None: unchanged)."""
    return {**environ, LOGGERS_ENV: "\n".join(specs)} if specs else None


def build_loggers(island: str, loggers: Iterable[Logger | str | LoggerSpec],
                  log: Callable[[str], None] = print) -> list[Logger]:
    """Loggers given as objects, specs or their text, built for `island`. A spec that fails to
    build (its factory raises, its folder cannot be made) is left out with one warning on `log`,
    as a logger failing later is detached: the island runs without it."""
    out: list[Logger] = []
    for item in loggers:
        if isinstance(item, str):
            item = parse_logger(item)
        if not isinstance(item, LoggerSpec):
            out.append(item)
            continue
        try:
            out.append(item.build(island))
        except Exception as e:  # user code or the file system: whatever it raises, the island evolves
            why = str(e) if isinstance(e, ConfigError) else f"{type(e).__name__}: {e}"
            log(f"warning: {island}: logger {item} could not be built ({why}); "
                "the island runs without it")
    return out


class LoggerRecorder(Recorder):
    """A user `Logger` as a recorder: told after the island's own recorders, detached at its first failure."""

    def __init__(self, island: str, logger: Logger, history: HistoryRecorder, log: Callable[[str], None]) -> None:
        self.island, self.logger, self.history, self.log = island, logger, history, log
        self.name = repr(logger) if type(logger).__repr__ is not object.__repr__ else type(logger).__name__

    def generation(self, state: Any, progress: Progress, stats: Any) -> None:
        if self.logger is not None and self.history.last is not None:
            self._call(self.logger.on_generation, self.history.last)

    def resume(self, generation: int, migrated: bool) -> None:
        if self.logger is not None:
            self._call(self.logger.on_resume, generation, migrated)

    def migration(self, event: MigrationEvent | None) -> None:
        if self.logger is not None and event is not None:
            self._call(self.logger.on_migration, event)

    def end(self, state: Any, progress: Progress, phase: str, reason: str) -> None:
        self.close()

    def close(self) -> None:
        """Close the logger once (the island's end, or its failure)."""
        logger, self.logger = self.logger, None
        if logger is not None:
            self._call(logger.close)

    def _call(self, method: Callable[..., None], *args: Any) -> None:
        try:
            method(*args)
        except Exception as e:  # user code: whatever it raises, the island evolves on
            self.log(f"warning: {self.island}: logger {self.name} failed ({type(e).__name__}: {e}); "
                     "detached, the island evolves on")
            logger, self.logger = self.logger, None
            if logger is not None:
                try:
                    logger.close()
                except Exception:  # already reported the failure; a second message would add nothing
                    pass


def close_all(recorders: Sequence[Recorder]) -> None:
    """Close the user loggers among `recorders` (an island that ended by an exception)."""
    for r in recorders:
        if isinstance(r, LoggerRecorder):
            r.close()
