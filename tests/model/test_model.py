"""Model tests: parity with the reference HSNet/HM outputs, and each part on small tensors."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
import torchvision

from hmfs.engine import learner_optimizer
from hmfs.metrics import IoUAccumulator, classify_prediction
from hmfs.model import HSNet, build_backbone, learner_state_dict, load_hsnet_checkpoint
from hmfs.model.backbone import extract_features, feature_layout
from hmfs.model.conv4d import CenterPivotConv4d
from hmfs.model.correlation import multilayer_correlation
from hmfs.model.masking import feature_masking, hybrid_masking, input_masking, masked_support_features


@pytest.fixture(scope="module", params=["resnet50", "resnet101"])
def reference(request, parity_dir):
    fixture = torch.load(parity_dir / f"hsnet_{request.param}_s0.pt", weights_only=True)
    torch.manual_seed(fixture["backbone_seed"])
    backbone = getattr(torchvision.models, fixture["backbone"])(weights=None)
    sums = fixture["backbone_param_sums"]
    state = backbone.state_dict()
    for name, (total, abs_total) in sums.items():
        assert state[name].double().sum().item() == pytest.approx(total, rel=1e-6, abs=1e-6), name
        assert state[name].double().abs().sum().item() == pytest.approx(abs_total, rel=1e-6, abs=1e-6), name
    return fixture, state


def _model(fixture, backbone_state, masking):
    model = HSNet(fixture["backbone"], masking, backbone_weights=backbone_state)
    load_hsnet_checkpoint(model, fixture["learner_state_dict_fp16"])
    return model.eval()


@pytest.mark.parametrize("masking", ["fm", "hm", "im"])
def test_1shot_logits_and_loss_match_reference(reference, masking):
    fixture, backbone_state = reference
    model = _model(fixture, backbone_state, masking)
    inputs = fixture["inputs"]
    with torch.no_grad():
        logits = model(inputs["query_img"], inputs["support_imgs"][:, 0], inputs["support_masks"][:, 0])
    expected = fixture["logits_1shot"][masking]
    assert logits.shape == expected.shape
    assert (logits - expected).abs().max().item() < 1e-4
    loss = model.compute_objective(logits, inputs["query_mask"]).item()
    assert loss == pytest.approx(fixture["loss_1shot"][masking], abs=1e-5)


@pytest.mark.parametrize("supports_per_pass", [1, 5])
@pytest.mark.parametrize("masking", ["fm", "hm"])
def test_5shot_vote_matches_reference(reference, masking, supports_per_pass):
    fixture, backbone_state = reference
    model = _model(fixture, backbone_state, masking)
    inputs = fixture["inputs"]
    with torch.no_grad():
        vote = model.predict_mask_nshot(inputs["query_img"], inputs["support_imgs"], inputs["support_masks"],
                                        supports_per_pass=supports_per_pass)
    assert torch.equal(vote, fixture["vote_5shot"][masking].long())


def test_feature_and_correlation_shapes_match_reference(reference):
    fixture, backbone_state = reference
    model = _model(fixture, backbone_state, "fm")
    layout = model.layout
    assert list(layout.feat_ids) == list(fixture["feat_ids"])
    assert list(layout.block_layers) == list(fixture["lids"])
    assert list(layout.stack_ids) == [int(s) for s in fixture["stack_ids"]]
    inputs = fixture["inputs"]
    feats = model.extract(inputs["query_img"])
    assert [tuple(f.shape) for f in feats] == [tuple(s) for s in fixture["query_feat_shapes"]]
    corr = model.correlate(feats, model.support_features(inputs["support_imgs"][:, 0], inputs["support_masks"][:, 0]))
    assert [tuple(c.shape) for c in corr] == [tuple(s) for s in fixture["corr_shapes"]]


def test_metric_stream_matches_reference(reference):
    metrics = reference[0]["metrics"]
    accumulator = IoUAccumulator(metrics["class_ids"], metrics["nclass"])
    for episode in metrics["episodes"]:
        inter, union = classify_prediction(episode["pred"][None], episode["gt"][None], episode["ignore"][None])
        accumulator.update(inter, union, torch.tensor([episode["class_id"]]))
    assert accumulator.miou() == pytest.approx(metrics["miou"], abs=1e-4)
    assert accumulator.fb_iou() == pytest.approx(metrics["fb_iou"], abs=1e-4)


@pytest.mark.parametrize("name,count", [("resnet50", 2_573_794), ("resnet101", 2_587_394)])
def test_learner_parameter_count(name, count):
    model = HSNet(name, "fm", random_backbone=True)
    assert sum(p.numel() for p in model.hpn_learner.parameters()) == count
    assert all(not p.requires_grad for p in model.backbone.parameters())


@pytest.mark.parametrize("name,maps", [("resnet18", (2, 2, 2)), ("resnet34", (3, 6, 4)), ("resnet50", (3, 6, 4)), ("resnet101", (3, 23, 4))])
def test_feature_layout(name, maps):
    layout = feature_layout(name)
    assert layout.maps_per_level == maps
    assert len(layout.feat_ids) == sum(maps)


@pytest.mark.parametrize("name,channels", [("resnet18", [128] * 2 + [256] * 2 + [512] * 2), ("resnet34", [128] * 4 + [256] * 6 + [512] * 3)])
def test_basicblock_features_are_pre_relu(name, channels):
    torch.manual_seed(0)
    backbone = build_backbone(name, random_init=True)
    img = torch.randn(2, 3, 64, 64)
    feats = extract_features(backbone, img, feature_layout(name))
    assert [f.shape[1] for f in feats] == channels
    assert [f.shape[-1] for f in feats] == [8] * channels.count(channels[0]) + [4] * channels.count(channels[-3] if name == "resnet18" else 256) + [2] * channels.count(512)
    # The last map equals the network's own layer4 output before its final ReLU.
    with torch.no_grad():
        x = backbone.maxpool(backbone.relu(backbone.bn1(backbone.conv1(img))))
        x = backbone.layer3(backbone.layer2(backbone.layer1(x)))
        x = backbone.layer4(x)
    assert (feats[-1] < 0).any()
    assert torch.allclose(F.relu(feats[-1]), x, atol=1e-5)


def test_cpu_features_are_channels_last_inside_and_channels_first_out():
    torch.manual_seed(0)
    backbone = build_backbone("resnet18", random_init=True)
    img = torch.randn(3, 3, 64, 64)
    feats = extract_features(backbone, img, feature_layout("resnet18"))
    assert backbone.conv1.weight.is_contiguous(memory_format=torch.channels_last)  # the CPU layout
    assert all(f.is_contiguous() for f in feats)  # callers get channels-first maps
    # The same maps computed in float64: the float32 ones differ by rounding only.
    reference = extract_features(backbone.double(), img.double(), feature_layout("resnet18"))
    for feat, ref in zip(feats, reference):
        assert torch.allclose(feat.double(), ref, rtol=1e-4, atol=1e-4)
    # A batch's maps do not depend on which images share it, beyond rounding.
    alone = extract_features(backbone.float(), img[1:2], feature_layout("resnet18"))
    assert all(torch.allclose(f[1:2], a, atol=1e-4) for f, a in zip(feats, alone))


def test_masking_strategies():
    torch.manual_seed(0)
    feats = [torch.randn(2, 4, 5, 5), torch.randn(2, 8, 3, 3)]
    mask = torch.zeros(2, 20, 20)
    mask[:, :10] = 1
    fm = feature_masking(feats, mask)
    assert torch.all(fm[0][:, :, -1] == 0)  # bottom rows lie wholly outside the mask
    assert torch.equal(fm[0][:, :, 0], feats[0][:, :, 0])
    img = torch.randn(2, 3, 20, 20)
    im = input_masking(img, mask)
    assert torch.all(im[:, :, 10:] == 0) and torch.equal(im[:, :, :10], img[:, :, :10])
    other = [torch.randn_like(f) for f in feats]
    hm = hybrid_masking(fm, other)
    for h, f, o in zip(hm, fm, other):
        assert torch.equal(h[f > 0], f[f > 0])
        assert torch.equal(h[f <= 0], o[f <= 0])  # zero and negative FM values are replaced


def test_hybrid_masking_runs_backbone_on_plain_and_masked_support():
    calls = []

    def extract(img):
        calls.append(img.clone())
        return [img[:, :1] - 0.5]  # a "feature" that is negative in places

    img = torch.rand(2, 3, 4, 4)
    mask = torch.zeros(2, 4, 4)
    mask[:, :2] = 1
    out = masked_support_features("hm", extract, img, mask)[0]
    assert len(calls) == 1 and calls[0].shape[0] == 4  # one batched pass: plain + masked
    fm = (img[:, :1] - 0.5) * mask[:, None]
    im = img[:, :1] * mask[:, None] - 0.5
    assert torch.allclose(out, torch.where(fm > 0, fm, im))


def _dense_center_pivot(conv: CenterPivotConv4d, x: torch.Tensor) -> torch.Tensor:
    """Slow reference: both pivot convolutions evaluated position by position."""
    bsz, ch, ha, wa, hb, wb = x.shape
    s = conv.support_stride
    hb_out, wb_out = (hb + s - 1) // s, (wb + s - 1) // s
    out = torch.zeros(bsz, conv.conv1.out_channels, ha, wa, hb_out, wb_out)
    for k in range(hb_out):
        for l in range(wb_out):
            out[..., k, l] += conv.conv1(x[..., k * s, l * s])  # query plane at a kept support position
    for i in range(ha):
        for j in range(wa):
            out[:, :, i, j] += conv.conv2(x[:, :, i, j])  # support plane at each query position
    return out


@pytest.mark.parametrize("kernel,stride", [(3, 1), (3, 2), (5, 4)])
def test_center_pivot_conv4d_equals_slow_reference(kernel, stride):
    torch.manual_seed(0)
    conv = CenterPivotConv4d(3, 4, kernel, stride)
    x = torch.randn(2, 3, 5, 4, 9, 7)
    with torch.no_grad():
        fast, slow = conv(x), _dense_center_pivot(conv, x)
    assert fast.shape == slow.shape == (2, 4, 5, 4, -(-9 // stride), -(-7 // stride))
    assert torch.allclose(fast, slow, atol=1e-5)


# The learner's strided support convs where the kernel overhangs the input (ResNet-18 maps of 96x96
# inputs): torch's CPU bf16 weight gradient of these came out near 1e35 on AVX512-BF16 CPUs.
@pytest.mark.parametrize("shape,in_channels,out_channels,kernel,stride",
                         [((1, 64, 6, 6, 1, 1), 64, 128, 3, 2), ((4, 16, 12, 12, 3, 3), 16, 64, 5, 4)])
def test_center_pivot_conv4d_bf16_gradients_follow_fp32(shape, in_channels, out_channels, kernel, stride):
    torch.manual_seed(0)
    conv = CenterPivotConv4d(in_channels, out_channels, kernel, stride)
    x = torch.randn(shape)
    grad_out = None
    gradients = {}
    for precision in ("fp32", "bf16"):
        conv.zero_grad(set_to_none=True)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16"):
            out = conv(x)  # (B, C_out, Ha, Wa, hb', wb')
        assert out.dtype == (torch.bfloat16 if precision == "bf16" else torch.float32)
        grad_out = torch.randn(out.shape) if grad_out is None else grad_out
        out.float().backward(grad_out)
        gradients[precision] = {name: p.grad.clone() for name, p in conv.named_parameters()}
    for name, reference in gradients["fp32"].items():
        error = (gradients["bf16"][name] - reference).norm() / reference.norm()
        assert error < 0.05, f"{name}: bf16 gradient off by {float(error):.3g} relative to fp32"


def test_correlation_is_clamped_cosine():
    torch.manual_seed(0)
    q = [torch.randn(1, 6, 3, 3) for _ in range(3)]
    s = [torch.randn(1, 6, 2, 2) for _ in range(3)]
    pyramid = multilayer_correlation(q, s, (1, 2, 3))
    assert [tuple(p.shape) for p in pyramid] == [(1, 1, 3, 3, 2, 2)] * 3
    cos = F.cosine_similarity(q[2][0, :, 1, 2], s[2][0, :, 0, 1], dim=0)
    assert pyramid[0][0, 0, 1, 2, 0, 1].item() == pytest.approx(max(cos.item(), 0), abs=1e-4)
    assert (pyramid[1] >= 0).all()


def test_kshot_vote_equals_sequential_vote():
    torch.manual_seed(0)
    model = HSNet("resnet18", "hm", random_backbone=True).eval()
    query = torch.randn(2, 3, 64, 64)
    supports = torch.randn(2, 3, 3, 64, 64)
    masks = (torch.rand(2, 3, 64, 64) > 0.5).float()
    with torch.no_grad():
        votes = sum(model(query, supports[:, k], masks[:, k]).argmax(1) for k in range(3))
        expected = (votes.float() / votes.flatten(1).max(1).values.clamp(min=1)[:, None, None] >= 0.5).long()
        for per_pass in (1, 2, 3):
            assert torch.equal(model.predict_mask_nshot(query, supports, masks, supports_per_pass=per_pass), expected)
        one = model.predict_mask_nshot(query, supports[:, :1], masks[:, :1])
        assert torch.equal(one, model(query, supports[:, 0], masks[:, 0]).argmax(1))


def test_fused_learner_optimizer_matches_per_parameter_adam():
    torch.manual_seed(0)
    models = [HSNet("resnet18", "hm", random_backbone=True).train_mode() for _ in range(2)]
    models[1].load_state_dict(models[0].state_dict())  # same backbone and learner
    initial = [p.detach().clone() for p in models[0].hpn_learner.parameters()]
    optimizers = [learner_optimizer(models[0], 1e-3), torch.optim.Adam(models[1].hpn_learner.parameters(), lr=1e-3)]
    assert optimizers[0].param_groups[0]["fused"] and not optimizers[1].param_groups[0]["fused"]
    query, support, mask = torch.randn(2, 3, 64, 64), torch.randn(2, 3, 64, 64), (torch.rand(2, 64, 64) > 0.5).float()
    for _ in range(4):
        for model, optimizer in zip(models, optimizers):
            loss = model.compute_objective(model(query, support, mask), mask)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    for fused, plain in zip(models[0].hpn_learner.parameters(), models[1].hpn_learner.parameters()):
        assert torch.allclose(fused, plain, rtol=1e-5, atol=1e-6)
    assert not torch.equal(next(models[0].hpn_learner.parameters()), initial[0])  # the steps did move the weights


def test_train_mode_keeps_backbone_frozen():
    torch.manual_seed(0)
    model = HSNet("resnet18", "fm", random_backbone=True).train_mode()
    assert model.training and model.hpn_learner.training and not model.backbone.training
    running = model.backbone.bn1.running_mean.clone()
    logits = model(torch.randn(2, 3, 64, 64), torch.randn(2, 3, 64, 64), torch.ones(2, 64, 64))
    model.compute_objective(logits, torch.ones(2, 64, 64)).backward()
    assert torch.equal(model.backbone.bn1.running_mean, running)
    assert all(p.grad is None for p in model.backbone.parameters())
    assert all(p.grad is not None for p in model.hpn_learner.parameters())


def test_official_checkpoint_layouts_load(tmp_path):
    torch.manual_seed(0)
    source = HSNet("resnet18", "fm", random_backbone=True)
    # What HSNet/HM save from nn.DataParallel: module.backbone.* and module.hpn_learner.* keys.
    official = {f"module.{k}": v for k, v in source.state_dict().items()}
    torch.save(official, tmp_path / "best_model.pt")
    target = HSNet("resnet18", "fm", random_backbone=True)
    load_hsnet_checkpoint(target, tmp_path / "best_model.pt")
    for k, v in source.hpn_learner.state_dict().items():
        assert torch.equal(target.hpn_learner.state_dict()[k], v)
    assert set(learner_state_dict({"learner": source.hpn_learner.state_dict()})) == set(source.hpn_learner.state_dict())
    resnet50 = HSNet("resnet50", "fm", random_backbone=True)
    with pytest.raises(ValueError, match="does not fit the resnet50"):
        load_hsnet_checkpoint(resnet50, official)
    with pytest.raises(FileNotFoundError, match="nope.pt"):
        load_hsnet_checkpoint(target, tmp_path / "nope.pt")


def test_bad_backbone_masking_and_weights_are_clear_errors(tmp_path):
    with pytest.raises(ValueError, match="unknown backbone 'resnet51'.*resnet50"):
        HSNet("resnet51", "fm", random_backbone=True)
    with pytest.raises(ValueError, match="unknown masking 'xm'.*hybrid_masking"):
        HSNet("resnet18", "xm", random_backbone=True)
    with pytest.raises(ValueError, match="needs weights"):
        HSNet("resnet18", "fm")
    with pytest.raises(FileNotFoundError, match="missing.pth"):
        build_backbone("resnet18", tmp_path / "missing.pth")
    torch.save(torchvision.models.resnet34(weights=None).state_dict(), tmp_path / "r34.pth")
    with pytest.raises(ValueError, match="do not fit resnet18"):
        build_backbone("resnet18", tmp_path / "r34.pth")
    # A torchvision-style file (with its fc head) loads.
    torch.manual_seed(1)
    reference = torchvision.models.resnet18(weights=None)
    torch.save(reference.state_dict(), tmp_path / "r18.pth")
    loaded = build_backbone("resnet18", tmp_path / "r18.pth")
    assert torch.equal(loaded.conv1.weight, reference.conv1.weight)
