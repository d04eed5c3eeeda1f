"""The model's states and transitions as a figure (``docs/model_states.png``).

``python -m sim.report.state_diagram [path]`` redraws it. Boxes are the states a patient
passes through; arrows are the competing events of the model with the hazard that drives
each (formulas in ``docs/model.md``).
"""

from __future__ import annotations

import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch  # noqa: E402

DEFAULT = Path(__file__).resolve().parents[2] / "docs" / "model_states.png"

#: state -> (x, y, label, colour)
STATES = {
    "line": (0.22, 0.62, "Line k of the strategy\n(active drug or observation)\nprogression-free, on treatment", "#d8ebf7"),
    "lag": (0.22, 0.25, "Progressed, not yet seen\n(until the next scan or\nclinical detection)", "#fde9c9"),
    "next": (0.62, 0.62, "Line k+1\n(next eligible line;\nholiday first if configured)", "#d8ebf7"),
    "terminal": (0.62, 0.25, "Refractory disease\n(best supportive care\nafter the last active line)", "#f6d5d5"),
    "dead": (0.93, 0.43, "Dead\n(disease or\nother cause)", "#dddddd"),
}
#: (start (x, y), end (x, y), label, label position (x, y), curvature): start / end on box edges
ARROWS = [
    ((0.22, 0.535), (0.22, 0.335), "progression\n$h_{prog}(t)\\,HR_i$", (0.235, 0.435), 0.0, "left"),
    ((0.30, 0.335), (0.50, 0.535), "detected at a scan\nor clinically", (0.37, 0.45), 0.0, "center"),
    ((0.34, 0.64), (0.50, 0.64), "toxicity stop\n(grade 3/4 AE)", (0.42, 0.69), 0.0, "center"),
    ((0.34, 0.25), (0.50, 0.25), "no further line\n(last, ineligible,\ncapped)", (0.42, 0.18), 0.0, "center"),
    ((0.22, 0.705), (0.88, 0.515), "death without progression $\\lambda_i$ (the patient's, not the drug's)",
     (0.55, 0.80), -0.3, "center"),
    ((0.74, 0.25), (0.86, 0.37), "refractory death\n$h_{BSC}(t)\\,HR_i$", (0.86, 0.25), 0.0, "center"),
    ((0.74, 0.60), (0.86, 0.49), "other-cause death\n(life table, any state)", (0.86, 0.62), 0.0, "center"),
]


def draw(path: Path = DEFAULT) -> Path:
    """Draw the state diagram to ``path`` (PNG) and return it."""
    fig, ax = plt.subplots(figsize=(11, 5.5))
    ax.set_xlim(0, 1.05)
    ax.set_ylim(0.08, 0.86)
    ax.axis("off")
    w, h = 0.24, 0.17
    for key, (x, y, label, colour) in STATES.items():
        ww = 0.13 if key == "dead" else w
        ax.add_patch(FancyBboxPatch((x - ww / 2, y - h / 2), ww, h, boxstyle="round,pad=0.01", fc=colour, ec="#333333"))
        ax.text(x, y, label, ha="center", va="center", fontsize=9)
    for start, end, label, (lx, ly), rad, ha in ARROWS:
        ax.add_patch(FancyArrowPatch(start, end, arrowstyle="-|>", mutation_scale=14, color="#333333",
                                     connectionstyle=f"arc3,rad={rad}"))
        ax.text(lx, ly, label, ha=ha, va="center", fontsize=8, color="#1b3d6d")
    ax.set_title("pnetsim: states of one patient's pathway and the competing events between them", fontsize=11)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


if __name__ == "__main__":
    print(draw(Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT))
