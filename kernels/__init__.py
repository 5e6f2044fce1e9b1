"""Numba-jitted pure kernels over NumPy arrays (field, scalar, point, SHA-512, MSM, BlockGraph)."""
