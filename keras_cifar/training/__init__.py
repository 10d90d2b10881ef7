"""Training one run: `config.RunConfig` (what to train, how, on which data), `train.train_run`
(compile, fit with Keras callbacks, finish), the run directory (`rundir`: names, statuses,
readers and the checks that guard resuming), `checkpoints` (atomic per-epoch backups for
resume), `callbacks`, `metrics`, `notebook_loss` and `evaluation`. Never plots, never parses
CLI options.
"""
