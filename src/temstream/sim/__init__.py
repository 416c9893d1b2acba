"""Liquid-cell TEM movie simulator with ground truth (pure numpy/scipy)."""
