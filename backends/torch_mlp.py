"""The PyTorch backend: `nn.Sequential` of `nn.Linear` layers trained with `torch.optim`.

Mapping of the spec: the runner's ``W`` (fan_in, fan_out) is copied into
``nn.Linear.weight`` as ``W.T`` (PyTorch stores (out, in)); L2 is the optimizer's
``weight_decay`` on the weight matrices only (a separate parameter group with
weight_decay 0 holds the biases), which adds ``l2 * W`` to the gradient exactly as
the spec says; losses are the framework's mean-reduced CrossEntropyLoss (logits),
BCEWithLogitsLoss (one logit), MSELoss and L1Loss. PyTorch is the reference for the
spec's optimizer rules, so in float64 this backend matches the NumPy one to rounding.
RMSprop is ``torch.optim.RMSprop(alpha=spec.alpha, eps=spec.eps)``. Batch normalization is
``nn.BatchNorm1d(width, eps=spec.bn_eps, momentum=spec.bn_momentum)`` before or after each
hidden activation (dropout after it); PyTorch's momentum convention and unbiased running
variance are the spec's, and gamma and beta sit in the parameter group without weight decay.

Native mode (`fit_native`) is PyTorch's tutorial loop: ``torch.manual_seed(seed)``, the
layers' default initialisation (nn.Linear's kaiming-uniform), a ``DataLoader`` over a
``TensorDataset`` with ``shuffle=True`` and a generator seeded with the seed, and
``zero_grad / backward / step`` per batch; the runner's early stopping through `epoch_end`.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from mlpbench import Backend, ModelSpec
from mlpbench.backend import EpochEnd
from mlpbench.controlled import initial_weights
from mlpbench.spec import ELU_ALPHA, LEAKY_RELU_SLOPE

# Small cache of converted input arrays: the worker passes the same X every epoch.
_CACHE_SIZE = 4


class TorchMLP(Backend):
    """A multilayer perceptron in PyTorch (CPU, or CUDA / MPS where available)."""

    name = "torch"
    requires = ("torch",)
    devices = ("cpu", "cuda", "mps")
    # device: where the model runs; compile: wrap the model with torch.compile (inductor).
    options = {"device": "cpu", "compile": False}
    optimizers = ("sgd", "momentum", "nesterov", "adam", "rmsprop")
    supports_batch_norm = True
    # Every rule is PyTorch's own, which the spec follows.
    parity_target = 1e-9
    native_loop = (
        "TensorDataset + DataLoader(shuffle=True, batch_size, generator seeded with the seed); "
        "zero_grad / backward / step per batch; torch.manual_seed(seed) and nn.Linear's default "
        "initialisation"
    )

    def skip(self, spec: ModelSpec) -> str | None:
        reason = super().skip(spec)
        if reason:
            return reason
        device = self.config["device"]
        # The runner asks in the parent process, where torch is not imported (and must not be):
        # an unavailable accelerator is then reported by the worker, which asks again after `prepare`.
        torch = getattr(self, "torch_", None)
        if device != "cpu" and torch is not None:
            available = torch.cuda.is_available() if device == "cuda" else torch.backends.mps.is_available()
            if not available:
                return f"torch reports device {device!r} as unavailable on this machine"
        return None

    def prepare(self, threads: int) -> None:
        super().prepare(threads)
        import torch

        # torch.optim imports torch._dynamo at its first optimizer (about 2 s): import it here, with the
        # framework, so that it is not counted as the first job's build time.
        import torch._dynamo  # noqa: F401

        self.torch_ = torch
        torch.set_num_threads(threads)
        try:
            torch.set_num_interop_threads(1)  # small models gain nothing from inter-op parallelism
        except RuntimeError:  # already set, or parallel work already started in this process
            pass

    def _import(self) -> Any:
        if getattr(self, "torch_", None) is None:  # used directly, without a worker calling prepare
            import torch

            self.torch_ = torch
        return self.torch_

    # ------------------------------------------------------------------ build
    def build(self, spec: ModelSpec, weights: list[tuple[np.ndarray, np.ndarray]] | None, seed: int) -> None:
        self._build(spec, initial_weights(spec, seed) if weights is None else weights, seed)

    def _build(self, spec: ModelSpec, weights: list[tuple[np.ndarray, np.ndarray]] | None, seed: int) -> None:
        """The model, loss and optimizer; `weights` None keeps nn.Linear's own initialisation (native mode)."""
        torch = self._import()
        nn = torch.nn
        self.spec_ = spec
        self.np_dtype_ = np.dtype(spec.dtype)
        self.dtype_ = getattr(torch, spec.dtype)
        self.device_ = torch.device(self.config["device"])
        torch.manual_seed(seed)  # dropout masks; in native mode also nn.Linear's initialisation
        activation = {
            "sigmoid": nn.Sigmoid,
            "tanh": nn.Tanh,
            "relu": nn.ReLU,
            "leaky_relu": lambda: nn.LeakyReLU(LEAKY_RELU_SLOPE),
            "elu": lambda: nn.ELU(ELU_ALPHA),
        }[spec.activation]
        layers: list[Any] = []
        self.linears_ = []
        self.norms_ = []  # the BatchNorm1d layers, input side first
        sizes = spec.layer_sizes
        for i, (fan_in, fan_out) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
            linear = nn.Linear(fan_in, fan_out, dtype=self.dtype_)
            self.linears_.append(linear)
            layers.append(linear)
            if i < len(sizes) - 2:
                # Linear -> [BN "before"] -> activation -> [BN "after"] -> dropout, as the spec says.
                if spec.batch_norm != "none":
                    norm = nn.BatchNorm1d(fan_out, eps=spec.bn_eps, momentum=spec.bn_momentum, dtype=self.dtype_)
                    self.norms_.append(norm)
                layers += [norm, activation()] if spec.batch_norm == "before" else [activation()]
                if spec.batch_norm == "after":
                    layers.append(norm)
                if spec.dropout:
                    layers.append(nn.Dropout(spec.dropout))
        model = nn.Sequential(*layers)
        if weights is not None:
            with torch.no_grad():
                for linear, (W, b) in zip(self.linears_, weights, strict=True):
                    linear.weight.copy_(torch.from_numpy(np.asarray(W, dtype=self.np_dtype_).T))
                    linear.bias.copy_(torch.from_numpy(np.asarray(b, dtype=self.np_dtype_).reshape(-1)))
        self.model_ = model.to(self.device_)
        self.forward_ = torch.compile(self.model_) if self.config["compile"] else self.model_

        groups = [
            {"params": [lin.weight for lin in self.linears_], "weight_decay": spec.l2},
            {
                "params": [lin.bias for lin in self.linears_] + [p for bn in self.norms_ for p in (bn.weight, bn.bias)],
                "weight_decay": 0.0,
            },
        ]
        if spec.optimizer == "adam":
            self.optimizer_ = torch.optim.Adam(groups, lr=spec.lr, betas=(spec.beta1, spec.beta2), eps=spec.eps)
        elif spec.optimizer == "rmsprop":
            self.optimizer_ = torch.optim.RMSprop(groups, lr=spec.lr, alpha=spec.alpha, eps=spec.eps)
        else:
            momentum = 0.0 if spec.optimizer == "sgd" else spec.momentum
            self.optimizer_ = torch.optim.SGD(
                groups, lr=spec.lr, momentum=momentum, nesterov=spec.optimizer == "nesterov"
            )
        self.loss_fn_ = {
            "cross_entropy": nn.CrossEntropyLoss,
            "binary_cross_entropy": nn.BCEWithLogitsLoss,
            "mse": nn.MSELoss,
            "mae": nn.L1Loss,
        }[spec.loss]()
        self._inputs: dict[int, tuple[np.ndarray, Any]] = {}
        self._targets: tuple[np.ndarray, Any] | None = None

    # --------------------------------------------------------------- tensors
    def _x(self, X: np.ndarray) -> Any:
        """X as a tensor on the device, converted once per distinct array."""
        hit = self._inputs.get(id(X))
        if hit is not None and hit[0] is X:
            return hit[1]
        t = self.torch_.from_numpy(np.ascontiguousarray(X, dtype=self.np_dtype_)).to(self.device_)
        if len(self._inputs) >= _CACHE_SIZE:
            self._inputs.pop(next(iter(self._inputs)))
        self._inputs[id(X)] = (X, t)  # the array is kept, so its id cannot be reused while cached
        return t

    def _y(self, y: np.ndarray) -> Any:
        if self._targets is not None and self._targets[0] is y:
            return self._targets[1]
        torch = self.torch_
        if self.spec_.loss == "cross_entropy":
            t = torch.as_tensor(np.asarray(y, dtype=np.int64))
        elif self.spec_.loss == "binary_cross_entropy":
            t = torch.as_tensor(np.asarray(y, dtype=self.np_dtype_).reshape(-1, 1))
        else:
            t = torch.as_tensor(np.asarray(y, dtype=self.np_dtype_).reshape(len(y), -1))
        t = t.to(self.device_)
        self._targets = (y, t)
        return t

    # -------------------------------------------------------------- training
    def train_epoch(self, X: np.ndarray, y: np.ndarray, batches: list[np.ndarray]) -> float:
        torch = self.torch_
        Xt, yt = self._x(X), self._y(y)
        self.model_.train()
        total = torch.zeros((), dtype=torch.float64, device=self.device_)
        count = 0
        for idx in batches:
            it = torch.from_numpy(np.asarray(idx, dtype=np.int64)).to(self.device_)
            self.optimizer_.zero_grad(set_to_none=True)
            loss = self.loss_fn_(self.forward_(Xt[it]), yt[it])
            loss.backward()
            self.optimizer_.step()
            # Accumulated on the device: one synchronisation per epoch, not one per batch.
            total += loss.detach().to(torch.float64) * len(idx)
            count += len(idx)
        return float(total) / max(count, 1)

    def fit_native(
        self,
        spec: ModelSpec,
        seed: int,
        X: np.ndarray,
        y: np.ndarray,
        X_val: np.ndarray,
        y_val: np.ndarray,
        epoch_end: EpochEnd,
    ) -> None:
        """PyTorch's own loop: a shuffling DataLoader over a TensorDataset, zero_grad / backward / step per batch."""
        torch = self._import()
        from torch.utils.data import DataLoader, TensorDataset

        self._build(spec, None, seed)  # torch.manual_seed(seed), then nn.Linear's default initialisation
        loader = DataLoader(
            TensorDataset(self._x(X), self._y(y)),
            batch_size=spec.batch_size,
            shuffle=True,
            generator=torch.Generator().manual_seed(seed),
        )
        model, optimizer, loss_fn = self.forward_, self.optimizer_, self.loss_fn_
        for epoch in range(spec.epochs):
            self.sync()
            t0 = time.perf_counter()
            self.model_.train()
            total = torch.zeros((), dtype=torch.float64, device=self.device_)
            count = 0
            for xb, yb in loader:
                optimizer.zero_grad()
                loss = loss_fn(model(xb), yb)
                loss.backward()
                optimizer.step()
                total += loss.detach().to(torch.float64) * len(xb)
                count += len(xb)
            running = float(total) / max(count, 1)
            self.sync()
            if epoch_end(epoch + 1, time.perf_counter() - t0, running):  # the runner's early stopping
                break

    def sync(self) -> None:
        device = getattr(self, "device_", None)
        if device is None or device.type == "cpu":
            return
        if device.type == "cuda":
            self.torch_.cuda.synchronize()
        elif device.type == "mps":
            self.torch_.mps.synchronize()

    # ------------------------------------------------------------- inference
    def predict(self, X: np.ndarray) -> np.ndarray:
        torch = self.torch_
        self.model_.eval()
        with torch.no_grad():
            out = self.forward_(self._x(X))
            if self.spec_.loss == "cross_entropy":
                out = torch.softmax(out, dim=1)
            elif self.spec_.loss == "binary_cross_entropy":
                p = torch.sigmoid(out)
                out = torch.cat([1.0 - p, p], dim=1)
            return out.cpu().numpy().astype(self.np_dtype_, copy=False)

    def get_weights(self) -> list[tuple[np.ndarray, np.ndarray]]:
        """The Linear layers' (W, b); batch normalization's state is not part of them (see `batch_norm_state`)."""
        return [
            (lin.weight.detach().cpu().numpy().T.copy(), lin.bias.detach().cpu().numpy().copy())
            for lin in self.linears_
        ]

    def batch_norm_state(self) -> list[dict[str, np.ndarray]]:
        """Per hidden layer, copies of gamma, beta, running_mean and running_var ([] without batch_norm)."""

        def a(t: Any) -> np.ndarray:
            return t.detach().cpu().numpy().copy()

        return [
            {
                "gamma": a(bn.weight),
                "beta": a(bn.bias),
                "running_mean": a(bn.running_mean),
                "running_var": a(bn.running_var),
            }
            for bn in self.norms_
        ]

    def __repr__(self) -> str:
        spec = getattr(self, "spec_", None)
        opts = ", ".join(f"{k}={v!r}" for k, v in self.config.items())
        return f"TorchMLP({spec!r}, {opts})" if spec else f"TorchMLP({opts}, unbuilt)"
