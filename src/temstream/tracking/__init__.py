"""Instances from segmentations, the online linker and trajectory analysis (numpy/scipy/numba)."""
