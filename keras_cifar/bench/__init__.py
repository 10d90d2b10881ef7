"""What the benchmark scripts under `scripts/` measure with: the cost model (FLOPs per network,
projected wall time) and the timed measurements themselves. The scripts are thin mains over it.
"""
