"""The workflow's layer, torch-free: the grid of runs, every path, each command's flags, the pre-flight checks."""
