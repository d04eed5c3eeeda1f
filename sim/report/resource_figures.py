"""Figure of the queue for a shared resource (``resource_queue.png``)."""

from __future__ import annotations

from collections.abc import Mapping

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from sim.resources import WEEKS_PER_MONTH, QueueMonitor  # noqa: E402
from sim.units import MONTHS_PER_YEAR  # noqa: E402


def queue_figure(monitors: list[QueueMonitor], path, labels: Mapping | None = None):
    """Figure of the number of patients waiting for a first administration over time (years
    since the first arrival), one line per strategy that uses the resource, one panel per
    resource; the legend gives the mean and 95th-percentile wait. Returns ``path``."""
    used = [m for m in monitors if m.waits]
    names = list(dict.fromkeys(m.resource.name for m in used)) or [monitors[0].resource.name]
    fig, axes = plt.subplots(len(names), 1, figsize=(8, 3.2 * len(names)), squeeze=False)
    for ax, name in zip(axes[:, 0], names):
        for m in (m for m in used if m.resource.name == name):
            s = m.summary()
            ax.step(np.asarray(m.trace_t) / MONTHS_PER_YEAR, m.trace_n, where="post", lw=0.8,
                    label=f"{m.strategy}: mean wait {s['mean_wait_months'] * WEEKS_PER_MONTH:.1f} weeks, "
                          f"95th percentile {s['p95_wait_months'] * WEEKS_PER_MONTH:.1f}")
        ax.set_title(f"Patients waiting for a first administration: {name}")
        ax.set_xlabel("years since the first arrival")
        ax.set_ylabel("patients waiting")
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
