"""Resumable sweeps: one deterministic folder per job, a completion marker, skip, aggregation.

A job of a sweep (a Hydra multirun, or any run given ``sweep.name``) writes its run folder to::

    <output.root>/<experiment.name>/sweeps/<sweep id>/<job key>/

* ``sweep id`` is ``sweep.name`` (``default`` when a multirun does not name it);
* ``job key`` is the job's own command-line overrides (sorted, made file-name safe, shortened) followed by
  ``-`` and the first 12 hex digits of the **config hash**: SHA-256 of the resolved config without the keys
  that cannot change results (``output.root``, ``output.progress``, ``sweep``), plus the content hash of
  ``cohort.source`` when a cohort file is used.

The folder is written atomically (:func:`sim.runio.atomic_run_dir`); ``_COMPLETE`` (JSON: key, full config
hash, overrides, time, host) is the last file written inside it before the rename. A job whose folder holds
a ``_COMPLETE`` with the same config hash is skipped, so re-running a killed sweep redoes only the jobs
that are missing. Folders of the same key without a valid marker are moved aside (``.<key>.invalid-*``),
never deleted; ``.partial`` folders left by killed jobs on this host are removed.

:func:`aggregate` merges the ``summary.csv`` of every completed job into one table with the job's
overrides as columns, and refuses (:class:`MixedConfigError`) when jobs differ in keys that were not
overridden.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import socket
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:   # pandas is imported lazily: a skipped job must start and finish fast
    import pandas as pd

MARKER = "_COMPLETE"
DEFAULT_SWEEP = "default"
#: keys (and their sub-keys) that neither enter the config hash nor the job key: they cannot change results
NOT_HASHED = ("output.root", "output.progress", "sweep", "hydra")
_UNSAFE = re.compile(r"[^A-Za-z0-9._=,+@-]+")
_MAX_KEY_TEXT = 100


class MixedConfigError(ValueError):
    """Jobs of one sweep differ in configuration keys other than their overrides."""


# ---------------------------------------------------------------------------------------------- helpers

def _covered(key: str, prefixes) -> bool:
    return any(key == p or key.startswith(p + ".") for p in prefixes)


def override_key(override: str) -> str:
    """Config path an override sets: ``+a.b=1`` → ``a.b``; ``therapy@therapies.x=y`` → ``therapies.x``."""
    key = override.split("=", 1)[0].lstrip("~+").strip()
    return key.split("@", 1)[1] if "@" in key else key


def job_overrides(overrides) -> list[str]:
    """The overrides that identify a job (sorted; those of :data:`NOT_HASHED` keys dropped)."""
    return sorted(o for o in overrides if not _covered(override_key(o), NOT_HASHED))


def safe_name(text: str, limit: int = _MAX_KEY_TEXT) -> str:
    """A file-name-safe rendering of ``text`` (unsafe runs become ``_``), at most ``limit`` characters."""
    out = _UNSAFE.sub("_", text).strip("._") or "_"
    return out[:limit]


def _drop(d: dict, dotted: str) -> None:
    head, _, rest = dotted.partition(".")
    if head in d:
        if rest:
            if isinstance(d[head], dict):
                _drop(d[head], rest)
        else:
            del d[head]


def _file_digest(path: str) -> str | None:
    try:
        h = hashlib.sha256()
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
        return h.hexdigest()
    except OSError:
        return None


def config_hash(plain: dict) -> str:
    """SHA-256 (hex) of the resolved config without :data:`NOT_HASHED` keys (+ the cohort file's content)."""
    c = json.loads(json.dumps(plain, default=str))
    for k in NOT_HASHED:
        _drop(c, k)
    source = (c.get("cohort") or {}).get("source") if isinstance(c.get("cohort"), dict) else None
    if source:
        c["_cohort_source_sha256"] = _file_digest(str(source))
    text = json.dumps(c, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def flatten(d, prefix: str = "") -> dict:
    """``{"a": {"b": 1}}`` → ``{"a.b": 1}`` (lists kept as values)."""
    out = {}
    if isinstance(d, dict) and d:
        for k, v in d.items():
            out.update(flatten(v, f"{prefix}{k}."))
    else:
        out[prefix[:-1]] = d
    return out


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


# ---------------------------------------------------------------------------------------------- one job

@dataclass(frozen=True)
class SweepJob:
    """Where one sweep job writes, and how it knows it is already done."""

    sweep_dir: Path
    key: str
    config_hash: str
    overrides: tuple[str, ...] = field(default=())

    @property
    def folder(self) -> Path:
        return self.sweep_dir / self.key

    def marker(self) -> dict | None:
        """The parsed ``_COMPLETE`` of this job's folder, or None when absent or unreadable."""
        try:
            return json.loads((self.folder / MARKER).read_text())
        except (OSError, ValueError):
            return None

    def is_complete(self) -> bool:
        """True when the folder holds a marker for this config hash and the files it vouches for."""
        m = self.marker()
        return (m is not None and m.get("config_hash") == self.config_hash
                and all((self.folder / f).is_file() for f in ("manifest.json", "summary.csv")))

    def claim(self) -> Path:
        """Prepare the final folder name for writing and return it.

        Removes ``.partial`` folders of this job left by processes no longer running on this host and moves
        an existing folder without a valid marker aside (``.<key>.invalid-<time>``), so the atomic rename can
        take the name. Call only after :meth:`is_complete` said False.
        """
        self.sweep_dir.mkdir(parents=True, exist_ok=True)
        for p in self.sweep_dir.glob(f".{self.key}.partial-*"):
            pid = p.name.rsplit("-", 1)[-1]
            if pid.isdigit() and int(pid) != os.getpid() and not _pid_alive(int(pid)):
                shutil.rmtree(p, ignore_errors=True)
        if self.folder.exists() and not self.is_complete():
            aside = self.sweep_dir / f".{self.key}.invalid-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}"
            os.replace(self.folder, aside)
        return self.folder

    def mark_complete(self, folder: Path) -> Path:
        """Write ``_COMPLETE`` into ``folder`` (the temporary run folder, as its last file)."""
        info = {"key": self.key, "config_hash": self.config_hash, "overrides": list(self.overrides),
                "sweep": self.sweep_dir.name, "completed": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                "host": socket.gethostname(), "pid": os.getpid()}
        path = Path(folder) / MARKER
        path.write_text(json.dumps(info, indent=2))
        return path


def make_job(plain: dict, overrides, sweep_name: str | None) -> SweepJob:
    """The :class:`SweepJob` of a resolved config and the job's command-line overrides."""
    ident = job_overrides(overrides)
    digest = config_hash(plain)
    text = safe_name(",".join(ident)) if ident else "base"
    sweep_id = safe_name(str(sweep_name)) if sweep_name else DEFAULT_SWEEP
    root = Path(plain["output"]["root"]) / safe_name(str(plain["experiment"]["name"])) / "sweeps" / sweep_id
    return SweepJob(root, f"{text}-{digest[:12]}", digest, tuple(ident))


def _hydra_job() -> tuple[bool, list[str]]:
    """(multirun?, this job's task overrides) from the running Hydra app; (False, []) outside Hydra."""
    try:
        from hydra.core.hydra_config import HydraConfig
        hc = HydraConfig.get()
        return hc.mode.name == "MULTIRUN", list(hc.overrides.task)
    except Exception:
        return False, []


def current_job(cfg) -> SweepJob | None:
    """This run's :class:`SweepJob` when it is part of a sweep (a multirun, or ``sweep.name`` set), else None."""
    from omegaconf import DictConfig, OmegaConf

    from sim.errors import UserError

    try:
        plain = OmegaConf.to_container(cfg, resolve=True) if isinstance(cfg, DictConfig) else dict(cfg)
    except Exception as exc:
        raise UserError(f"configuration could not be resolved: {exc}") from None
    name = (plain.get("sweep") or {}).get("name") if isinstance(plain.get("sweep"), dict) else None
    multirun, overrides = _hydra_job()
    if not multirun and not name:
        return None
    return make_job(plain, overrides, name)


def skip_if_complete(job: SweepJob | None, out=None) -> bool:
    """True (after printing one line) when ``job`` is already complete and need not run again."""
    import sys

    if job is None or not job.is_complete():
        return False
    print(f"pnetsim: skipped {job.key}: already complete in {job.folder}", file=out or sys.stdout, flush=True)
    return True


# ---------------------------------------------------------------------------------------------- aggregate

@dataclass
class SweepScan:
    """What a sweep folder holds: completed jobs (marker + manifest) and incomplete leftovers."""

    complete: list[dict]
    incomplete: list[str]
    duplicates: list[tuple[str, str]]


def scan(sweep_dir: Path) -> SweepScan:
    """Read every job folder of ``sweep_dir``; jobs with the same config hash are kept once."""
    sweep_dir = Path(sweep_dir)
    complete, incomplete, duplicates, seen = [], [], [], {}
    for p in sorted(sweep_dir.iterdir()):
        if not p.is_dir():
            continue
        if p.name.startswith("."):
            if ".partial-" in p.name:
                incomplete.append(p.name)
            continue
        try:
            marker = json.loads((p / MARKER).read_text())
            manifest = json.loads((p / "manifest.json").read_text())
            if not (p / "summary.csv").is_file():
                raise OSError("summary.csv missing")
        except (OSError, ValueError):
            incomplete.append(p.name)
            continue
        h = marker.get("config_hash")
        if h in seen:
            duplicates.append((p.name, seen[h]))
            continue
        seen[h] = p.name
        complete.append({"key": p.name, "folder": p, "marker": marker, "config": manifest.get("config", {})})
    return SweepScan(complete, incomplete, duplicates)


def _swept_paths(jobs) -> list[str]:
    return sorted({override_key(o) for j in jobs for o in j["marker"].get("overrides", [])})


def config_differences(jobs) -> dict[str, dict[str, list[str]]]:
    """Keys outside every job's overrides whose values differ: ``{key: {value: [job keys]}}``."""
    swept = _swept_paths(jobs)
    flat = {j["key"]: {k: v for k, v in flatten(j["config"]).items()
                       if not _covered(k, NOT_HASHED) and not _covered(k, swept)} for j in jobs}
    keys = sorted(set().union(*flat.values())) if flat else []
    out = {}
    for k in keys:
        groups: dict[str, list[str]] = {}
        for job, f in flat.items():
            v = json.dumps(f[k], sort_keys=True, default=str) if k in f else "<absent>"
            groups.setdefault(v, []).append(job)
        if len(groups) > 1:
            out[k] = groups
    return out


def _column_value(config_flat: dict, path: str, raw: str | None):
    """Resolved value at ``path`` (JSON text for lists/mappings); the override text for group overrides."""
    if path not in config_flat:
        return raw
    v = config_flat[path]
    return v if isinstance(v, (int, float, str, bool)) or v is None else json.dumps(v, default=str)


def aggregate(sweep_dir: Path, table: str = "summary.csv", allow_mixed: bool = False) -> tuple["pd.DataFrame", SweepScan]:
    """One frame of ``table`` from every completed job, with ``job`` and one column per overridden key.

    Override columns hold the resolved value at that key (the override text for group overrides). Raises
    :class:`MixedConfigError` naming the keys and jobs when jobs differ outside their overrides (unless
    ``allow_mixed``, which adds those keys as columns instead).
    """
    import pandas as pd

    s = scan(sweep_dir)
    if not s.complete:
        raise FileNotFoundError(f"no completed jobs in {sweep_dir}")
    diffs = config_differences(s.complete)
    if diffs and not allow_mixed:
        lines = [f"jobs in {sweep_dir} differ in keys that are not among their overrides:"]
        for k, groups in diffs.items():
            lines.append(f"  {k}: " + "; ".join(f"{v} in {', '.join(js)}" for v, js in groups.items()))
        lines.append("re-run the odd jobs with the same configuration, or merge anyway with --allow-mixed")
        raise MixedConfigError("\n".join(lines))
    columns = _swept_paths(s.complete) + (sorted(diffs) if allow_mixed else [])
    frames = []
    for j in s.complete:
        flat = flatten(j["config"])
        raw = {override_key(o): o.split("=", 1)[1] if "=" in o else None for o in j["marker"].get("overrides", [])}
        df = pd.read_csv(j["folder"] / table)
        meta = {"job": j["key"]} | {c: _column_value(flat, c, raw.get(c)) for c in columns}
        for i, (c, v) in enumerate(meta.items()):
            df.insert(i, c, [v] * len(df))
        frames.append(df)
    out = pd.concat(frames, ignore_index=True)
    for c in columns:   # mixed python types in one column (e.g. 1 and "a") → text, so Parquet can store it
        if out[c].dtype == object and len({type(v) for v in out[c] if v is not None}) > 1:
            out[c] = out[c].map(lambda v: None if v is None else str(v))
    return out.sort_values(["job"], kind="stable").reset_index(drop=True), s


def write_parquet(df: "pd.DataFrame", path: Path) -> Path:
    """Write ``df`` to ``path`` atomically (temporary file, then rename)."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.partial-{os.getpid()}")
    df.to_parquet(tmp, index=False)
    os.replace(tmp, path)
    return path
