"""The status report's `tuning` section: the best segments of a tuned run and the settings
schedule of the champion's island (`islands.tuning`).

A tuned island runs a sequence of segments, each with its own settings; the island's best says
little of any one of them, so the report ranks segments, not islands. The champion's schedule
is the list of segments its island ran, with the segment each copied (population-based
training), so a reader can follow how the winning settings came about.
"""
from __future__ import annotations

from typing import Any, Mapping

from islands.status.record import as_float, plain
from islands.tuning import segments as seg
from islands.tuning.space import settings_text
from migration_pool.rundir import RunDir

TOP = 5
SCHEDULE = 20  # the champion island's last segments shown

_NUM = {"type": ["number", "null"]}
_SEGMENT = {
    "type": "object", "additionalProperties": False,
    "required": ["segment", "settings", "start", "generations", "evaluations", "best", "end", "parent", "why"],
    "properties": {
        "segment": {"type": "string", "description": "island#index"},
        "settings": {"type": "object", "description": "the segment's settings (the --vary names)"},
        "start": {"type": "integer", "description": "the island's generation when the segment began"},
        "generations": {"type": "integer"}, "evaluations": {"type": "integer"},
        "best": {**_NUM, "description": "best fitness the island held during the segment"},
        "end": {"enum": list(seg.ENDS)},
        "parent": {"type": "string", "description": "the segment whose population it copied ('' for a fresh start)"},
        "why": {"type": "string", "description": "the decision that ended it"},
    },
}
SCHEMA = {"oneOf": [{"type": "null"}, {
    "type": "object", "additionalProperties": False,
    "required": ["tuner", "segments", "best", "champion_schedule"],
    "properties": {
        "tuner": {"type": "string", "description": "static, asha, pbt or tpe"},
        "segments": {"type": "integer", "description": "segments recorded over all islands"},
        "best": {"type": "array", "items": _SEGMENT, "description": f"the {TOP} best segments, best first"},
        "champion_schedule": {"type": "array", "items": _SEGMENT,
                              "description": "the champion island's segments in order (its last ones)"},
    },
}]}


def _entry(s: seg.Segment) -> dict[str, Any]:
    return {"segment": s.key, "settings": {str(k): plain(v) for k, v in s.settings.items()}, "start": s.start,
            "generations": s.generations, "evaluations": s.evaluations, "best": as_float(s.best),
            "end": s.end, "parent": s.parent, "why": s.why}


def tuning_section(rundir: RunDir, islands: list[str], config: Mapping[str, Any],
                   champion: str | None) -> dict[str, Any] | None:
    """The section, or None for a run without segment records."""
    by_island = seg.read_run(rundir, islands)
    if not by_island:
        return None
    tuner = config.get("tuner")
    return {
        "tuner": str(tuner.get("kind")) if isinstance(tuner, Mapping) else "static",
        "segments": sum(len(v) for v in by_island.values()),
        "best": [_entry(s) for s in seg.ranked(by_island)[:TOP]],
        "champion_schedule": [_entry(s) for s in by_island.get(champion or "", [])[-SCHEDULE:]],
    }


def render(section: Mapping[str, Any]) -> Any:
    """The section as rich text."""
    from rich.text import Text  # lazy: rich loads only when a table is drawn (`status --json` stays fast)

    out = Text.assemble(("tuning ", "bold"), f"{section['tuner']}, {section['segments']} segment(s); best segments:\n")
    for s in section["best"]:
        best = "?" if s["best"] is None else f"{s['best']:.6g}"
        out.append(f"  {s['segment']:<14} best {best:>12}  {s['generations']} gen  {settings_text(s['settings'])}"
                   f"  ({s['end']})\n")
    if section["champion_schedule"]:
        out.append("champion's schedule:\n", "bold")
        for s in section["champion_schedule"]:
            came = f" copied {s['parent']}" if s["parent"] else ""
            out.append(f"  from generation {s['start']}: {settings_text(s['settings'])}{came}\n")
    return out
