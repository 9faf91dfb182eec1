"""Figures from result files: the convergence curves and the runtime bars plot the numbers in the files; the
smallest-target episodes (Fig. 4) are kept by a running selection equal to a sort and refused when the files
disagree; the paper's ResNet-50 layer names (Fig. 6) map to the blocks counted by hand."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from PIL import Image

from hmfs.pipeline import argv, checks, paths, rule_inputs
from hmfs.cli import build_parser, main
from hmfs.engine import SmallestTargets, evaluate_episodes
from hmfs.commands.evaluate import save_predictions
from hmfs.pipeline.grid import Evaluation, Run
from hmfs.metrics import IoUAccumulator
from hmfs.model.backbone import build_backbone, extract_features, feature_layout, named_layer
from hmfs.model.masking import feature_masking, input_masking

REPO = Path(__file__).resolve().parents[2]


def write_history(results: Path, run: Run, curve: list[float]) -> None:
    path = results / run.key / "history.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps({"epoch": i, "val_miou": v}) + "\n" for i, v in enumerate(curve)))


def test_convergence_plots_the_mean_over_folds(tmp_path):
    results = tmp_path / "results"
    for k in range(2):
        write_history(results, Run("coco", "resnet18", "fm", f"fold{k}"), [0.0, 10.0 + k, 20.0 + k])
        write_history(results, Run("coco", "resnet18", "hm", f"fold{k}"), [5.0, 30.0 + k, 25.0])
    out = tmp_path / "fig7.png"
    histories = sorted(str(p) for p in results.rglob("history.jsonl"))
    assert main(["figures", "convergence", "--histories", *histories, "--benchmark", "coco", "--backbones", "resnet18",
                 "--folds", "0", "1", "--variants", "HSNet=fm", "HMFS=hm", "--out", str(out)]) == 0
    numbers = json.loads(out.with_suffix(".json").read_text())
    assert numbers["resnet18/fm"] == {"folds": 2, "epochs": 3, "best_epoch": 3, "best_mean_val_miou": 20.5}
    assert numbers["resnet18/hm"]["best_epoch"] == 2 and numbers["resnet18/hm"]["best_mean_val_miou"] == 30.5
    assert Image.open(out).size[0] > 200


def test_runtime_reports_the_hm_overhead(tmp_path):
    results = tmp_path / "results"
    for variant, ms in (("fm", [10.0, 12.0, 11.0]), ("hm", [15.0, 13.0, 14.0])):
        for k, value in enumerate(ms):
            path = results / Run("coco", "resnet18", variant, f"fold{k}").key / "eval_1shot.json"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps({"timings": {"ms_per_episode": value}}))
    out = tmp_path / "runtime.png"
    evaluations = sorted(str(p) for p in results.rglob("eval_1shot.json"))
    assert main(["figures", "runtime", "--evaluations", *evaluations, "--benchmark", "coco", "--backbones", "resnet18",
                 "--folds", "0", "1", "2", "3", "--shots", "1", "--variants", "FM=fm", "HM=hm",
                 "--claimed-overhead", "0.4", "--out", str(out)]) == 0
    numbers = json.loads(out.with_suffix(".json").read_text())
    assert numbers == {"resnet18/fm/1shot": 11.0, "resnet18/hm/1shot": 14.0}  # medians over the folds found
    assert out.is_file()


def test_seed_band_for_fig7(tmp_path):
    import matplotlib.pyplot as plt

    from hmfs.report.figures import seed_band

    results = tmp_path / "results"
    per_fold = [{}, {}]
    for seed, lift in ((0, 0.0), (1, 4.0), (2, 2.0)):
        for k in (0, 1):
            curve = [10.0 + lift + k, 20.0 + lift + k, 30.0 + lift + k][: 3 - (seed == 2 and k == 1)]
            write_history(results, Run("coco", "r18", "hm", f"fold{k}", seed=seed), curve)
            per_fold[k][seed] = results / Run("coco", "r18", "hm", f"fold{k}", seed=seed).key / "history.jsonl"
    fig, ax = plt.subplots()
    band = seed_band(ax, per_fold, "r18", "hm", "red")["r18/hm/seeds"]
    assert band["seeds"] == [0, 1, 2] and band["epochs"] == 2  # seed 2's fold 1 stopped after 2 epochs
    assert band["low"] == [10.5, 20.5] and band["high"] == [14.5, 24.5] and band["mean"] == [12.5, 22.5]
    assert len(ax.collections) == 1
    assert seed_band(ax, [{0: per_fold[0][0]}], "r18", "fm", "blue") == {}  # one seed: nothing drawn
    plt.close(fig)


def test_fig7_draws_the_band_from_the_histories_handed_in_and_refuses_others(tmp_path, caplog):
    results = tmp_path / "results"
    for seed in (0, 1):
        write_history(results, Run("coco", "resnet18", "hm", "fold0", seed=seed), [10.0 + seed, 20.0 + seed])
    write_history(results, Run("coco", "resnet18", "fm", "fold0"), [5.0, 6.0])
    args = ["figures", "convergence", "--benchmark", "coco", "--backbones", "resnet18", "--folds", "0",
            "--variants", "HMFS=hm", "--out", str(tmp_path / "fig7.png"), "--histories"]
    hm = [str(results / Run("coco", "resnet18", "hm", "fold0", seed=seed).key / "history.jsonl") for seed in (0, 1)]
    assert main([*args, *hm]) == 0
    numbers = json.loads((tmp_path / "fig7.json").read_text())
    assert numbers["resnet18/hm/seeds"]["seeds"] == [0, 1]
    assert main([*args, hm[0]]) == 0  # seed 1's history not handed in: no band, although it is on disk
    assert "resnet18/hm/seeds" not in json.loads((tmp_path / "fig7.json").read_text())
    fm = str(results / Run("coco", "resnet18", "fm", "fold0").key / "history.jsonl")
    assert main([*args, *hm, fm]) == 2
    assert f"1 of the files handed in are not part of Fig. 7 (coco; backbones resnet18; variants hm; folds fold0): {fm}" \
        in caplog.text


def test_qualitative_needs_the_prediction_files(tmp_path, caplog):
    assert main(["figures", "qualitative", "--results", str(tmp_path), "--benchmark", "coco", "--backbone", "resnet18",
                 "--variants", "FM=fm", "--data-root", str(tmp_path), "--img-size", "64", "--out",
                 str(tmp_path / "q.png")]) == 2
    assert "predictions not found" in caplog.text


@pytest.mark.parametrize("figure", ["convergence", "runtime", "qualitative", "small-targets", "feature-maps"])
def test_figure_help(figure, capsys):
    with pytest.raises(SystemExit):
        main(["figures", figure, "--help"])
    assert "--out" in capsys.readouterr().out


# ---- Fig. 4: the smallest-target episodes ------------------------------------------------------


def brute_force_smallest(stream: list[tuple[int, int, int]], k: int) -> list[int]:
    """The rule by a full sort: (episode, foreground, valid) -> the k smallest fractions, ties by episode."""
    ranked = sorted((Fraction(fg, valid), episode) for episode, fg, valid in stream if fg > 0 and valid > 0)
    return [episode for _, episode in ranked[:k]]


@pytest.mark.parametrize("k", [0, 1, 3, 7, 50])
def test_running_smallest_targets_equal_a_full_sort(k):
    rng = np.random.default_rng(k)
    episodes = rng.permutation(40)  # any arrival order
    # Few distinct sizes, so ties are common; some empty targets; fractions equal across valid counts (1/4 = 2/8).
    stream = [(int(e), int(rng.integers(0, 4)) * (2 if e % 2 else 1), 8 if e % 2 else 4) for e in episodes]
    selection, made = SmallestTargets(k), []
    for episode, fg, valid in stream:
        selection.offer(episode, fg, valid, lambda episode=episode: made.append(episode) or {"episode": episode})
        assert len(selection) <= k  # memory stays bounded by k records
    assert [r["episode"] for r in selection.selected()] == brute_force_smallest(stream, k)
    assert len(made) <= len(stream)  # records are only made for episodes that enter the selection


def test_smallest_targets_rejects_a_negative_k():
    with pytest.raises(ValueError, match="k must be >= 0"):
        SmallestTargets(-1)


class Background(torch.nn.Module):
    """Stands in for HSNet: predicts background everywhere (the selection never looks at predictions)."""

    def predict_mask_nshot(self, query_img, support_imgs, support_masks, out_size=None):
        return torch.zeros(query_img.shape[0], *query_img.shape[-2:], dtype=torch.long)


def fabricated_batches(sizes: list[int], batch_size: int) -> list[dict]:
    """Episodes whose 16x16 query label has sizes[i] foreground pixels (and 8 ignored pixels on odd episodes)."""
    batches = []
    for start in range(0, len(sizes), batch_size):
        ids = list(range(start, min(start + batch_size, len(sizes))))
        masks = torch.zeros(len(ids), 16, 16)
        ignore = torch.zeros(len(ids), 16, 16)
        for b, episode in enumerate(ids):
            masks[b].view(-1)[:sizes[episode]] = 1
            if episode % 2:
                ignore[b].view(-1)[-8:] = 1
        batches.append({"query_img": torch.zeros(len(ids), 3, 16, 16), "query_mask": masks, "query_ignore_idx": ignore,
                        "support_imgs": torch.zeros(len(ids), 1, 3, 16, 16), "support_masks": torch.zeros(len(ids), 1, 16, 16),
                        "class_id": torch.zeros(len(ids), dtype=torch.long), "episode": torch.tensor(ids),
                        "query_name": [f"q{e}" for e in ids], "support_names": [[f"s{e}" for e in ids]]})
    return batches


def test_evaluation_keeps_the_first_and_the_smallest_target_predictions(tmp_path):
    sizes = [30, 5, 0, 12, 5, 40, 3, 5, 90, 12, 1, 0]
    accumulator = IoUAccumulator([0], 1, keep_episodes=True)
    run = evaluate_episodes(Background(), fabricated_batches(sizes, 5), accumulator, 1, torch.device("cpu"),
                            keep_predictions=2, keep_smallest=4)
    kept = run["predictions"]
    assert [(p["kind"], p["episode"]) for p in kept[:2]] == [("first", 0), ("first", 1)]
    stream = [(e, fg, 256 - 8 * (e % 2)) for e, fg in enumerate(sizes)]
    # 1/256, 3/256, 5/256, then 5/248 twice (episodes 1 and 7: the smaller index wins); ignored pixels count.
    assert [p["episode"] for p in kept[2:]] == brute_force_smallest(stream, 4) == [10, 6, 4, 1]
    assert {p["kind"] for p in kept[2:]} == {"smallest"}
    assert kept[2]["query_fg_pixels"] == 1 and kept[2]["query_valid_pixels"] == 256
    assert kept[5]["query_fg_pixels"] == 5 and kept[5]["query_valid_pixels"] == 248
    path = tmp_path / "pred.npz"
    save_predictions(path, kept)
    with np.load(path) as saved:
        assert list(saved["kind"]) == ["first"] * 2 + ["smallest"] * 4
        assert list(saved["episode"]) == [0, 1, 10, 6, 4, 1]  # episode 1 is kept for both reasons
        assert saved["pred"].shape == (6, 16, 16) and saved["query_fg_pixels"][0] == 30


# ---- Figs. 4, 5 and 6 drawn from files ----------------------------------------------------------

IMG_SIZE, EPISODES = 64, 12


def hmfs_cli(*args: str) -> None:
    result = subprocess.run([sys.executable, "-m", "hmfs", "--log-level", "WARNING", *args], capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]


@pytest.fixture(scope="module")
def coco(tmp_path_factory) -> tuple[Path, Path]:
    """A small prepared synthetic COCO-20i: (data root, splits dir)."""
    root = tmp_path_factory.mktemp("coco")
    hmfs_cli("generate", "--out", str(root / "raw"), "--benchmark", "coco", "--image-size", str(IMG_SIZE),
             "--coco-train", "100", "--coco-val", "100")
    hmfs_cli("prepare", "--benchmark", "coco", "--raw", str(root / "raw"), "--out", str(root / "data"),
             "--splits-out", str(root / "splits"))
    return root / "data", root / "splits"


def episodes_of(coco):
    from hmfs.data import build_dataset

    data, splits = coco
    return build_dataset("coco", data, splits, 0, "val", 1, IMG_SIZE, 0, num_episodes=EPISODES)


def write_predictions(results: Path, variant: str, dataset, smallest: list[int], first: int = 3) -> None:
    """A predictions file as `evaluate` writes it, with the label (fm: dilated by a pixel, hm: as is) as prediction."""
    rows = []
    for kind, episodes in (("first", range(first)), ("smallest", smallest)):
        for episode in episodes:
            item = dataset[episode]
            truth = item["query_mask"].numpy().astype(np.uint8)
            pred = np.maximum(truth, np.roll(truth, 1, axis=1)) if variant == "fm" else truth
            rows.append({"kind": kind, "episode": episode, "class_id": int(item["class_id"]),
                         "query_name": item["query_name"], "support_names": list(item["support_names"]),
                         "query_fg_pixels": int(truth.sum()), "query_valid_pixels": truth.size, "pred": pred})
    path = Path(paths.predictions_path(str(results), Evaluation(Run("coco", "resnet18", variant, "fold0"), 1, "coco")))
    path.parent.mkdir(parents=True, exist_ok=True)
    save_predictions(path, rows)


def figure_args(results: Path, coco, variants: list[str], *extra: str) -> list[str]:
    data, splits = coco
    return ["--results", str(results), "--benchmark", "coco", "--backbone", "resnet18", "--variants", *variants,
            "--data-root", str(data), "--splits-dir", str(splits), "--img-size", str(IMG_SIZE),
            "--evaluation-episodes", str(EPISODES), *extra]


def test_fig4_and_fig5_are_drawn_from_the_prediction_files(coco, tmp_path, caplog):
    dataset = episodes_of(coco)
    stream = [(e, int(dataset[e]["query_mask"].sum()), IMG_SIZE * IMG_SIZE) for e in range(EPISODES)]
    smallest = brute_force_smallest(stream, 4)
    results = tmp_path / "results"
    for variant in ("fm", "hm"):
        write_predictions(results, variant, dataset, smallest)

    fig4 = tmp_path / "fig4.png"
    assert main(["figures", "small-targets", *figure_args(results, coco, ["HSNet=fm", "HMFS=hm"], "--episodes", "3",
                                                          "--out", str(fig4))]) == 0
    numbers = json.loads(fig4.with_suffix(".json").read_text())
    assert list(numbers["episodes"]) == [str(e) for e in smallest[:3]]  # the rule's order: smallest first
    assert "smallest query foreground fraction" in numbers["rule"] and "never from a prediction" in numbers["rule"]
    fractions = [row["query_fg_fraction"] for row in numbers["episodes"].values()]
    assert fractions == sorted(fractions) and fractions[0] > 0
    assert all(row["iou"]["HMFS"] == 100.0 for row in numbers["episodes"].values())
    assert Image.open(fig4).size[0] >= 4 * 2.8 * 100  # four columns of panels at least 2.8 in wide

    fig5 = tmp_path / "fig5.png"
    assert main(["figures", "qualitative", *figure_args(results, coco, ["FM=fm", "HM=hm"], "--episodes", "2",
                                                         "--out", str(fig5))]) == 0
    assert list(json.loads(fig5.with_suffix(".json").read_text())) == ["0", "1"]  # the first episodes, not the smallest

    # An HM file that kept other episodes (another seed, say) is refused, naming both files.
    write_predictions(results, "hm", dataset, smallest[1:] + [smallest[0]])
    assert main(["figures", "small-targets", *figure_args(results, coco, ["HSNet=fm", "HMFS=hm"],
                                                          "--out", str(tmp_path / "bad.png"))]) == 2
    hm_file = paths.predictions_path(str(results), Evaluation(Run("coco", "resnet18", "hm", "fold0"), 1, "coco"))
    assert "keep different smallest-target episodes" in caplog.text and hm_file in caplog.text


def test_fig4_refuses_files_without_smallest_targets(coco, tmp_path, caplog):
    results = tmp_path / "results"
    path = Path(paths.predictions_path(str(results), Evaluation(Run("coco", "resnet18", "fm", "fold0"), 1, "coco")))
    path.parent.mkdir(parents=True)
    np.savez(path, pred=np.zeros((1, 4, 4), np.uint8), episode=np.array([0]), class_id=np.array([0]),
             query_name=np.array(["q"]), support_names=np.array([["s"]]))  # a file from before `kind`
    assert main(["figures", "small-targets", *figure_args(results, coco, ["HSNet=fm"], "--out", str(tmp_path / "x.png"))]) == 2
    assert "--num-smallest-predictions" in caplog.text


# ---- Fig. 6: the paper's ResNet-50 layer names ---------------------------------------------------


def weighted_layers(model: torch.nn.Module) -> list[str]:
    """ResNet's weighted layers in order, counted by hand: every convolution outside the shortcuts, then fc."""
    convs = [name for name, module in model.named_modules()
             if isinstance(module, torch.nn.Conv2d) and "downsample" not in name]
    return convs + ["fc"]


def test_paper_layer_names_on_resnet50_count_its_weighted_layers():
    import torchvision

    layers = weighted_layers(torchvision.models.resnet50(weights=None))
    assert len(layers) == 50 and layers[0] == "conv1"
    assert layers[34 - 1] == "layer3.3.conv3"  # the 34th: the last convolution of layer3's 4th block
    assert layers[50 - 1] == "fc"  # the 50th: the head, whose input map is the last block's output
    layer34, layer50 = named_layer("resnet50", "layer34"), named_layer("resnet50", "layer50")
    assert (layer34.stage, layer34.block_in_stage, layer34.blocks_in_stage, layer34.block) == (3, 4, 6, 11)
    assert (layer50.stage, layer50.block_in_stage, layer50.block) == (4, 3, 16)
    layout = feature_layout("resnet50")
    assert layout.feat_ids[layer34.feature_index] == 11 and layout.feat_ids[layer50.feature_index] == 16
    for n in range(11, 50):  # every convolution maps to the block it is in
        stage, block = layers[n - 1].split(".")[:2]
        named = named_layer("resnet50", f"layer{n}")
        assert (named.stage, named.block_in_stage) == (int(stage[len("layer"):]), int(block) + 1), n


def test_paper_layer_names_on_other_backbones_keep_stage_and_relative_position():
    layer34, layer50 = named_layer("resnet18", "layer34"), named_layer("resnet18", "layer50")
    assert (layer34.stage, layer34.block_in_stage, layer34.block, layer34.feature_index) == (3, 2, 6, 3)
    assert (layer50.stage, layer50.block_in_stage, layer50.block, layer50.feature_index) == (4, 2, 8, 5)
    assert layer34.where == "layer3[1] (block 2/2)"
    assert named_layer("resnet101", "layer34").block_in_stage == 16  # ceil(4 / 6 * 23)
    assert named_layer("resnet101", "layer50").block == 3 + 4 + 23 + 3
    for bad in ("layer10", "layer51", "conv34", "layer"):
        with pytest.raises(ValueError, match="accepted: layer11..layer50"):
            named_layer("resnet50", bad)


def test_fig6_draws_fm_and_im_maps_of_the_weights_file(coco, tmp_path):
    torch.manual_seed(0)
    weights = tmp_path / "resnet18.pt"
    torch.save(build_backbone("resnet18", random_init=True).state_dict(), weights)
    data, splits = coco
    out = tmp_path / "fig6.png"
    assert main(["figures", "feature-maps", "--benchmark", "coco", "--backbone", "resnet18", "--backbone-weights",
                 str(weights), "--data-root", str(data), "--splits-dir", str(splits), "--img-size", str(IMG_SIZE),
                 "--evaluation-episodes", str(EPISODES), "--episode", "1", "--out", str(out)]) == 0
    numbers = json.loads(out.with_suffix(".json").read_text())
    assert list(numbers["layers"]) == ["layer34", "layer50"] and numbers["channel"] == 0
    assert numbers["layers"]["layer34"]["block"] == 6 and numbers["layers"]["layer50"]["block"] == 8

    item = episodes_of(coco)[1]  # the support of episode 1, as the figure read it
    assert numbers["support_name"] == item["support_names"][0]
    image, mask = item["support_imgs"][:1], item["support_masks"][:1].float()
    backbone, layout = build_backbone("resnet18", weights), feature_layout("resnet18")
    for name, stats in numbers["layers"].items():
        index = named_layer("resnet18", name).feature_index
        fm = feature_masking([extract_features(backbone, image, layout)[index]], mask)[0][0, 0]
        im = extract_features(backbone, input_masking(image, mask), layout)[index][0, 0]
        assert stats["min"] == pytest.approx(min(fm.min(), im.min()).item(), abs=1e-5)
        assert stats["max"] == pytest.approx(max(fm.max(), im.max()).item(), abs=1e-5)
    assert Image.open(out).size[0] >= 3 * 2.8 * 100


# ---- workflow wiring ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def synthetic() -> dict:
    return yaml.safe_load((REPO / "workflow" / "config.synthetic.yaml").read_text())


def test_new_figures_are_wired_from_the_config(synthetic):
    paper = yaml.safe_load((REPO / "config.yaml").read_text())
    parser = build_parser(["figures"])
    for config in (synthetic, paper):
        for figure in ("small_targets", "feature_maps"):
            args = parser.parse_args(["figures", *argv.figure_flags(config, figure)])
            assert str(args.out) == paths.figure_paths(config)[figure]
        maps = parser.parse_args(["figures", *argv.figure_flags(config, "feature_maps")])
        assert maps.layers == ["layer34", "layer50"]
        assert str(maps.backbone_weights) == paths.weights_path(config, config["backbones"][0])
    assert rule_inputs.figure_inputs(paper, "small_targets") == [  # HSNet and HMFS of COCO fold 0, first backbone
        paths.predictions_path("results", Evaluation(Run("coco", "resnet50", variant, "fold0"), 1, "coco"))
        for variant in ("fm", "hm")]
    assert rule_inputs.figure_inputs(paper, "feature_maps") == ["resources/weights/resnet50_imagenet.pth"]
    evaluate = build_parser(["evaluate"]).parse_args(
        ["evaluate", *argv.evaluation_flags(paper, Evaluation(Run("coco", "resnet50", "hm", "fold0"), 1, "coco"))])
    assert evaluate.num_smallest_predictions == paper["evaluate"]["predictions_smallest"] > 0


def test_check_grid_names_the_new_figure_keys(synthetic):
    bad = copy.deepcopy(synthetic)
    bad["figures"]["small_targets"]["episodes"] = bad["evaluate"]["predictions_smallest"] + 1
    with pytest.raises(ValueError, match="figures.small_targets.episodes .* evaluate.predictions_smallest"):
        checks.check_grid(bad)
    bad = copy.deepcopy(synthetic)
    bad["figures"]["feature_maps"]["episode"] = bad["evaluate"]["episodes"]["coco"]
    with pytest.raises(ValueError, match="figures.feature_maps.episode"):
        checks.check_grid(bad)
    bad = copy.deepcopy(synthetic)
    bad["figures"]["small_targets"]["variants"] = {"IM*": "im_aug"}
    with pytest.raises(ValueError, match="figures.small_targets draws from runs no table trains"):
        checks.check_grid(bad)
