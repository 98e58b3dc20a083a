"""The ratio chart: one panel per database, aiouow and SQLAlchemy bars against hand-written code (= 1)."""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from typing import Any

AIOUOW_COLOR = "#2a7ab9"
SQLALCHEMY_COLOR = "#c98b2b"
LIMIT_COLOR = "#c0392b"


@dataclass(frozen=True, slots=True)
class ChartEntry:
    label: str
    aiouow: float | None
    sqlalchemy: float | None
    limit: float | None  # aiouow's target, drawn as a red tick


@dataclass(frozen=True, slots=True)
class ChartPanel:
    title: str
    entries: list[ChartEntry]

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @staticmethod
    def from_json(data: Any) -> ChartPanel | None:
        """A panel from its JSON form, or None when ``data`` is not one."""
        if not isinstance(data, dict) or not isinstance(data.get("title"), str):
            return None
        entries: list[ChartEntry] = []
        for e in data.get("entries") or []:
            if not isinstance(e, dict) or not isinstance(e.get("label"), str):
                return None
            values = [e.get(k) for k in ("aiouow", "sqlalchemy", "limit")]
            if not all(v is None or isinstance(v, int | float) for v in values):
                return None
            a, s, lim = (None if v is None else float(v) for v in values)
            entries.append(ChartEntry(e["label"], a, s, lim))
        return ChartPanel(data["title"], entries)


def draw(panels: list[ChartPanel], path: str) -> None:
    """Write the chart of ``panels`` to ``path`` (PNG, matplotlib's Agg backend)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FuncFormatter, NullFormatter

    rows = max((len(p.entries) for p in panels), default=1)
    fig, axes = plt.subplots(1, len(panels), figsize=(6.4 * len(panels), 0.62 * rows + 1.9), squeeze=False)
    for ax, panel in zip(axes[0], panels, strict=True):
        labels = [e.label for e in panel.entries]
        ys = list(range(len(labels)))
        height = 0.38
        for offset, name, color, attr in (
            (-height / 2, "aiouow", AIOUOW_COLOR, "aiouow"),
            (height / 2, "SQLAlchemy", SQLALCHEMY_COLOR, "sqlalchemy"),
        ):
            values = [getattr(e, attr) for e in panel.entries]
            pos = [y + offset for y, v in zip(ys, values, strict=True) if v is not None]
            vals = [v for v in values if v is not None]
            if vals:
                ax.barh(pos, vals, height=height, color=color, label=name)
            for y, v in zip(pos, vals, strict=True):
                ax.text(v * 1.04, y, f"{v:.2f}x", va="center", fontsize=7)
        for y, e in zip(ys, panel.entries, strict=True):
            if e.limit is not None:
                ax.plot([e.limit], [y - height / 2], marker="|", markersize=16, mew=2, color=LIMIT_COLOR)
        ax.plot([], [], marker="|", markersize=10, mew=2, lw=0, color=LIMIT_COLOR, label="aiouow target")
        ax.axvline(1.0, color="black", lw=0.8)
        ax.set_xscale("log")
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}x"))
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.set_ylim(len(ys) - 0.5, -0.5)
        ax.set_yticks(ys, labels, fontsize=8)
        ax.set_xlabel("ratio to hand-written driver code (log scale; 1 = hand-written)", fontsize=8)
        ax.set_title(panel.title)
        ax.grid(axis="x", which="both", alpha=0.25)
        ax.legend(fontsize=7, loc="lower right")
        shown = [v for e in panel.entries for v in (e.aiouow, e.sqlalchemy, e.limit) if v is not None and v > 0]
        ax.set_xlim(left=min([0.5, *shown]) * 0.8, right=max([2.0, *shown]) * 2)
    fig.tight_layout()
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
