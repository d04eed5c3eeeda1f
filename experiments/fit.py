"""``pnetsim-fit``: fit PFS distributions per therapy from the evidence table.

Reads ``data/evidence/evidence.csv``, the fit specification ``configs/fit/pfs.yaml`` and the
assessment rules of ``configs/model/default.yaml`` (scan interval, clinical detection, pre-progression
death share: the fits put the reported medians and landmarks on the scale of progression *seen* at
assessments), and writes ``data/fits/pfs_fits.yaml`` and ``data/fits/pfs_fits.csv`` and the ``pfs`` block of
each fitted ``configs/therapy/<name>.yaml`` (marked as generated; sim/fitting/evidence_fits.py;
docs/fitting.md)::

    pnetsim-fit                      # fit, write data/fits/pfs_fits.{yaml,csv} and the therapy pfs blocks
    pnetsim-fit --check              # exit 1 if configs/therapy/*.yaml or data/fits disagree with the fits
    pnetsim-fit --spec my.yaml --out /tmp/fits.yaml --therapy-dir /tmp/therapy

Exit status: 0 = written / all agree; 1 = ``--check`` found a disagreement; 2 = bad input
(one line on stderr naming the key and the value).
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

# after the source tree is on the path (``python experiments/fit.py`` from a checkout)
from sim.errors import UserError  # noqa: E402
from sim.fitting.ae_residual import (  # noqa: E402
    DEFAULT_AE_FITS,
    DEFAULT_AE_SPEC,
    check_therapy_probabilities,
    load_ae_spec,
    residual_all,
    write_ae_fits,
    write_therapy_probabilities,
)
from sim.fitting.evidence_fits import (  # noqa: E402
    CHECK_RTOL,
    DEFAULT_FITS,
    DEFAULT_SPEC,
    THERAPY_DIR,
    compare_with_configs,
    fit_all,
    load_spec,
    read_fits,
    write_fits,
    write_therapy_files,
)


def _stale(fits, stored) -> list[str]:
    """Therapies whose stored fit (``data/fits``) differs from a fresh one (pfs block, rel 1e-6)."""
    out = []
    for name, f in fits.items():
        old = stored.get(name, {}).get("pfs")
        new = f["record"]["pfs"]
        if old is None or set(old) != set(new) or any(
            (isinstance(v, float) and not math.isclose(v, old[k], rel_tol=1e-6)) or
            (not isinstance(v, float) and v != old[k]) for k, v in new.items()
        ):
            out.append(name)
    out += [name for name in stored if name not in fits]
    return out


def _stale_ae(records, path) -> list[str]:
    """Therapies whose stored residual AE record differs from a fresh one (probability, residual)."""
    stored = yaml.safe_load(Path(path).read_text()) if Path(path).is_file() else {}
    stored = stored or {}
    out = [name for name, r in records.items()
           if (stored.get(name) or {}).get("residual") != r.get("residual")
           or (stored.get(name) or {}).get("probability") != r.get("probability")]
    return out + [name for name in stored if name not in records]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="pnetsim-fit", description=__doc__.splitlines()[0])
    ap.add_argument("--spec", type=Path, default=DEFAULT_SPEC, help="fit specification (configs/fit/pfs.yaml)")
    ap.add_argument("--out", type=Path, default=DEFAULT_FITS, help="output YAML (a .csv is written next to it)")
    ap.add_argument("--therapy-dir", type=Path, default=THERAPY_DIR,
                    help="therapy configs regenerated (or compared by --check)")
    ap.add_argument("--ae-spec", type=Path, default=DEFAULT_AE_SPEC,
                    help="residual AE specification (configs/fit/ae.yaml)")
    ap.add_argument("--ae-out", type=Path, default=DEFAULT_AE_FITS, help="residual AE output (data/fits/ae_fits.yaml)")
    ap.add_argument("--check", action="store_true",
                    help="write nothing; exit 1 if the therapy configs or the written fits disagree with a fresh fit")
    a = ap.parse_args(argv)
    try:
        fits = fit_all(load_spec(a.spec))
        ae = residual_all(load_ae_spec(a.ae_spec), a.therapy_dir)
        if a.check:
            problems = compare_with_configs(fits, a.therapy_dir) + check_therapy_probabilities(ae, a.therapy_dir)
            stale = _stale(fits, read_fits(a.out)) + _stale_ae(ae, a.ae_out)
        else:
            therapy_files = write_therapy_files(fits, a.therapy_dir)   # checks every file first
            therapy_files += write_therapy_probabilities(ae, a.therapy_dir)
            paths = write_fits(fits, a.out)
            write_ae_fits(ae, a.ae_out)
    except UserError as exc:
        print(f"pnetsim-fit: error: {exc}", file=sys.stderr)
        return 2
    for name, f in fits.items():
        r = f["record"]
        shape = {k: v for k, v in r["pfs"].items() if k not in ("family", "median")}
        observed = r["summary"].get("median_observed")
        print(f"{name:>18}: {r['family']:<11} median {r['pfs']['median']:8.4g}  {shape}"
              + (f"  (observed median {observed:.4g})" if observed is not None else "")
              + f"  {'exact' if r['fit']['exact'] else 'wls'}")
    for name, r in ae.items():
        print(f"{name:>18}: {r['decision']}")
    if not a.check:
        print(f"written {paths[0]}, {paths[1]} and {a.ae_out}; {len(set(therapy_files))} therapy files in {a.therapy_dir}")
        return 0
    for p in problems:
        print(f"DISAGREE {p['therapy']}: {p['problem']} config={p.get('config')} fit={p.get('fit')} "
              f"(config pfs {p.get('config_pfs')}, fitted pfs {p.get('fit_pfs')}; rel tol {CHECK_RTOL})")
    for name in stale:
        print(f"STALE {name}: {a.out} differs from a fresh fit; run pnetsim-fit")
    if problems or stale:
        return 1
    print(f"therapy configs, {a.out} and {a.ae_out} agree with the fits (rel tol {CHECK_RTOL})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
