"""Progress bars for `claims train`, drawn with rich on stderr."""

from __future__ import annotations

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from claims.training import loop


class RichProgress(loop.Progress):
    def __init__(self) -> None:
        self.bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                            TextColumn("{task.fields[info]}"), TimeElapsedColumn(),
                            console=Console(stderr=True), transient=False)
        self.fits = None
        self.epochs = None

    def __enter__(self) -> "RichProgress":
        self.bar.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        self.bar.__exit__(*exc)

    def start(self, name: str, total_fits: int, epochs: int | None) -> None:
        for task in (self.fits, self.epochs):
            if task is not None:
                self.bar.remove_task(task)
        self.name = name
        self.fits = self.bar.add_task(f"{name}: model fits", total=total_fits, info="")
        self.epochs = self.bar.add_task("  epochs", total=epochs, info="") if epochs else None

    def step(self, what: str) -> None:
        # The bar counts every fit of the run (folds x seeds, inner threshold folds, the final fit);
        # its label names the evaluation those fits belong to now.
        self.bar.update(self.fits, description=f"{self.name}: {what}")

    def epoch(self, n: int, loss: float) -> None:
        if self.epochs is not None:
            self.bar.update(self.epochs, completed=n, info=f"loss {loss:.4f}")

    def fit_done(self) -> None:
        self.bar.advance(self.fits)
        if self.epochs is not None:
            self.bar.reset(self.epochs)
