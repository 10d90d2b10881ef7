"""Many runs and what they add up to: the report's experiments (`experiments`), grids of
settings (`sweep`), where runs execute (`executors`: this process, local processes, Ray), the
results table and its verdicts (`results`, against `original_curves.csv`, the notebooks'
per-epoch curves), and TensorBoard HParams (`hparams`). Never builds layers.
"""
