"""The ``abm`` command. Errors of ours print one line and exit non-zero; anything else is a bug and shows a traceback."""

from __future__ import annotations

import sys

import click

from abm.errors import AbmError


class _Group(click.Group):
    def invoke(self, ctx: click.Context):  # type: ignore[no-untyped-def]
        try:
            return super().invoke(ctx)
        except AbmError as e:
            click.echo(f"abm: error: {e}", err=True)
            sys.exit(2)


@click.group(cls=_Group)
@click.version_option(package_name="abm")
def main() -> None:
    """Agent-based simulator of perpetual-futures market stress."""


@main.command()
@click.option("--seed", type=int, default=7, show_default=True, help="Seed of the demo's random draws.")
def demo(seed: int) -> None:
    """Walk through the exchange core: a whale market-sells into a book quoted by market makers."""
    from abm.demo import run_demo

    run_demo(seed=seed, out=click.echo)


if __name__ == "__main__":
    main()
