"""Resumable sweeps: one deterministic folder per job, a completion marker, skip, aggregation.

A job of a sweep (a Hydra multirun, or any run given ``sweep.name``) writes its run folder to::

    <output.root>/<experiment.name>/sweeps/<sweep id>/<job key>/

* ``sweep id`` is ``sweep.name`` (``default`` when a multirun does not name it);
* ``job key`` is the job's own command-line overrides as ``path=resolved value`` (sorted; when longer
  than 100 characters each path is cut to its last segment, then the text is cut; unsafe characters
  become ``_``) followed by ``-`` and the first 12 hex digits of the **config hash**: SHA-256 of the
  resolved config (canonical JSON, sorted keys) without the keys that cannot change results
  (:data:`NOT_HASHED`: ``output.root``, ``output.progress``, ``sweep``, ``hydra``), plus the SHA-256 of
  the content of ``cohort.source`` when a cohort file is used. The launcher (basic, joblib, Ray,
  submitit) and the worker count are not part of it: they do not change results.

Life cycle of a job folder (:func:`sim.runio.atomic_run_dir` with an :func:`activate`-d job):

1. the run writes every file into ``.<key>.partial-<host>-<pid>`` (a hidden sibling);
2. :meth:`SweepJob.publish` writes ``_COMPLETE`` **last** (JSON: key, full config hash, overrides, time,
   host, pid, and the size of every file written), moves an invalid folder of the same key aside
   (``.<key>.invalid-<time>-<pid>``, never deleted) and renames the partial folder to ``<key>``.

A folder is *complete* when its ``_COMPLETE`` parses, carries the expected config hash and every file it
lists exists with the listed size (:func:`verify`). A job whose folder is complete is skipped
(:func:`skip_if_complete`), so re-running a killed sweep redoes only the missing jobs and never
recomputes a finished one. Partial folders left by killed jobs of this host are removed when the
job runs again.

:func:`aggregate` merges one table (``summary.csv`` by default) of every complete job into one frame
with the job's key and overridden values as columns, and refuses (:class:`MixedConfigError`) when jobs
differ in keys that none of them overrode.
"""

from __future__ import annotations

import contextvars
import hashlib
import json
import os
import re
import shutil
import socket
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from sim.errors import UserError

MARKER = "_COMPLETE"
DEFAULT_SWEEP = "default"
#: keys (and their sub-keys) that neither enter the config hash nor the job key: they cannot change results
NOT_HASHED = ("output.root", "output.progress", "sweep", "hydra")
_UNSAFE = re.compile(r"[^A-Za-z0-9._=,+@-]+")
_MAX_KEY_TEXT = 100
_MAX_VALUE_TEXT = 60


class SweepError(UserError):
    """A sweep folder cannot be aggregated (no complete job, a table missing in some jobs)."""


class MixedConfigError(SweepError):
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
    """SHA-256 (hex) of the resolved config without :data:`NOT_HASHED` keys (+ the cohort file's content).

    The text hashed is the canonical JSON (sorted keys, no spaces) of the config, so the hash does not
    depend on the order of keys, on the process or on the machine.
    """
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


def _host() -> str:
    return safe_name(socket.gethostname(), 60)


def folder_files(folder: Path) -> dict[str, int]:
    """``{relative path: size in bytes}`` of every file under ``folder`` (the marker excluded)."""
    folder = Path(folder)
    return {p.relative_to(folder).as_posix(): p.stat().st_size
            for p in sorted(folder.rglob("*")) if p.is_file() and p.name != MARKER}


def read_marker(folder: Path) -> dict | None:
    """The parsed ``_COMPLETE`` of ``folder``, or None when absent or unreadable."""
    try:
        m = json.loads((Path(folder) / MARKER).read_text())
    except (OSError, ValueError):
        return None
    return m if isinstance(m, dict) else None


def verify(folder: Path, expected_hash: str | None = None) -> str | None:
    """Why ``folder`` is not a complete job folder, or None when it is.

    Complete: ``_COMPLETE`` parses, its ``config_hash`` equals ``expected_hash`` (when given), it lists
    ``manifest.json`` among its files, and every listed file exists with the listed size.
    """
    m = read_marker(folder)
    if m is None:
        return f"no readable {MARKER}"
    if expected_hash is not None and m.get("config_hash") != expected_hash:
        return f"config hash {str(m.get('config_hash'))[:12]} differs from {expected_hash[:12]}"
    files = m.get("files")
    if not isinstance(files, dict) or "manifest.json" not in files:
        return f"{MARKER} lists no manifest.json"
    for name, size in files.items():
        p = Path(folder) / name
        try:
            actual = p.stat().st_size
        except OSError:
            return f"{name} missing"
        if actual != size:
            return f"{name} has {actual} bytes, {MARKER} says {size}"
    return None


# ---------------------------------------------------------------------------------------------- one job

@dataclass(frozen=True)
class SweepJob:
    """Where one sweep job writes, and how it knows it is already done.

    Parameters
    ----------
    sweep_dir : Path
        ``<output.root>/<experiment.name>/sweeps/<sweep id>``.
    key : str
        Job key (folder name): safe override text + ``-`` + 12 hex digits of ``config_hash``.
    config_hash : str
        Full SHA-256 of the job's config (:func:`config_hash`).
    overrides : tuple of str
        The job's identifying overrides (:func:`job_overrides`).
    """

    sweep_dir: Path
    key: str
    config_hash: str
    overrides: tuple[str, ...] = field(default=())

    def __post_init__(self):
        if not self.key or self.key.startswith(".") or "/" in self.key:
            raise ValueError(f"job key must be a plain visible folder name, got {self.key!r}")
        if not re.fullmatch(r"[0-9a-f]{64}", self.config_hash):
            raise ValueError(f"config_hash must be 64 hex digits, got {self.config_hash!r}")
        object.__setattr__(self, "sweep_dir", Path(self.sweep_dir))
        object.__setattr__(self, "overrides", tuple(self.overrides))

    @property
    def folder(self) -> Path:
        return self.sweep_dir / self.key

    def marker(self) -> dict | None:
        """The parsed ``_COMPLETE`` of this job's folder, or None when absent or unreadable."""
        return read_marker(self.folder)

    def is_complete(self) -> bool:
        """True when the folder is complete (:func:`verify`) for this job's config hash."""
        return self.folder.is_dir() and verify(self.folder, self.config_hash) is None

    def partial_dir(self) -> Path:
        """Temporary folder of this process: ``.<key>.partial-<host>-<pid>``."""
        return self.sweep_dir / f".{self.key}.partial-{_host()}-{os.getpid()}"

    def remove_stale_partials(self) -> list[Path]:
        """Remove this job's partial folders left by processes of this host that are no longer running.

        Partial folders of other hosts are left alone (their process may be alive); they are hidden
        and never merged.
        """
        removed = []
        prefix = f".{self.key}.partial-{_host()}-"
        if not self.sweep_dir.is_dir():
            return removed
        for p in self.sweep_dir.iterdir():
            pid = p.name[len(prefix):]
            if p.name.startswith(prefix) and pid.isdigit() and int(pid) != os.getpid() and not _pid_alive(int(pid)):
                shutil.rmtree(p, ignore_errors=True)
                removed.append(p)
        return removed

    def mark_complete(self, folder: Path) -> Path:
        """Write ``_COMPLETE`` into ``folder`` (the temporary run folder) as its last file."""
        info = {"key": self.key, "config_hash": self.config_hash, "overrides": list(self.overrides),
                "sweep": self.sweep_dir.name, "completed": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                "host": socket.gethostname(), "pid": os.getpid(), "files": folder_files(folder)}
        path = Path(folder) / MARKER
        tmp = path.with_name(f".{MARKER}.tmp")
        tmp.write_text(json.dumps(info, indent=2))
        os.replace(tmp, path)
        return path

    def publish(self, tmp: Path) -> Path:
        """Mark ``tmp`` complete and rename it to :attr:`folder`; return the folder.

        If the folder already exists and is complete for the same config hash (the same job finished
        meanwhile elsewhere), ``tmp`` is discarded: both hold the same results. An existing folder that
        is not complete is moved aside to ``.<key>.invalid-<time>-<pid>`` (kept for inspection).
        """
        tmp = Path(tmp)
        self.mark_complete(tmp)
        if self.folder.exists():
            if self.is_complete():
                shutil.rmtree(tmp, ignore_errors=True)
                return self.folder
            aside = self.sweep_dir / f".{self.key}.invalid-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}"
            os.replace(self.folder, aside)
        os.replace(tmp, self.folder)
        return self.folder


def _scalar_text(v) -> str:
    if isinstance(v, bool) or v is None:
        return json.dumps(v)
    return repr(v) if isinstance(v, float) else str(v)


def canonical_override(override: str, flat: dict) -> str:
    """``<path>=<resolved value>`` of an override, the same whatever its spelling or launcher.

    Hydra renders a swept ``false`` as ``False``, a typed ``.5`` stays ``.5``: the key text uses the
    resolved value at the path instead (``output.figures=false``, ``model.frailty_rho=0.5``). Group
    overrides and deletions keep their text.
    """
    path = override_key(override)
    v = flat.get(path, ...)
    if override.startswith("~") or v is ... or isinstance(v, (list, dict)):
        return override.lstrip("+")
    return f"{path}={_scalar_text(v)}"


def make_job(plain: dict, overrides, sweep_name: str | None) -> SweepJob:
    """The :class:`SweepJob` of a resolved config and the job's command-line overrides."""
    ident = job_overrides(overrides)
    digest = config_hash(plain)
    flat = flatten(plain)
    canon = sorted(canonical_override(o, flat) for o in ident)
    text = ",".join(canon)
    if len(text) > _MAX_KEY_TEXT:   # too long: keep the last segment of each path (the hash keeps keys unique)
        text = ",".join(c.split("=", 1)[0].rsplit(".", 1)[-1] + ("=" + c.split("=", 1)[1] if "=" in c else "")
                        for c in canon)
    text = safe_name(text) if ident else "base"
    sweep_id = safe_name(str(sweep_name)) if sweep_name else DEFAULT_SWEEP
    root = Path(plain["output"]["root"]) / safe_name(str(plain["experiment"]["name"])) / "sweeps" / sweep_id
    return SweepJob(root, f"{text}-{digest[:12]}", digest, tuple(ident))


def _hydra_job() -> tuple[bool, list[str]]:
    """(multirun?, this job's task overrides) from the running Hydra app; (False, []) outside Hydra."""
    try:
        hc = HydraConfig.get()
        return hc.mode.name == "MULTIRUN", list(hc.overrides.task)
    except Exception:
        return False, []


def current_job(cfg) -> SweepJob | None:
    """This run's :class:`SweepJob` when it is part of a sweep (a multirun, or ``sweep.name`` set), else None."""
    try:
        plain = OmegaConf.to_container(cfg, resolve=True) if isinstance(cfg, DictConfig) else dict(cfg)
    except Exception as exc:
        raise UserError(f"configuration could not be resolved: {exc}") from None
    sweep = plain.get("sweep")
    if sweep is not None and not isinstance(sweep, dict):
        raise UserError(f"sweep must be a mapping with a name, got {sweep!r}")
    name = (sweep or {}).get("name")
    if name is not None and (not isinstance(name, (str, int)) or isinstance(name, bool) or not str(name).strip()):
        raise UserError(f"sweep.name must be a non-empty name or null, got {name!r}")
    multirun, overrides = _hydra_job()
    if not multirun and name is None:
        return None
    return make_job(plain, overrides, name)


_ACTIVE: contextvars.ContextVar[SweepJob | None] = contextvars.ContextVar("pnetsim_sweep_job", default=None)


@contextmanager
def activate(job: SweepJob | None):
    """Within the block, :func:`sim.runio.run_folder_name` and :func:`sim.runio.atomic_run_dir` write
    to ``job``'s folder (with the completion marker); ``None`` keeps plain timestamped run folders."""
    token = _ACTIVE.set(job)
    try:
        yield job
    finally:
        _ACTIVE.reset(token)


def active_job() -> SweepJob | None:
    """The job set by :func:`activate`, or None outside a sweep."""
    return _ACTIVE.get()


def skip_if_complete(job: SweepJob | None, out=None) -> bool:
    """True (after printing one line) when ``job`` is already complete and need not run again."""
    if job is None or not job.is_complete():
        return False
    print(f"pnetsim: skipped {job.key}: already complete in {job.folder}", file=out or sys.stdout, flush=True)
    return True


# ---------------------------------------------------------------------------------------------- aggregate

@dataclass(frozen=True)
class SweepScan:
    """What a sweep folder holds.

    ``complete``: one dict per complete job (``key``, ``folder``, ``marker``, ``config`` from the
    manifest); ``incomplete``: ``(folder name, reason)`` of job folders that are not complete, partial
    folders included; ``duplicates``: ``(folder, kept folder)`` pairs with the same config hash.
    """

    complete: list[dict]
    incomplete: list[tuple[str, str]]
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
                incomplete.append((p.name, "partial (being written, or left by a killed job)"))
            continue
        reason = verify(p)
        manifest = None
        if reason is None:
            try:
                manifest = json.loads((p / "manifest.json").read_text())
            except (OSError, ValueError):
                reason = "manifest.json unreadable"
        if reason is not None:
            incomplete.append((p.name, reason))
            continue
        marker = read_marker(p)
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
    """Keys outside every job's overrides whose values differ: ``{key: {value (JSON): [job keys]}}``."""
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


def mixed_message(sweep_dir: Path, diffs: dict[str, dict[str, list[str]]]) -> str:
    """One line naming every differing key, its values and the jobs holding each value."""
    def short(v: str) -> str:
        return v if len(v) <= _MAX_VALUE_TEXT else v[:_MAX_VALUE_TEXT - 3] + "..."
    parts = [f"{k} = " + "; ".join(f"{short(v)} in {', '.join(js)}" for v, js in groups.items())
             for k, groups in diffs.items()]
    return (f"jobs in {sweep_dir} differ in keys that none of them overrides: " + " | ".join(parts)
            + " (re-run the odd jobs with the same configuration, or merge anyway with --allow-mixed)")


def _column_value(config_flat: dict, path: str, raw: str | None):
    """Resolved value at ``path`` (JSON text for lists/mappings); the override text for group overrides."""
    if path not in config_flat:
        return raw
    v = config_flat[path]
    return v if isinstance(v, (int, float, str, bool)) or v is None else json.dumps(v, default=str)


def read_table(path: Path) -> "pd.DataFrame":
    """A job table: Parquet when ``path`` ends in ``.parquet``, else CSV."""
    path = Path(path)
    return pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path)


def aggregate(sweep_dir: Path, table: str = "summary.csv",
              allow_mixed: bool = False) -> tuple["pd.DataFrame", SweepScan]:
    """One frame of ``table`` from every complete job, with ``job`` and one column per overridden key.

    Rows are the job's own rows unchanged (jobs sorted by key), after the columns ``job`` and the
    overridden keys (resolved value at that key; the override text for group overrides; JSON text
    for lists and mappings). Raises :class:`MixedConfigError` naming the keys, values and jobs when
    jobs differ outside their overrides (unless ``allow_mixed``, which adds those keys as columns), and
    :class:`SweepError` when there is no complete job or a complete job lacks ``table``.
    """
    s = scan(sweep_dir)
    if not s.complete:
        raise SweepError(f"sweep folder {sweep_dir} holds no complete job")
    missing = [j["key"] for j in s.complete if not (j["folder"] / table).is_file()]
    if missing:
        raise SweepError(f"--table {table} is missing in job(s) {', '.join(missing)} of {sweep_dir}")
    diffs = config_differences(s.complete)
    if diffs and not allow_mixed:
        raise MixedConfigError(mixed_message(sweep_dir, diffs))
    columns = _swept_paths(s.complete) + (sorted(diffs) if allow_mixed else [])
    frames = []
    for j in sorted(s.complete, key=lambda j: j["key"]):
        flat = flatten(j["config"])
        raw = {override_key(o): o.split("=", 1)[1] if "=" in o else None for o in j["marker"].get("overrides", [])}
        df = read_table(j["folder"] / table)
        meta = {"job": j["key"]} | {c: _column_value(flat, c, raw.get(c)) for c in columns}
        for i, (c, v) in enumerate(meta.items()):
            df.insert(i, c, [v] * len(df))
        frames.append(df)
    out = pd.concat(frames, ignore_index=True)
    for c in columns:   # mixed python types in one column (e.g. 1 and "a") → text, so Parquet can store it
        if out[c].dtype == object and len({type(v) for v in out[c] if v is not None}) > 1:
            out[c] = out[c].map(lambda v: None if v is None else str(v))
    return out, s


def write_parquet(df: "pd.DataFrame", path: Path) -> Path:
    """Write ``df`` to ``path`` atomically (hidden temporary file in the same folder, then rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.partial-{os.getpid()}")
    try:
        df.to_parquet(tmp, index=False)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path
