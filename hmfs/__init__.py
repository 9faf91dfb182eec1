"""hmfs: HSNet with feature, input and hybrid support masking (HMFS), reproducibly."""

__version__ = "0.1.0"
