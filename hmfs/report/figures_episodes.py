"""Episode figures: Fig. 4 (smallest targets), Fig. 5-style qualitative grid and Fig. 6 (FM vs IM feature maps)."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from hmfs.pipeline.grid import Evaluation, Run, run_folds
from hmfs.pipeline.paths import predictions_path
from hmfs.report.plotting import (PANEL_INCHES, PREDICTION_COLOUR, SMALLEST_RULE, SUPPORT_COLOUR, TRUTH_COLOUR, dim_outside,
                           figure_title, fill, iou, labelled_variants, legend, mark_box, outline, picture, plt,
                           save_figure, show_image, zoom_box)

log = logging.getLogger(__name__)


def _load_predictions(results: Path, benchmark: str, backbone: str, fold: int, labelled: list[tuple[str, str]],
                      kind: str) -> tuple[dict[str, list[dict]], dict[str, Path]]:
    """Per label: the rows of kind `kind` of the variant's 1-shot predictions file, in stored order."""
    fold_name = run_folds(benchmark, [fold])[0]
    kept, paths = {}, {}
    for label, variant in labelled:
        path = Path(predictions_path(str(results), Evaluation(Run(benchmark, backbone, variant, fold_name), 1, benchmark)))
        if not path.is_file():
            raise FileNotFoundError(f"predictions not found: {path} (written by `evaluate --predictions`)")
        with np.load(path) as saved:
            kinds = saved["kind"] if "kind" in saved.files else np.full(len(saved["episode"]), "first")
            if kind == "smallest" and "kind" not in saved.files:
                raise ValueError(f"{path} keeps no smallest-target episodes (it predates them): evaluate again with "
                                 "--num-smallest-predictions (config: evaluate.predictions_smallest)")
            rows = []
            for i in np.flatnonzero(kinds == kind):
                row = {"episode": int(saved["episode"][i]), "query_name": str(saved["query_name"][i]),
                       "class_id": int(saved["class_id"][i]), "pred": saved["pred"][i]}
                if "query_fg_pixels" in saved.files:
                    row.update(query_fg_pixels=int(saved["query_fg_pixels"][i]),
                               query_valid_pixels=int(saved["query_valid_pixels"][i]))
                rows.append(row)
        kept[label], paths[label] = rows, path
    return kept, paths


def _test_dataset(benchmark: str, data_root: Path, splits_dir: Path | None, fold: int, img_size: int, seed: int,
                  evaluation_episodes: int | None):
    """The 1-shot evaluation's test episodes (same seed and length: the same episodes)."""
    from hmfs.options import resolve_splits_dir
    from hmfs.data import build_dataset

    return build_dataset(benchmark, data_root, resolve_splits_dir(splits_dir), fold, "test" if benchmark == "fss" else "val",
                         1, img_size, seed, num_episodes=evaluation_episodes)


def _draw_episodes(dataset, episodes: list[int], names: dict[int, str], predictions: dict[str, dict[int, np.ndarray]],
                   row_notes: dict[int, str], title: str, zoom: bool) -> tuple[plt.Figure, dict]:
    """One row per episode: support + mask, query + ground truth, then each label's prediction.

    With `zoom`, each label also gets a column that magnifies the square around the target (the
    dashed box in the query and prediction panels), so that small targets' details stay visible;
    the full prediction panels still show every predicted pixel."""
    labels = list(predictions)
    columns = (["support + mask", "query + ground truth"] + [f"{label} prediction" for label in labels]
               + ([f"{label} (zoom on the box)" for label in labels] if zoom else []))
    fig, axes = plt.subplots(len(episodes), len(columns), squeeze=False, layout="constrained",
                             figsize=(PANEL_INCHES * len(columns), PANEL_INCHES * len(episodes) + 1.0))
    summary = {}
    for r, episode in enumerate(episodes):
        item = dataset[episode]
        if item["query_name"] != names[episode]:
            raise ValueError(f"episode {episode} is {item['query_name']!r} here but {names[episode]!r} in the predictions: "
                             "pass the evaluation's --evaluation-episodes, --seed and --img-size")
        query, truth = picture(item["query_img"]), item["query_mask"].numpy()
        support_mask = item["support_masks"][0].numpy()
        box = zoom_box(truth) if zoom else None
        ax = axes[r][0]
        show_image(ax, dim_outside(picture(item["support_imgs"][0]), support_mask))
        outline(ax, support_mask, SUPPORT_COLOUR)
        ax = axes[r][1]
        show_image(ax, query)
        fill(ax, truth, TRUTH_COLOUR, 0.3)
        outline(ax, truth, TRUTH_COLOUR)
        if box is not None:
            mark_box(ax, box)
        ious = {}
        for c, label in enumerate(labels):
            pred = predictions[label][episode]
            ious[label] = iou(pred, truth)
            panels = [axes[r][2 + c]] + ([axes[r][2 + len(labels) + c]] if zoom else [])
            for ax in panels:
                show_image(ax, query)
                fill(ax, pred, PREDICTION_COLOUR, 0.65)
                outline(ax, pred, PREDICTION_COLOUR, width=1.3, halo=False)
                outline(ax, truth, TRUTH_COLOUR, width=1.4)
                ax.set_xlabel(f"{label}: IoU {ious[label]:.0f}%", fontsize=10)
            if box is not None:
                mark_box(panels[0], box)
                x0, y0, x1, y1 = box
                panels[1].set_xlim(x0 - 0.5, x1 - 0.5)
                panels[1].set_ylim(y1 - 0.5, y0 - 0.5)
                for spine in panels[1].spines.values():
                    spine.set(edgecolor="white", linestyle="--", linewidth=1.5)
        summary[str(episode)] = {"query_name": names[episode], "class_id": int(item["class_id"]), "iou": ious}
        axes[r][0].set_ylabel(f"episode {episode}" + (f"\n{row_notes[episode]}" if episode in row_notes else ""),
                              fontsize=10)
        if r == 0:
            for c, name in enumerate(columns):
                axes[r][c].set_title(name, fontsize=11)
    figure_title(fig, title, PANEL_INCHES * len(columns))
    legend(fig, labels)
    return fig, summary


def plot_qualitative(results: Path, benchmark: str, backbone: str, fold: int, variants: list[str],
                     data_root: Path, splits_dir: Path | None, img_size: int, seed: int, num_episodes: int,
                     out: Path, evaluation_episodes: int | None = None) -> dict:
    """Fig. 5 style: support (with mask), query (with ground truth), then each masking's prediction,
    for the first `num_episodes` test episodes that every variant kept (same seed: same episodes).
    evaluation_episodes: the evaluation's episode count (None: the split's natural length), which
    decides how episode indices map to queries; each panel's query is checked against the saved name."""
    labelled = labelled_variants(variants)
    kept, _ = _load_predictions(results, benchmark, backbone, fold, labelled, "first")
    predictions = {label: {row["episode"]: row["pred"] for row in rows} for label, rows in kept.items()}
    names = {row["episode"]: row["query_name"] for rows in kept.values() for row in rows}
    episodes = sorted(set.intersection(*(set(p) for p in predictions.values())))[:num_episodes]
    if not episodes:
        raise ValueError(f"the prediction files of {[v for _, v in labelled]} share no episode; evaluate them with the same seed")
    dataset = _test_dataset(benchmark, data_root, splits_dir, fold, img_size, seed, evaluation_episodes)
    title = (f"{benchmark} fold {fold}, {backbone}, 1-shot: the first {len(episodes)} test episodes "
             "(not selected), under each masking")
    fig, summary = _draw_episodes(dataset, episodes, names, predictions, {}, title, zoom=False)
    save_figure(fig, out)
    return {episode: row["iou"] for episode, row in summary.items()}


def smallest_target_episodes(kept: dict[str, list[dict]], paths: dict[str, Path]) -> list[dict]:
    """The smallest-target rows every label kept, checked to be the same episodes in the same order.

    kept: label -> rows of kind "smallest" (episode, query_name, query_fg_pixels, query_valid_pixels).
    The evaluations of one fold with one seed see the same episodes, so they keep the same smallest
    targets; anything else (another seed, episode count, image size or data) is a ValueError."""
    from fractions import Fraction

    labels = list(kept)
    reference = labels[0]

    def key(row: dict) -> tuple:
        return row["episode"], row["query_name"], row.get("query_fg_pixels"), row.get("query_valid_pixels")

    for label in labels[1:]:
        if [key(r) for r in kept[label]] != [key(r) for r in kept[reference]]:
            ours = [r["episode"] for r in kept[reference]]
            theirs = [r["episode"] for r in kept[label]]
            raise ValueError(f"{paths[reference]} and {paths[label]} keep different smallest-target episodes "
                             f"({ours} vs {theirs}): evaluate both with the same seed, episodes, image size and data")
    rows = kept[reference]
    if not rows:
        raise ValueError(f"{paths[reference]} keeps no smallest-target episode: evaluate with "
                         "--num-smallest-predictions N (config: evaluate.predictions_smallest)")
    order = [(Fraction(r["query_fg_pixels"], r["query_valid_pixels"]), r["episode"]) for r in rows]
    if order != sorted(order) or any(r["query_fg_pixels"] <= 0 for r in rows):
        raise ValueError(f"{paths[reference]}: the smallest-target rows are not in the rule's order")
    return rows


def plot_small_targets(results: Path, benchmark: str, backbone: str, fold: int, variants: list[str],
                       data_root: Path, splits_dir: Path | None, img_size: int, seed: int, num_episodes: int,
                       out: Path, evaluation_episodes: int | None = None) -> dict:
    """Fig. 4: each variant's 1-shot prediction on the `num_episodes` test episodes with the smallest
    target (`SMALLEST_RULE`, kept by `evaluate --num-smallest-predictions`), smallest first; the
    prediction panels zoom on the target. Same arguments as `plot_qualitative`."""
    labelled = labelled_variants(variants)
    kept, paths = _load_predictions(results, benchmark, backbone, fold, labelled, "smallest")
    rows = smallest_target_episodes(kept, paths)
    if len(rows) < num_episodes:
        log.warning("the prediction files keep %d smallest-target episodes, fewer than the %d asked for",
                    len(rows), num_episodes)
    rows = rows[:num_episodes]
    episodes = [row["episode"] for row in rows]
    names = {row["episode"]: row["query_name"] for row in rows}
    fractions = {row["episode"]: row["query_fg_pixels"] / row["query_valid_pixels"] for row in rows}
    predictions = {label: {row["episode"]: row["pred"] for row in kept[label]} for label in kept}
    dataset = _test_dataset(benchmark, data_root, splits_dir, fold, img_size, seed, evaluation_episodes)
    notes = {episode: f"target {100 * fraction:.2f}% of the query" for episode, fraction in fractions.items()}
    title = (f"{benchmark} fold {fold}, {backbone}, 1-shot: {' vs '.join(kept)} on the {len(episodes)} test episodes "
             f"with the smallest target\nRule: {SMALLEST_RULE}.")
    fig, summary = _draw_episodes(dataset, episodes, names, predictions, notes, title, zoom=True)
    save_figure(fig, out)
    for episode, row in summary.items():
        row["query_fg_fraction"] = fractions[int(episode)]
    return {"rule": SMALLEST_RULE, "episodes": summary}


def plot_feature_maps(benchmark: str, backbone: str, backbone_weights: Path, fold: int, data_root: Path,
                      splits_dir: Path | None, img_size: int, seed: int, episode: int, layers: list[str], out: Path,
                      evaluation_episodes: int | None = None) -> dict:
    """Fig. 6: the first channel of the support's FM and IM feature maps at the paper's ResNet-50 layers.

    The support is support 0 of 1-shot test episode `episode` (the evaluation's seed and length).
    FM: the plain feature times the bilinearly resized mask (`feature_masking`); IM: the feature of
    the masked image (`input_masking`). Maps are the blocks' outputs before the ReLU, as HSNet
    correlates them; `named_layer` maps each paper name ("layer34") to a block of `backbone`. The
    FM and IM maps of one layer share one grey scale (min to max of the two)."""
    import torch

    from hmfs.model.backbone import PAPER_LAYER_NET, build_backbone, extract_features, feature_layout, named_layer
    from hmfs.model.masking import feature_masking, input_masking
    from hmfs.runtime import sha256_file

    named = [named_layer(backbone, name) for name in layers]
    dataset = _test_dataset(benchmark, data_root, splits_dir, fold, img_size, seed, evaluation_episodes)
    item = dataset[episode]
    image, mask = item["support_imgs"][:1], item["support_masks"][:1].float()  # (1, 3, H, W), (1, H, W)
    net = build_backbone(backbone, backbone_weights)
    layout = feature_layout(backbone)
    with torch.no_grad():
        plain = extract_features(net, image, layout)
        masked_input = extract_features(net, input_masking(image, mask), layout)
    fm = feature_masking([plain[n.feature_index] for n in named], mask)
    im = [masked_input[n.feature_index] for n in named]

    support = picture(item["support_imgs"][0])
    support_mask = item["support_masks"][0].numpy()
    height, width = support_mask.shape
    fig, axes = plt.subplots(len(named), 3, squeeze=False, layout="constrained",
                             figsize=(PANEL_INCHES * 3 + 0.8, PANEL_INCHES * len(named) + 1.2))
    summary = {"support_name": item["support_names"][0], "episode": episode, "class_id": int(item["class_id"]),
               "backbone": backbone, "backbone_weights": str(backbone_weights),
               "backbone_weights_sha256": sha256_file(backbone_weights), "channel": 0, "layers": {}}
    inside = support_mask == 1
    for r, (layer, fm_map, im_map) in enumerate(zip(named, fm, im)):
        maps = {"FM": fm_map[0, 0].numpy(), "IM": im_map[0, 0].numpy()}  # (h, w): channel 0
        low = min(float(m.min()) for m in maps.values())
        high = max(float(m.max()) for m in maps.values())
        ax = axes[r][0]
        show_image(ax, dim_outside(support, support_mask))
        outline(ax, support_mask, SUPPORT_COLOUR)
        ax.set_ylabel(f"{layer.name} ({PAPER_LAYER_NET})\n= {backbone} {layer.where}", fontsize=10)
        stats = {"block": layer.block, "stage": layer.stage, "block_in_stage": layer.block_in_stage,
                 "feature_index": layer.feature_index, "shape": list(maps["FM"].shape), "min": low, "max": high}
        for c, (kind, values) in enumerate(maps.items(), start=1):
            ax = axes[r][c]
            shown = ax.imshow(values, cmap="gray", vmin=low, vmax=high if high > low else low + 1,
                              interpolation="nearest", extent=(-0.5, width - 0.5, height - 0.5, -0.5))
            outline(ax, support_mask, SUPPORT_COLOUR, width=1.2)
            ax.set_xticks([])
            ax.set_yticks([])
            h, w = values.shape
            ax.set_xlabel(f"{h}x{w} map, channel 0", fontsize=9)
            resized = np.asarray(torch.nn.functional.interpolate(
                torch.from_numpy(values)[None, None], (height, width), mode="nearest")[0, 0])
            stats[kind] = {"mean_in_mask": float(resized[inside].mean()) if inside.any() else None,
                           "mean_outside_mask": float(resized[~inside].mean()) if (~inside).any() else None}
            if r == 0:
                ax.set_title({"FM": "FM: feature x resized mask", "IM": "IM: feature of the masked image"}[kind],
                             fontsize=11)
        fig.colorbar(shown, ax=axes[r][1:].tolist(), fraction=0.04, pad=0.02)
        summary["layers"][layer.name] = stats
        if r == 0:
            axes[r][0].set_title("support + mask", fontsize=11)
    figure_title(fig, f"{benchmark} fold {fold}: support of test episode {episode} ({item['support_names'][0]}), "
                f"{backbone} backbone. First channel of each map, before the ReLU; one grey scale per row; "
                "blue: the support mask's outline.", PANEL_INCHES * 3 + 0.8)
    save_figure(fig, out)
    return summary


