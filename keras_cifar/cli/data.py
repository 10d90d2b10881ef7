"""`keras-cifar data`: inspect and prepare CIFAR-10 sources."""

from __future__ import annotations

import click

from keras_cifar.cli.core import Group
from keras_cifar.cli.options import data_options, load_data


@click.group(cls=Group)
def data():
    """Inspect and prepare CIFAR-10 sources.

    \b
    Example:
      keras-cifar data info --data-dir ~/data/cifar10
    """


@data.command("info")
@data_options
def data_info(data):
    """Show a source: format, counts per split and class, the cache.

    \b
    Examples:
      keras-cifar data info --data-dir ../shared/data/cifar10-jpeg.tar.gz
      keras-cifar data info --data synthetic
    """
    import numpy as np

    from keras_cifar.data import cache_dir, cache_entries

    d = load_data(data)
    click.echo(f"source:      {d.source}" + ("" if d.is_cifar10 else "  (synthetic: NOT CIFAR-10)"))
    click.echo(f"format:      {d.format}")
    click.echo(f"location:    {d.location}")
    click.echo(f"fingerprint: {d.fingerprint}")
    click.echo(f"{'class':<12}{'train':>8}{'test':>8}")
    train_counts = np.bincount(d.train_labels, minlength=10)
    test_counts = np.bincount(d.test_labels, minlength=10)
    for name, a, b in zip(d.class_names, train_counts, test_counts):
        click.echo(f"{name:<12}{a:>8,}{b:>8,}")
    click.echo(f"{'total':<12}{len(d.train_labels):>8,}{len(d.test_labels):>8,}")
    entries = cache_entries()
    size = sum(p.stat().st_size for p in entries)
    click.echo(f"cache:       {cache_dir()} ({len(entries)} entries, {size / 2**20:.1f} MiB)")


@data.command("prepare")
@data_options
def data_prepare(data):
    """Load (download or decode) a source once and cache it, ahead of training.

    \b
    Example:
      keras-cifar data prepare --data-dir ~/data/cifar10
    """
    d = load_data(data)
    click.echo(f"Ready: {d.format} from {d.location}, {len(d.train_labels):,} train and "
               f"{len(d.test_labels):,} test images (fingerprint {d.fingerprint}).")
