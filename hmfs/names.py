"""The one list of each name the layers share (benchmarks, backbones, maskings, variants, folds, tables), torch-free.

The model, the data loaders, the config schema (workflow/schemas/config.schema.yaml), the workflow's
wildcard constraints (workflow/common.smk, built by `wildcard_constraints` below) and the report all
take their names from here; tests/test_names.py fails when the schema disagrees.
"""

from __future__ import annotations

BENCHMARKS = ("pascal", "coco", "fss")  # PASCAL-5i, COCO-20i, FSS-1000
FOLDED = ("pascal", "coco")  # FSS-1000 has one class split (trn/val/test), no folds
NUM_FOLDS = 4  # fold0..fold3 of PASCAL-5i and COCO-20i
NO_FOLD = "all"  # the fold folder of FSS-1000 runs
# Blocks per stage (layer1..layer4) of each supported torchvision ResNet; resnet50/101: the paper's, 18/34: the stand-in's.
BACKBONE_BLOCKS = {"resnet18": (2, 2, 2, 2), "resnet34": (3, 4, 6, 3), "resnet50": (3, 4, 6, 3), "resnet101": (3, 4, 23, 3)}
BACKBONES = tuple(BACKBONE_BLOCKS)
# Which backbone maps each masking needs per support: (the plain image's, the input-masked image's).
# The model's masking registry (hmfs/model/masking.py) and the FLOP model (hmfs/pipeline/flops.py) read it.
SUPPORT_MAPS = {"fm": (True, False), "im": (False, True), "hm": (True, True)}
MASKINGS = tuple(SUPPORT_MAPS)  # feature masking (HSNet), input masking, hybrid masking (HMFS)
AUGMENT_SUFFIX = "_aug"  # a variant trained with the photometric augmentation: "hm_aug"
TABLES = ("table1", "table2", "table3", "table4", "table5")
ORIGINS = ("trained", "released")  # a run's checkpoint: trained by the workflow, or released by the authors

# Arithmetic precision of the model's forward (hmfs.engine.autocast): fp32, or autocast to bf16 / fp16.
PRECISIONS = ("fp32", "bf16", "fp16")


def variant_name(masking: str, augment: bool) -> str:
    """The folder of a training variant: the masking, with `_aug` when trained with augmentation."""
    return f"{masking}{AUGMENT_SUFFIX}" if augment else masking


def parse_variant(variant: str) -> tuple[str, bool]:
    """Inverse of `variant_name`: "hm_aug" -> ("hm", True); the one parser of a variant string."""
    masking, augment = (variant[: -len(AUGMENT_SUFFIX)], True) if variant.endswith(AUGMENT_SUFFIX) else (variant, False)
    if masking not in MASKINGS:
        raise ValueError(f"variant {variant!r} is not one of {', '.join(VARIANTS)}")
    return masking, augment


VARIANTS = tuple(variant_name(m, a) for a in (False, True) for m in MASKINGS)


def fold_names() -> tuple[str, ...]:
    """Every fold folder: fold0..fold3, and FSS-1000's `all`."""
    return (*(f"fold{k}" for k in range(NUM_FOLDS)), NO_FOLD)


def fold_name(benchmark: str, fold: int | None) -> str:
    return NO_FOLD if benchmark not in FOLDED else f"fold{fold}"


def fold_index(name: str) -> int:
    """`fold2` -> 2; FSS-1000's `all` -> 0 (the loaders ignore the fold there)."""
    return 0 if name == NO_FOLD else int(name[len("fold"):])


def _alternatives(names: tuple[str, ...]) -> str:
    return "|".join(names)


def wildcard_constraints() -> dict[str, str]:
    """The Snakemake wildcard constraints of every name above (workflow/common.smk)."""
    benchmark, backbone = _alternatives(BENCHMARKS), _alternatives(BACKBONES)
    variant = f"({_alternatives(MASKINGS)})({AUGMENT_SUFFIX})?"
    fold = f"fold[0-{NUM_FOLDS - 1}]|{NO_FOLD}"
    trained = f"({benchmark})/({backbone})/{variant}/({fold})"
    return {
        "benchmark": benchmark,
        "test_benchmark": benchmark,
        "backbone": backbone,
        "variant": variant,
        # a trained run's folder ends in its training seed; a released checkpoint's does not (hmfs.pipeline.grid.Run.key)
        "run": f"{trained}/seed[0-9]+|released/{trained}",
        "fold": fold,
        "seed": "[0-9]+",
        "shot": "[0-9]+",
        "table": _alternatives(TABLES),
    }
