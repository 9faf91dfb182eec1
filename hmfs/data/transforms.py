"""HSNet's resize + ImageNet normalisation and the PASCAL photometric augmentation (files: hmfs.data.images)."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torchvision.transforms.v2 import functional as TF

from hmfs.data.images import load_image, load_mask  # noqa: F401 (re-exported: the loaders read files with them)

# torchvision's ImageNet statistics, as in HSNet's FSSDataset.initialize.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

AUGMENT_P = 0.2  # probability of each photometric op (CATs' Albumentations recipe, protocol.md §4)


def resize_image(img: Image.Image, size: int) -> torch.Tensor:
    """PIL RGB image -> (3, size, size) uint8 tensor, bilinear, aspect ratio not kept.

    PIL's bilinear resize is what HSNet's `transforms.Resize((S, S))` runs on a PIL image
    (it filters when shrinking), so pixels match the reference.
    """
    resized = img.resize((size, size), Image.BILINEAR)
    return torch.from_numpy(np.asarray(resized, dtype=np.uint8).copy()).permute(2, 0, 1).contiguous()


def normalise_image(img: torch.Tensor) -> torch.Tensor:
    """(3, H, W) uint8 -> float32 in [0, 1] (ToTensor) -> ImageNet mean/std normalised."""
    mean = torch.tensor(IMAGENET_MEAN, dtype=torch.float32).view(3, 1, 1)
    std = torch.tensor(IMAGENET_STD, dtype=torch.float32).view(3, 1, 1)
    return (img.float() / 255.0 - mean) / std


def resize_masks(masks: torch.Tensor, size: int) -> torch.Tensor:
    """(N, H, W) uint8 -> (N, size, size) uint8 with torch's 'nearest' (HSNet's F.interpolate)."""
    return F.interpolate(masks.unsqueeze(0), size=(size, size), mode="nearest").squeeze(0)


# ---------------------------------------------------------------------------------------------
# Photometric augmentation (PASCAL `*` rows)
# ---------------------------------------------------------------------------------------------
# CATs (cited by HMFS) composes, in this order and each with p = 0.2, Albumentations'
#   ToGray, Posterize, Equalize, Sharpen, RandomBrightnessContrast, Solarize, ColorJitter
# with their default arguments (albumentations 1.x). Mapping used here, on uint8 (3, H, W):
#   ToGray()                      -> TF.rgb_to_grayscale(num_output_channels=3) (same 0.299/0.587/0.114 weights)
#   Posterize(num_bits=4)         -> TF.posterize(bits=4) (keep the 4 high bits)
#   Equalize(mode='cv', by_channels=True) -> TF.equalize (per-channel histogram equalisation;
#                                    PIL-style LUT, may differ from cv2.equalizeHist by a grey level)
#   Sharpen(alpha=(0.2, 0.5), lightness=(0.5, 1.0)) -> `_sharpen`: Albumentations' own 3x3 kernel
#                                    (1-a)*identity + a*[[-1,-1,-1],[-1,8+l,-1],[-1,-1,-1]], reflect-101
#                                    borders as cv2.filter2D; TF.adjust_sharpness is PIL's different filter
#   RandomBrightnessContrast(0.2, 0.2, brightness_by_max=True) -> `_brightness_contrast`:
#                                    x * U(0.8, 1.2) + 255 * U(-0.2, 0.2), clipped, truncated to uint8
#   Solarize(threshold=128)       -> TF.solarize(threshold=128) (invert pixels >= 128)
#   ColorJitter(0.2, 0.2, 0.2, 0.2) -> TF.adjust_{brightness,contrast,saturation} with factors
#                                    U(0.8, 1.2) and TF.adjust_hue with U(-0.2, 0.2), in a random order
# Every coin flip and parameter comes from the episode's numpy Generator, never from global state.
# The ops run on the resized image (HSNet resizes first anyway; they are all per-pixel or 3x3).

def _sharpen(img: torch.Tensor, alpha: float, lightness: float) -> torch.Tensor:
    """(3, H, W) uint8 -> uint8: Albumentations' Sharpen kernel, cv2-style rounding and saturation."""
    identity = torch.zeros(3, 3)
    identity[1, 1] = 1.0
    effect = -torch.ones(3, 3)
    effect[1, 1] = 8.0 + lightness
    kernel = ((1.0 - alpha) * identity + alpha * effect).view(1, 1, 3, 3).repeat(3, 1, 1, 1)
    padded = F.pad(img.float().unsqueeze(0), (1, 1, 1, 1), mode="reflect")  # reflect-101
    out = F.conv2d(padded, kernel, groups=3).squeeze(0)
    return out.round().clamp(0, 255).to(torch.uint8)


def _brightness_contrast(img: torch.Tensor, alpha: float, beta: float) -> torch.Tensor:
    """(3, H, W) uint8 -> uint8: x * alpha + beta * 255, clipped and truncated (Albumentations' LUT)."""
    out = img.float() * alpha + beta * 255.0
    return out.clamp(0, 255).floor().to(torch.uint8)


# CATs' ops in the order they are tried; a subset may be chosen (`ops`), the rest are skipped.
AUGMENT_OPS = ("grayscale", "posterize", "equalize", "sharpen", "brightness_contrast", "solarize", "color_jitter")


def check_augment_ops(ops) -> tuple[str, ...]:
    """`ops` as a tuple, each one of AUGMENT_OPS (an error names the unknown one and the accepted)."""
    ops = tuple(ops)
    unknown = [op for op in ops if op not in AUGMENT_OPS]
    if unknown:
        raise ValueError(f"unknown augmentation op(s) {', '.join(map(repr, unknown))}; accepted: {', '.join(AUGMENT_OPS)}")
    return ops


def photometric_augment(img: torch.Tensor, rng: np.random.Generator, p: float = AUGMENT_P,
                        ops: tuple[str, ...] = AUGMENT_OPS) -> torch.Tensor:
    """(3, H, W) uint8 -> (3, H, W) uint8 with CATs' seven photometric ops, each applied with prob. p.

    Deterministic given the state of `rng`; consumes a fixed number of draws per op decision. `ops`:
    the ops that may apply (default all seven, the recipe); a left-out op still draws its coin flip,
    so the others see the same decisions as with the whole recipe.
    """
    if rng.random() < p and "grayscale" in ops:
        img = TF.rgb_to_grayscale(img, num_output_channels=3)
    if rng.random() < p and "posterize" in ops:
        img = TF.posterize(img, bits=4)
    if rng.random() < p and "equalize" in ops:
        img = TF.equalize(img)
    if rng.random() < p and "sharpen" in ops:
        img = _sharpen(img, alpha=float(rng.uniform(0.2, 0.5)), lightness=float(rng.uniform(0.5, 1.0)))
    if rng.random() < p and "brightness_contrast" in ops:
        img = _brightness_contrast(img, alpha=float(1.0 + rng.uniform(-0.2, 0.2)), beta=float(rng.uniform(-0.2, 0.2)))
    if rng.random() < p and "solarize" in ops:
        img = TF.solarize(img, threshold=128)
    if rng.random() < p and "color_jitter" in ops:
        factors = rng.uniform(0.8, 1.2, size=3)
        hue = float(rng.uniform(-0.2, 0.2))
        for op in rng.permutation(4):
            if op == 0:
                img = TF.adjust_brightness(img, float(factors[0]))
            elif op == 1:
                img = TF.adjust_contrast(img, float(factors[1]))
            elif op == 2:
                img = TF.adjust_saturation(img, float(factors[2]))
            else:
                img = TF.adjust_hue(img, hue)
    return img
