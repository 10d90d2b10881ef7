"""Figures drawn from saved files, so they can be redrawn without training: a run's curves,
first-layer kernels and confusion matrix, and comparisons of runs and of seed means against the
original notebooks. matplotlib only, with no global backend set.
"""
