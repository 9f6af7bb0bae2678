"""Build: the hot modules are compiled with mypyc; their Python sources stay the reference implementation.

Compiled and pure Python give byte-identical results (integer money and ticks, the same float
operations in the same order); compilation only removes interpreter overhead from the order path.
``ABM_PURE_PYTHON=1 pip install -e .`` skips it (no C compiler needed, about 1.4x slower runs).
Everything else about the package lives in pyproject.toml.
"""

import os

from setuptools import setup

# The order path end to end: book, exchange, accounts, margin, scheduler, market data, per-step metrics.
COMPILED = [
    "abm/units.py",
    "abm/market/book.py",
    "abm/market/tape.py",
    "abm/market/view.py",
    "abm/exchange/exchange.py",
    "abm/exchange/settlement.py",
    "abm/exchange/queries.py",
    "abm/exchange/inputs.py",
    "abm/accounts/account.py",
    "abm/accounts/ledgers.py",
    "abm/accounts/market_state.py",
    "abm/margin/engine.py",
    "abm/sim/scheduler.py",
    "abm/sim/feed.py",
    "abm/model/triggers.py",
    "abm/model/metrics.py",
]


def ext_modules() -> list:
    if os.environ.get("ABM_PURE_PYTHON", "") not in ("", "0"):
        return []
    from mypyc.build import mypycify

    # one shared library, abm/_compiled__mypyc*.so, next to the modules it serves
    # --config-file= (empty): the build ignores pyproject's [tool.mypy], which is for `make test`'s type check and
    # names a plugin (pydantic's) that the isolated build environment does not have
    return mypycify(["--config-file=", "--ignore-missing-imports", "--follow-imports=silent", *COMPILED], opt_level="3",
                    separate=[(COMPILED, "abm._compiled")])


setup(ext_modules=ext_modules())
