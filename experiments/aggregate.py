"""``pnetsim-aggregate``: merge one table of every complete job of a sweep into one Parquet file.

Examples::

    pnetsim-aggregate results/default/sweeps/rho            # -> results/default/sweeps/rho/sweep_summary.parquet
    python -m experiments.aggregate results/default/sweeps/rho -o rho.parquet
    pnetsim-aggregate results/default/sweeps/rho --table economics_summary.parquet
    pnetsim-aggregate results/psa/sweeps/default --table psa_incremental.parquet

Each row keeps the job's key (``job``) and one column per overridden key, then the job's own row
unchanged (a ``.parquet`` table is read losslessly; ``.csv`` tables are read as written). The Parquet
file is written atomically (hidden temporary file, then rename). Jobs that differ in a key that none of
them overrode (e.g. a config file edited between a kill and a resume) stop the merge with exit status 2
and one line naming the keys, values and jobs, unless ``--allow-mixed`` (those keys become columns too).
Incomplete job folders (killed, partial) are listed on stderr and not merged.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from sim.sweep import SweepError, aggregate, write_parquet


def main(argv: list[str] | None = None) -> int:
    """Command-line entry; returns the exit status (0 merged, 2 user error)."""
    ap = argparse.ArgumentParser(prog="pnetsim-aggregate", description=__doc__.splitlines()[0])
    ap.add_argument("sweep_dir", type=Path, help="a sweep folder: <output.root>/<experiment.name>/sweeps/<sweep id>")
    ap.add_argument("-o", "--output", type=Path, default=None,
                    help="Parquet file to write (default: <sweep_dir>/sweep_<table stem>.parquet)")
    ap.add_argument("--table", default="summary.csv",
                    help="per-job table to merge (.csv or .parquet; default summary.csv)")
    ap.add_argument("--allow-mixed", action="store_true",
                    help="merge jobs whose configurations differ outside their overrides (differing keys become columns)")
    ap.add_argument("-q", "--quiet", action="store_true", help="do not print the merged table")
    a = ap.parse_args(argv)
    if not a.sweep_dir.is_dir():
        print(f"pnetsim-aggregate: error: sweep_dir must be a folder, got {str(a.sweep_dir)!r}", file=sys.stderr)
        return 2
    if Path(a.table).name != a.table or not a.table.endswith((".csv", ".parquet")):
        print(f"pnetsim-aggregate: error: --table must be a .csv or .parquet file name, got {a.table!r}",
              file=sys.stderr)
        return 2
    try:
        df, s = aggregate(a.sweep_dir, a.table, a.allow_mixed)
    except SweepError as exc:
        print(f"pnetsim-aggregate: error: {exc}", file=sys.stderr)
        return 2
    out = a.output or a.sweep_dir / f"sweep_{Path(a.table).stem}.parquet"
    write_parquet(df, out)
    if not a.quiet:
        print(df.to_string(index=False, max_colwidth=40))
    for new, kept in s.duplicates:
        print(f"pnetsim-aggregate: note: {new} has the same configuration as {kept}; kept {kept} only",
              file=sys.stderr)
    for name, reason in s.incomplete:
        print(f"pnetsim-aggregate: note: not merged (incomplete): {name}: {reason}", file=sys.stderr)
    print(f"merged {len(s.complete)} job(s), {len(df)} rows into {out}")
    return 0


if __name__ == "__main__":   # the console script pnetsim-aggregate = experiments.aggregate:main exits likewise
    sys.exit(main())
