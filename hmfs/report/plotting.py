"""Drawing helpers shared by the figures: colours, the panel style of episode figures, atomic PNG saving."""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, no display; set before pyplot is imported
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from hmfs.names import parse_variant  # noqa: E402

COLOURS = {"fm": "#1f77b4", "im": "#2ca02c", "hm": "#d62728"}  # one per masking of hmfs.names.MASKINGS
DPI = 110


def colour_of(variant: str) -> str:
    """The colour of a variant's masking ("hm_aug" -> hybrid masking's)."""
    return COLOURS[parse_variant(variant)[0]]


def labelled_variants(specs: list[str]) -> list[tuple[str, str]]:
    """["HSNet=fm", "HMFS=hm"] -> [("HSNet", "fm"), ("HMFS", "hm")]; a bare "fm" labels itself."""
    out = []
    for spec in specs:
        label, sep, variant = spec.partition("=")
        out.append((label, variant) if sep else (spec, spec))
    return out


def read_history(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def save_figure(fig, out: Path) -> None:
    from hmfs.runtime import atomic_write_bytes

    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp.png")
    fig.savefig(tmp, dpi=DPI, bbox_inches="tight")
    plt.close(fig)
    atomic_write_bytes(out, tmp.read_bytes(), fsync=False)
    tmp.unlink()


# Episode panels (Figs. 4 and 5): the paper's colours, blue for the support's target and red for
# predictions; the query's ground truth is a green outline, drawn over the predictions as well.
SUPPORT_COLOUR = "#2f6bff"
TRUTH_COLOUR = "#39e639"
PREDICTION_COLOUR = "#ff2020"
PANEL_INCHES = 2.8  # per image panel: 308 px at DPI 110, so a 96-px synthetic image is drawn 3x
SMALLEST_RULE = ("the test episodes with the smallest target: smallest query foreground fraction (foreground / "
                 "labelled pixels of the query mask), ties by episode index, empty targets left out; chosen from "
                 "the labels only, never from a prediction")


def picture(tensor) -> np.ndarray:
    """(3, H, W) ImageNet-normalised tensor -> (H, W, 3) float image in [0, 1]."""
    from hmfs.data.transforms import IMAGENET_MEAN, IMAGENET_STD

    mean, std = np.array(IMAGENET_MEAN).reshape(3, 1, 1), np.array(IMAGENET_STD).reshape(3, 1, 1)
    return np.clip(tensor.numpy() * std + mean, 0, 1).transpose(1, 2, 0)


def interpolation(size: int) -> str:
    """Nearest for images drawn larger than they are (small images stay crisp), antialiased otherwise."""
    return "nearest" if size <= PANEL_INCHES * DPI else "antialiased"


def show_image(ax, image: np.ndarray) -> None:
    ax.imshow(image, interpolation=interpolation(max(image.shape[:2])))
    ax.set_xticks([])
    ax.set_yticks([])


def fill(ax, mask: np.ndarray, colour: str, alpha: float) -> None:
    """A translucent fill of the mask's pixels (exactly its pixels: nearest interpolation)."""
    from matplotlib.colors import ListedColormap

    on = np.asarray(mask) == 1
    if on.any():
        ax.imshow(np.ma.masked_where(~on, np.ones(on.shape)), cmap=ListedColormap([colour]), alpha=alpha,
                  vmin=0, vmax=1, interpolation="nearest")


def dim_outside(image: np.ndarray, mask: np.ndarray, keep: float = 0.4) -> np.ndarray:
    """The image with every pixel outside the mask darkened to `keep` of its brightness."""
    on = (np.asarray(mask) == 1)[..., None]
    return np.where(on, image, keep * image)


def outline(ax, mask: np.ndarray, colour: str, width: float = 1.8, halo: bool = True) -> None:
    """The mask's boundary, in `colour` (over a dark halo, so it reads on light and dark images alike)."""
    on = (np.asarray(mask) == 1).astype(float)
    if not on.any():
        return
    padded = np.pad(on, 1)  # a mask touching the border still gets a closed outline
    ys, xs = np.arange(-1, on.shape[0] + 1), np.arange(-1, on.shape[1] + 1)
    if halo:
        ax.contour(xs, ys, padded, levels=[0.5], colors="black", linewidths=width + 1.6, alpha=0.6)
    ax.contour(xs, ys, padded, levels=[0.5], colors=colour, linewidths=width)
    ax.set_xlim(-0.5, on.shape[1] - 0.5)
    ax.set_ylim(on.shape[0] - 0.5, -0.5)


def legend(fig, labels: list[str]) -> None:
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    handles = [Line2D([], [], color=SUPPORT_COLOUR, linewidth=2.5,
                      label="support mask: the target (rest of the support dimmed)"),
               Line2D([], [], color=TRUTH_COLOUR, linewidth=2.5, label="query ground truth (outline)"),
               Patch(facecolor=PREDICTION_COLOUR, edgecolor=PREDICTION_COLOUR, alpha=0.7,
                     label=f"prediction ({', '.join(labels)})")]
    fig.legend(handles=handles, loc="outside lower center", ncol=3, fontsize=10, frameon=False)


def figure_title(fig, text: str, width_inches: float) -> None:
    """A suptitle wrapped to the figure's width (about 12 characters per inch at 11 pt)."""
    import textwrap

    lines = [textwrap.fill(line, int(12 * width_inches)) for line in text.split("\n")]
    fig.suptitle("\n".join(lines), fontsize=11)


def iou(pred: np.ndarray, truth: np.ndarray) -> float:
    """Foreground IoU (%) of one prediction, ignoring label pixels 255."""
    valid = truth != 255
    inter = np.logical_and(pred == 1, truth == 1)[valid].sum()
    union = np.logical_or(pred == 1, truth == 1)[valid].sum()
    return float(100 * inter / max(union, 1))


def zoom_box(mask: np.ndarray) -> tuple[int, int, int, int] | None:
    """(x0, y0, x1, y1), half-open: a square around the mask's foreground, twice its extent and at
    least a quarter of the image side, inside the image; None for an empty mask."""
    on = np.asarray(mask) == 1
    if not on.any():
        return None
    height, width = on.shape
    ys, xs = np.nonzero(on)
    side = max(xs.max() - xs.min() + 1, ys.max() - ys.min() + 1)
    side = int(min(max(2 * side, min(height, width) // 4), min(height, width)))
    cx, cy = (xs.min() + xs.max() + 1) / 2, (ys.min() + ys.max() + 1) / 2
    x0 = int(np.clip(round(cx - side / 2), 0, width - side))
    y0 = int(np.clip(round(cy - side / 2), 0, height - side))
    return x0, y0, x0 + side, y0 + side


def mark_box(ax, box: tuple[int, int, int, int]) -> None:
    x0, y0, x1, y1 = box
    ax.add_patch(plt.Rectangle((x0 - 0.5, y0 - 0.5), x1 - x0, y1 - y0, fill=False, edgecolor="white",
                               linestyle="--", linewidth=1.5))
