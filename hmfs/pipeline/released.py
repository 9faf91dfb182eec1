"""The authors' released checkpoints: where each one goes, where to get it, and which are missing."""

from __future__ import annotations

from pathlib import Path

from hmfs.pipeline.grid import Run

RELEASED_NAME = "best_model.pt"  # the name HSNet's and HM's code give the best checkpoint

# Google Drive folders named by the authors' READMEs (docs/protocol.md, section 6). HSNet's hold
# feature-masking (fm) models per benchmark, ResNet-50 and ResNet-101, trained without augmentation;
# the HM authors' folder holds their HSNet-HM (hybrid masking) models.
HSNET_FOLDERS = {
    "pascal": "https://drive.google.com/drive/folders/1cyz_bv50hiCZ5ZV_5V5zt71l7JoRDA8E",
    "coco": "https://drive.google.com/drive/folders/1NeKxvYgP-uhN1y92UR2LVvh1Huw5pvSP",
    "fss": "https://drive.google.com/drive/folders/1Z6SZPJR-xcPyP0ck22selac4mXS7ElMa",
}
HM_FOLDER = "https://drive.google.com/drive/folders/1g8UJPSZDUeDlUFgaP_dlL0UFnWKq82uz"


def released_checkpoint_path(released_dir: str, run: Run) -> str:
    """<released_dir>/<benchmark>/<backbone>/<variant>/<fold>/best_model.pt (fold: fold0..3, or all for FSS-1000)."""
    return f"{released_dir}/{run.benchmark}/{run.backbone}/{run.variant}/{run.fold}/{RELEASED_NAME}"


def where_to_get(run: Run) -> str:
    """The Drive folder that holds a run's released checkpoint, or why none is known."""
    if run.variant == "fm":
        return f"HSNet's {run.benchmark} models: {HSNET_FOLDERS[run.benchmark]}"
    if run.masking == "hm":
        return f"the HM authors' HSNet-HM models: {HM_FOLDER}"
    return f"no released {run.variant} model is known (only HSNet fm and HSNet-HM hm); use source: trained for this row"


def missing_released(released_dir: str, runs: list[Run]) -> list[str]:
    """One line per released checkpoint that is not in place: its path and where to get it."""
    lines = []
    for run in runs:
        path = released_checkpoint_path(released_dir, run)
        if not Path(path).is_file():
            lines.append(f"  {path}  <- {where_to_get(run)}")
    return lines
