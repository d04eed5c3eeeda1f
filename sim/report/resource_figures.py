"""Figure of the queue for a shared resource (``resource_queue.png``)."""

from __future__ import annotations

import math

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from sim.resources import WEEKS_PER_MONTH, QueueMonitor  # noqa: E402
from sim.units import MONTHS_PER_YEAR  # noqa: E402


def queue_figure(monitors: list[QueueMonitor], path):
    """Figure of the number of patients waiting for a first administration over time (its mean
    over each month, :func:`monthly_mean`; years since the first arrival): one line per strategy
    that uses the resource, one panel per resource; the legend gives the mean and 95th-percentile
    wait. Returns ``path``."""
    used = [m for m in monitors if m.waits]
    names = list(dict.fromkeys(m.resource.name for m in used)) or [monitors[0].resource.name]
    fig, axes = plt.subplots(len(names), 1, figsize=(8, 3.2 * len(names)), squeeze=False)
    for ax, name in zip(axes[:, 0], names):
        for m in (m for m in used if m.resource.name == name):
            s = m.summary()
            edges, mean = monthly_mean(m)
            ax.step(edges[:-1] / MONTHS_PER_YEAR, mean, where="post", lw=0.9,
                    label=f"{m.strategy}: mean wait {s['mean_wait_months'] * WEEKS_PER_MONTH:.1f} weeks, "
                          f"95th percentile {s['p95_wait_months'] * WEEKS_PER_MONTH:.1f}")
        ax.set_title(f"Patients waiting for a first administration: {name} (monthly mean)")
        ax.set_xlabel("years since the first arrival")
        ax.set_ylabel("patients waiting")
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def monthly_mean(m: QueueMonitor) -> tuple[np.ndarray, np.ndarray]:
    """Month edges ``0, 1, ...`` and the time-average queue length over each month: the queue is a
    step function, so its integral ``A(t)`` is piecewise linear between the changes and the mean
    over ``[k, k + 1)`` is ``A(k + 1) - A(k)``."""
    t = np.asarray(m.trace_t + [max(m.last, m.trace_t[-1])], float)
    q = np.asarray(m.trace_n, float)
    area = np.concatenate([[0.0], np.cumsum(q * np.diff(t))])
    edges = np.arange(0.0, math.ceil(t[-1]) + 1.0)
    return edges, np.diff(np.interp(edges, t, area))
