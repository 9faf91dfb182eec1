"""The figures' shared drawing helpers (hmfs.report.plotting): a colour for every masking, a variant's colour."""

from __future__ import annotations

import pytest

from hmfs import names
from hmfs.report.plotting import COLOURS, colour_of, labelled_variants


def test_every_masking_has_a_colour():
    assert set(COLOURS) == set(names.MASKINGS)
    assert len(set(COLOURS.values())) == len(COLOURS)  # told apart
    for variant in names.VARIANTS:
        assert colour_of(variant) == COLOURS[names.parse_variant(variant)[0]]
    with pytest.raises(ValueError, match="variant 'xm' is not one of"):
        colour_of("xm")


def test_labelled_variants():
    assert labelled_variants(["HSNet=fm", "hm_aug"]) == [("HSNet", "fm"), ("hm_aug", "hm_aug")]
