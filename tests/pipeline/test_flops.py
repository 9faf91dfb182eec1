"""The analytic FLOP model (hmfs.pipeline.flops) against torch's FlopCounterMode, the paper-scale numbers, and the model's own lists."""

from __future__ import annotations

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from hmfs.model import HSNet
from hmfs.model.backbone import _BLOCKS, feature_layout
from hmfs.model.masking import MASKING_REGISTRY
from hmfs.names import BACKBONES, MASKINGS
from hmfs.pipeline.flops import RESNET_BLOCKS, SUPPORT_MAPS, backbone_pass, episode_flops, support_passes

# The model counts what FlopCounterMode counts (convolutions, matrix products), so small inputs agree
# exactly; the tolerance only absorbs a counter that starts to count something else as well.
TOLERANCE = 0.01
SIZE = 64


def counted(fn) -> int:
    with FlopCounterMode(display=False) as counter:
        fn()
    return counter.get_total_flops()


@pytest.fixture(scope="module")
def models():
    torch.manual_seed(0)
    return {m: HSNet("resnet18", m, random_backbone=True).eval() for m in MASKINGS}


def episode(shot: int):
    generator = torch.Generator().manual_seed(0)
    query = torch.randn(1, 3, SIZE, SIZE, generator=generator)
    supports = torch.randn(1, shot, 3, SIZE, SIZE, generator=generator)
    masks = (torch.rand(1, shot, SIZE, SIZE, generator=generator) > 0.5).float()
    return query, supports, masks


def test_the_lists_agree_with_the_model():
    assert RESNET_BLOCKS == _BLOCKS and set(RESNET_BLOCKS) == set(BACKBONES)
    assert SUPPORT_MAPS == {name: (m.plain, m.masked_input) for name, m in MASKING_REGISTRY.items()}
    for backbone in BACKBONES:
        assert len(backbone_pass(backbone, SIZE)[1]) == feature_layout(backbone).stack_ids[-1]


@pytest.mark.parametrize("masking", MASKINGS)
@pytest.mark.parametrize("shot", [1, 2])
def test_evaluation_forward_matches_flop_counter(models, masking, shot):
    query, supports, masks = episode(shot)
    with torch.no_grad():
        measured = counted(lambda: models[masking].predict_mask_nshot(query, supports, masks))
    expected = episode_flops("resnet18", masking, SIZE).evaluation(shot)
    assert expected == pytest.approx(measured, rel=TOLERANCE)


@pytest.mark.parametrize("masking", ["fm", "hm"])
def test_training_step_matches_flop_counter(models, masking):
    model = models[masking].train_mode()
    query, supports, masks = episode(1)

    def step():
        logits = model(query, supports[:, 0], masks[:, 0])
        model.compute_objective(logits, masks[:, 0]).backward()

    try:
        measured = counted(step)
    finally:
        model.zero_grad(set_to_none=True)
        model.eval()
    flops = episode_flops("resnet18", masking, SIZE)
    assert flops.training_forward + flops.training_backward == pytest.approx(measured, rel=TOLERANCE)
    assert flops.training_backward < 2 * flops.learner.forward  # no gradient into the correlation


def test_resnet50_at_400_matches_the_paper_scale():
    """ResNet-50, 400 x 400, 1-shot forward: about 119 GFLOP with FM, 145.5 with HM (within 3 %)."""
    assert episode_flops("resnet50", "fm", 400).evaluation(1) == pytest.approx(119e9, rel=0.03)
    assert episode_flops("resnet50", "hm", 400).evaluation(1) == pytest.approx(145.5e9, rel=0.03)
    assert episode_flops("resnet50", "im", 400).evaluation(1) == episode_flops("resnet50", "fm", 400).evaluation(1)


@pytest.mark.parametrize("masking", ["fm", "hm"])
def test_resnet50_at_400_matches_flop_counter_on_meta_tensors(masking):
    """The full-size forward, counted on shapes only (meta tensors: no arithmetic is done)."""
    model = HSNet("resnet50", masking, random_backbone=True).eval().to("meta")
    image = torch.empty(1, 3, 400, 400, device="meta")
    with torch.no_grad():
        measured = counted(lambda: model(image, image, torch.empty(1, 400, 400, device="meta")))
    assert episode_flops("resnet50", masking, 400).evaluation(1) == pytest.approx(measured, rel=TOLERANCE)


def test_hybrid_masking_adds_one_backbone_pass_per_support():
    fm, hm = episode_flops("resnet50", "fm", 400), episode_flops("resnet50", "hm", 400)
    assert [support_passes(m) for m in MASKINGS] == [1, 1, 2]
    assert hm.evaluation(5) - fm.evaluation(5) == 5 * fm.backbone_pass


def test_unknown_names_are_refused():
    with pytest.raises(ValueError, match="resnet7"):
        backbone_pass("resnet7", SIZE)
    with pytest.raises(ValueError, match="xm"):
        support_passes("xm")
