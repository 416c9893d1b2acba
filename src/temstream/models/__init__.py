"""Segmenters: the classical baseline and the U-Nets, with their inference backends.

Only this subpackage imports torch, and only when a U-Net is used.
"""
