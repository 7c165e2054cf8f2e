"""Early stopping, owned by the runner so that every backend stops by the same rule.

The rule is Keras' ``EarlyStopping(monitor="val_loss", patience, min_delta, restore_best_weights)``:
an epoch improves when its validation loss (computed by the core from the backend's predictions)
is below the best so far minus ``min_delta``; training stops after ``patience`` epochs in a row
without improvement. ``patience = 0`` turns it off.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class EarlyStopping:
    """Watches the validation loss epoch by epoch; `update` says whether the epoch improved."""

    patience: int  # epochs without improvement before stopping; 0: never stop early
    min_delta: float = 0.0  # an improvement must beat the best loss by more than this
    best_loss: float = float("inf")
    best_epoch: int | None = None  # 1-based
    waited: int = 0

    @property
    def active(self) -> bool:
        """Whether early stopping is on."""
        return self.patience > 0

    def update(self, epoch: int, val_loss: float) -> bool:
        """Record `epoch`'s validation loss; True when it is the new best."""
        if val_loss < self.best_loss - self.min_delta:
            self.best_loss, self.best_epoch, self.waited = val_loss, epoch, 0
            return True
        self.waited += 1
        return False

    @property
    def should_stop(self) -> bool:
        """True once `patience` epochs in a row did not improve."""
        return self.active and self.waited >= self.patience
