"""``pnetsim-aggregate``: merge the summaries of every completed job of a sweep into one Parquet file.

Examples::

    pnetsim-aggregate results/default/sweeps/rho            # -> results/default/sweeps/rho/sweep_summary.parquet
    python -m experiments.aggregate results/default/sweeps/rho -o rho.parquet
    pnetsim-aggregate results/default/sweeps/rho --table differences.csv

Each row keeps the job's key (``job``) and one column per overridden key. Jobs that differ in a key that
none of them overrode (e.g. a config file edited between a kill and a resume) stop the merge with exit
status 2 and a list of the keys and jobs, unless ``--allow-mixed`` (those keys become columns too).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from sim.sweep import MixedConfigError, aggregate, write_parquet


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="pnetsim-aggregate", description=__doc__.splitlines()[0])
    ap.add_argument("sweep_dir", type=Path, help="a sweep folder: <root>/<experiment>/sweeps/<sweep name>")
    ap.add_argument("-o", "--output", type=Path, default=None,
                    help="Parquet file to write (default: <sweep_dir>/sweep_<table stem>.parquet)")
    ap.add_argument("--table", default="summary.csv", help="per-job table to merge (summary.csv, differences.csv)")
    ap.add_argument("--allow-mixed", action="store_true",
                    help="merge jobs whose configurations differ outside their overrides (differing keys become columns)")
    ap.add_argument("-q", "--quiet", action="store_true", help="do not print the merged table")
    a = ap.parse_args(argv)
    if not a.sweep_dir.is_dir():
        print(f"pnetsim-aggregate: error: {a.sweep_dir} is not a folder", file=sys.stderr)
        return 2
    try:
        df, s = aggregate(a.sweep_dir, a.table, a.allow_mixed)
    except (MixedConfigError, FileNotFoundError) as exc:
        print(f"pnetsim-aggregate: error: {exc}", file=sys.stderr)
        return 2
    out = a.output or a.sweep_dir / f"sweep_{Path(a.table).stem}.parquet"
    write_parquet(df, out)
    if not a.quiet:
        print(df.to_string(index=False, max_colwidth=40))
    for new, kept in s.duplicates:
        print(f"note: {new} has the same configuration as {kept}; kept {kept} only", file=sys.stderr)
    if s.incomplete:
        print(f"note: {len(s.incomplete)} incomplete job folder(s) not merged: {', '.join(s.incomplete)}",
              file=sys.stderr)
    print(f"merged {len(s.complete)} job(s), {len(df)} rows into {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
