"""What every command shares: the single abort path and spec loading with friendly errors."""

from __future__ import annotations

from typing import NoReturn

import click

from .._exceptions import SpecError
from ..spec import Spec, load_spec


def abort(message: str, code: int = 1) -> NoReturn:
    click.echo(f"error: {message}", err=True)
    raise SystemExit(code)


def load_or_abort(path: str) -> Spec:
    try:
        return load_spec(path)
    except SpecError as exc:
        for issue in exc.issues:
            click.echo(str(issue), err=True)
        abort(f"{path}: {len(exc.issues)} problem(s); fix them and run 'cxmetrics validate {path}'")
