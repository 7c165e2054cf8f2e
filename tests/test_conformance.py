"""The conformance kit (mlpbench/testing/): run over every installed backend, shown to catch broken
ones, and run on the "Write your own backend" guide's example exactly as printed."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from mlpbench import Backend, ModelSpec, load_results
from mlpbench.backends.numpy_mlp import NumpyMLP
from mlpbench.cli import main
from mlpbench.controlled import batch_order
from mlpbench.registry import discover, load_plugin_file
from mlpbench.testing import ConformanceError, Tolerances, backend_checks, check_backend, pytest_params

ROOT = Path(__file__).resolve().parents[1]

# Differences a framework cannot remove are the backend classes' `parity_notes` (sklearn's and keras'
# Adam): the kit makes each a strict xfail, so the check must keep failing, and the note goes when a
# backend becomes exact.
# The jax backend pins its process to `threads` CPUs by default; here it would pin the test process.
OPTIONS = {"jax": {"pin": False}}
JAX_MISSING = "mlpbench-jax is not installed: pip install -e examples/jax_backend"


def _conformance_params() -> list:
    """Every built-in backend's checks, plus the example package's jax backend (skipped when absent)."""
    registry = discover()
    names = sorted(name for name, entry in registry.backends.items() if entry.source == "built-in")
    params = []
    if "jax" in registry.backends:
        names.append("jax")
    else:
        params.append(pytest.param(lambda: None, id="jax", marks=pytest.mark.skip(reason=JAX_MISSING)))
    for name in names:
        entry = registry.backends[name]
        if entry.cls is None:
            error = f"{entry.name} ({entry.source}) failed to load: {entry.error}"
            params.append(pytest.param(lambda error=error: pytest.fail(error), id=f"{name}-load"))
            continue
        params += pytest_params(entry.cls, prefix=f"{name}-", **OPTIONS.get(name, {}))
    return params


@pytest.mark.parametrize("check", _conformance_params())
def test_backend_conformance(check) -> None:
    check()


# ------------------------------------------------ the kit catches what it claims to catch
def run_check(cls: type, check_id: str, **kwargs) -> str | None:
    return dict(backend_checks(cls, **kwargs))[check_id]()


class OwnShuffle(NumpyMLP):
    """Ignores `batches` and shuffles by itself, with the runner's own recipe and seed 0."""

    name = "own_shuffle"

    def build(self, spec, weights, seed):
        super().build(spec, weights, seed)
        self.epoch_ = 0

    def train_epoch(self, X, y, batches):
        mine = batch_order(len(X), len(batches[0]), 0, self.epoch_)
        self.epoch_ += 1
        return super().train_epoch(X, y, mine)


def test_a_backend_that_ignores_the_batches_fails_given_batches() -> None:
    # Its own permutation happens to equal the runner's, so plain parity cannot see the bug...
    assert run_check(OwnShuffle, "parity[loss=cross_entropy]") is None
    # ...the batch list that is not a permutation can.
    with pytest.raises(ConformanceError, match=r"\[own_shuffle given_batches\] .*NumPy reference"):
        run_check(OwnShuffle, "given_batches")


class HalfMSE(NumpyMLP):
    """The scikit-learn convention, gradient of 1/2 * mse: with sgd, the same as half the learning rate."""

    name = "half_mse"

    def build(self, spec, weights, seed):
        super().build(spec.replace(lr=spec.lr / 2) if spec.loss == "mse" else spec, weights, seed)


def test_a_wrong_loss_gradient_fails_parity_for_that_loss_only() -> None:
    assert run_check(HalfMSE, "parity[loss=cross_entropy]") is None
    with pytest.raises(ConformanceError, match=r"\[half_mse parity\[loss=mse\]\] after 1 epoch\(s\) .* layer \d W"):
        run_check(HalfMSE, "parity[loss=mse]")


class OneColumn(NumpyMLP):
    """Binary predictions as one column p instead of [1-p, p]."""

    name = "one_column"

    def predict(self, X):
        p = super().predict(X)
        return p[:, 1:] if self.spec_.loss == "binary_cross_entropy" else p


def test_binary_predictions_need_two_columns() -> None:
    with pytest.raises(ConformanceError, match=r"returned shape \(7, 1\) .* expected \(7, 2\): two columns"):
        run_check(OneColumn, "predict[binary_cross_entropy]")


class RaisingSkip(NumpyMLP):
    """Declares only cross_entropy, and raises instead of returning a reason."""

    name = "raising_skip"
    losses = ("cross_entropy",)

    def skip(self, spec):
        if spec.loss != "cross_entropy":
            raise NotImplementedError(spec.loss)
        return super().skip(spec)


class RefusesDeclared(NumpyMLP):
    """Declares elu, then refuses it."""

    name = "refuses_declared"

    def skip(self, spec):
        return "no elu here" if spec.activation == "elu" else super().skip(spec)


def test_skip_must_return_reasons_and_honour_declarations() -> None:
    with pytest.raises(ConformanceError, match=r"raised NotImplementedError: .* must return a reason string"):
        run_check(RaisingSkip, "skip")
    with pytest.raises(ConformanceError, match=r"skip\(\) declines .*elu.* inside the declared capabilities"):
        run_check(RefusesDeclared, "skip")
    # The checks that need a declined spec are skipped, not failed: the kit respects skip().
    assert "parity[activation=elu]" in dict(backend_checks(RefusesDeclared))
    from mlpbench.testing import CheckSkipped

    with pytest.raises(CheckSkipped, match="no elu here"):
        run_check(RefusesDeclared, "parity[activation=elu]")


class LiveWeights(NumpyMLP):
    """Arrays handed out by get_weights() keep following the model, as views of live parameters do."""

    name = "live_weights"

    def get_weights(self):
        self.handed_ = super().get_weights()
        return self.handed_

    def train_epoch(self, X, y, batches):
        loss = super().train_epoch(X, y, batches)
        for (W, b), (W_now, b_now) in zip(self.handed_, super().get_weights(), strict=True):
            W[...], b[...] = W_now, b_now
        return loss


def test_get_weights_must_return_copies() -> None:
    with pytest.raises(ConformanceError, match="return copies, not views of the live parameters"):
        run_check(LiveWeights, "initial_weights[float32]")


class UnseededDropout(NumpyMLP):
    """Ignores the job's seed (dropout masks differ from run to run)."""

    name = "unseeded"

    def build(self, spec, weights, seed):
        super().build(spec, weights, int(np.random.default_rng().integers(2**31)))


def test_same_seed_must_give_the_same_result() -> None:
    with pytest.raises(ConformanceError, match=r"two runs with seed 5 .* differ"):
        run_check(UnseededDropout, "deterministic")


class NeverLearns(NumpyMLP):
    """Reports a loss and never changes the weights."""

    name = "never_learns"

    def train_epoch(self, X, y, batches):
        return 0.69


def test_a_backend_that_does_not_learn_fails_xor() -> None:
    with pytest.raises(ConformanceError, match=r"/4 XOR points correct after 2000 epochs"):
        run_check(NeverLearns, "learns_xor")


def test_a_backend_that_does_not_learn_fails_native_xor_too() -> None:
    # Its native mode is the generic loop (NumPy only): the same train_epoch, the backend's own draws.
    with pytest.raises(ConformanceError, match=r"\[never_learns native_learns_xor\] test accuracy .* not 4/4"):
        run_check(NeverLearns, "native_learns_xor", xor_epochs=400)


class NoNativeLoop(NumpyMLP):
    """A backend on a framework (it requires more than numpy) without a fit_native of its own."""

    name = "no_native_loop"
    requires = ("numpy", "json")


def test_a_backend_without_a_native_loop_gets_the_skip_reason() -> None:
    from mlpbench.testing import CheckSkipped

    for check_id in ("native_learns_xor", "native_timing"):
        with pytest.raises(CheckSkipped, match=r"^no native mode: no_native_loop has no training loop"):
            run_check(NoNativeLoop, check_id)
    # A plugin with a framework states it, too: the jax example package has no fit_native.
    entry = discover().backends.get("jax")
    if entry is not None and entry.cls is not None and not entry.cls.missing_requirements():
        with pytest.raises(CheckSkipped, match="^no native mode: jax"):
            run_check(entry.cls, "native_timing", **OPTIONS["jax"])


class LateNative(NumpyMLP):
    """A native loop that keeps training after the runner's early stopping said stop."""

    name = "late_native"

    def fit_native(self, spec, seed, X, y, X_val, y_val, epoch_end):
        self.build(spec, None, seed)
        for epoch in range(spec.epochs):
            epoch_end(epoch + 1, 0.001, self.train_epoch(X, y, [np.arange(len(X))]))


def test_native_checks_run_the_runner_side_of_the_contract() -> None:
    assert run_check(LateNative, "native_timing") == "200 epochs, one time each"  # patience 0: never asked to stop
    from mlpbench.worker import execute

    task = discover().task("xor")()
    spec = task.spec().replace(patience=1, min_delta=10.0)  # nothing improves by 10: stop after epoch 2
    record = execute(LateNative(), task, task.load(0), {"id": "x", "seed": 0, "mode": "native", "spec": spec.to_dict()})
    assert record["status"] == "error" and "trained epoch 3 after epoch_end asked it to stop" in record["error"]


class Float32Only(NumpyMLP):
    name = "float32_only"
    dtypes = ("float32",)


def test_float32_only_backends_are_compared_in_float32_and_told_so() -> None:
    assert "initial_weights[float64]" not in dict(backend_checks(Float32Only))
    note = run_check(Float32Only, "parity[loss=mse]")
    assert note == "in float32 with rtol 0.0001: the backend declares no float64"


class OwnWeights(NumpyMLP):
    """Cannot start from given weights: build() gets None and draws its own."""

    name = "own_weights"
    accepts_weights = False

    def build(self, spec, weights, seed):
        assert weights is None
        super().build(spec, None, seed + 1)


def test_backends_without_external_weights_are_compared_from_their_own() -> None:
    assert run_check(OwnWeights, "initial_weights[float64]") == "accepts_weights is False: only the shapes were checked"
    assert run_check(OwnWeights, "parity[loss=cross_entropy]") is None
    assert run_check(OwnWeights, "given_batches") is None


class TinySGD(Backend):
    """Just enough of an MLP for the l2 check: tanh, cross_entropy, plain SGD, float64; `decay_biases` is the bug."""

    name = "tiny_sgd"
    activations, losses, optimizers, dtypes = ("tanh",), ("cross_entropy",), ("sgd",), ("float64",)
    supports_dropout = False
    decay_biases = False

    def build(self, spec, weights, seed):
        self.spec_, self.params_ = spec, [(W.copy(), b.copy()) for W, b in weights]

    def _forward(self, X):
        acts = [X]
        for i, (W, b) in enumerate(self.params_):
            z = acts[-1] @ W + b
            acts.append(np.tanh(z) if i < len(self.params_) - 1 else z)
        p = np.exp(acts[-1] - acts[-1].max(axis=1, keepdims=True))
        return acts, p / p.sum(axis=1, keepdims=True)

    def train_epoch(self, X, y, batches):
        total = 0.0
        for idx in batches:
            acts, p = self._forward(X[idx])
            total -= float(np.sum(np.log(p[np.arange(len(idx)), y[idx]])))
            dz = p.copy()
            dz[np.arange(len(idx)), y[idx]] -= 1.0
            dz /= len(idx)
            for i in range(len(self.params_) - 1, -1, -1):
                W, b = self.params_[i]
                gW, gb = acts[i].T @ dz + self.spec_.l2 * W, dz.sum(axis=0)
                if self.decay_biases:
                    gb = gb + self.spec_.l2 * b
                dz = (dz @ W.T) * (1.0 - acts[i] ** 2)
                W -= self.spec_.lr * gW
                b -= self.spec_.lr * gb
        return total / sum(len(idx) for idx in batches)

    def predict(self, X):
        return self._forward(X)[1]

    def get_weights(self):
        return [(W.copy(), b.copy()) for W, b in self.params_]


class L2OnBiases(TinySGD):
    """Decays the biases too; with the runner's zero initial biases that would not show."""

    name = "l2_on_biases"
    decay_biases = True


def test_l2_that_decays_the_biases_fails_the_l2_check() -> None:
    assert run_check(TinySGD, "parity[l2]") is None  # the same backend, right: it passes
    assert run_check(L2OnBiases, "parity[loss=cross_entropy]") is None  # without l2 nothing differs
    message = r"\[l2_on_biases parity\[l2\]\] .* the bias differs most \(layer \d b, .* never the biases"
    with pytest.raises(ConformanceError, match=message):
        run_check(L2OnBiases, "parity[l2]")


class NotedAdam(NumpyMLP):
    """Declares a framework difference for adam (which the NumPy rules do not have)."""

    name = "noted_adam"
    parity_notes = {"adam": "this framework's Adam differs"}


def test_parity_notes_make_known_differences() -> None:
    marks = {p.id: p.marks for p in pytest_params(NotedAdam)}
    (xfail,) = marks["parity[optimizer=adam]"]
    assert xfail.name == "xfail" and xfail.kwargs["reason"] == "this framework's Adam differs"
    assert xfail.kwargs["strict"] is True
    assert not marks["parity[optimizer=momentum]"]
    # known_differences given by hand still apply, and override the note's reason.
    marks = {p.id: p.marks for p in pytest_params(NotedAdam, known_differences={"parity[optimizer=adam]": "mine"})}
    assert marks["parity[optimizer=adam]"][0].kwargs["reason"] == "mine"

    class EveryOptimizer(NumpyMLP):
        name = "every_optimizer"
        parity_notes = {"*": "all differ"}

    marks = {p.id: p.marks for p in pytest_params(EveryOptimizer)}
    expected = [f"parity[optimizer={o}]" for o in ("momentum", "nesterov", "adam", "rmsprop")]
    assert [cid for cid, m in marks.items() if m] == expected
    # The check itself passes (NumPy's Adam is exact), so check_backend calls the note stale.
    with pytest.raises(ConformanceError, match=r"\[noted_adam parity\[optimizer=adam\]\] passes, but .* differs"):
        check_backend(NotedAdam)


def test_built_in_framework_differences_come_from_the_classes() -> None:
    for name in ("sklearn", "keras"):
        cls = discover().backends[name].cls
        (xfail,) = {p.id: p.marks for p in pytest_params(cls)}["parity[optimizer=adam]"]
        assert xfail.kwargs["reason"] == cls.parity_notes["adam"] and "sqrt(v)" in xfail.kwargs["reason"]
    # Keras' RMSprop (epsilon inside the square root) and its biased moving variance; its batch-statistics
    # training and its prediction mode are exact, so those checks are not marked.
    marks = {p.id: p.marks for p in pytest_params(discover().backends["keras"].cls)}
    assert "epsilon inside the square root" in marks["parity[optimizer=rmsprop]"][0].kwargs["reason"]
    assert "biased" in marks["parity[batch_norm_running]"][0].kwargs["reason"]
    assert not marks["parity[batch_norm=after]"] and not marks["parity[batch_norm=before]"]
    assert not marks["batch_norm_predict"]
    # scikit-learn has neither: no rmsprop or batch-norm checks, and skip() declines both (the skip check).
    sklearn = {p.id for p in pytest_params(discover().backends["sklearn"].cls)}
    assert not any("rmsprop" in cid or "batch_norm" in cid for cid in sklearn)


class BadParityTarget(NumpyMLP):
    name = "bad_parity_target"
    parity_target = "1e-9"


def test_parity_attributes_are_checked_as_metadata() -> None:
    with pytest.raises(ConformanceError, match=r"`parity_target` must be a positive number or None, got '1e-9'"):
        run_check(BadParityTarget, "metadata")

    class BadNotes(NumpyMLP):
        name = "bad_notes"
        parity_notes = {"adagrad": "no such optimizer"}

    with pytest.raises(ConformanceError, match=r"`parity_notes` has unknown key\(s\) \['adagrad'\]; .* batch_norm"):
        run_check(BadNotes, "metadata")

    class BatchNormNote(NumpyMLP):
        name = "batch_norm_note"
        parity_notes = {"batch_norm": "a batch-norm difference"}

    assert run_check(BatchNormNote, "metadata") is None

    class BadFlag(NumpyMLP):
        name = "bad_flag"
        supports_batch_norm = "yes"

    with pytest.raises(ConformanceError, match=r"`supports_batch_norm` must be True or False, got 'yes'"):
        run_check(BadFlag, "metadata")


# ------------------------------------------------------------- rmsprop and batch normalization
class EpsInsideRMSprop(NumpyMLP):
    """Keras' RMSprop rule: epsilon inside the square root."""

    name = "eps_inside"

    def build(self, spec, weights, seed):
        super().build(spec, weights, seed)
        if spec.optimizer == "rmsprop":

            def update(h, p, g, state, tmp):
                (v,) = state
                v *= h.alpha
                v += h.one_minus_alpha * g * g
                p -= h.lr * g / np.sqrt(v + h.eps)

            self._update = update


def test_rmsprop_with_epsilon_inside_the_root_fails_its_parity_check() -> None:
    assert run_check(EpsInsideRMSprop, "parity[optimizer=adam]") is None
    with pytest.raises(ConformanceError, match=r"\[eps_inside parity\[optimizer=rmsprop\]\] after 2 epoch\(s\)"):
        run_check(EpsInsideRMSprop, "parity[optimizer=rmsprop]")


class BatchStatsPredict(NumpyMLP):
    """Predicts with the statistics of the samples it is given, not the running ones."""

    name = "batch_stats_predict"

    def _bn_eval(self, a, i):
        a -= a.mean(axis=0)
        a /= np.sqrt(a.var(axis=0) + self._bn_eps)
        a *= self.bn_params_[2 * i]
        a += self.bn_params_[2 * i + 1]


def test_predicting_with_batch_statistics_fails_the_batch_norm_checks() -> None:
    with pytest.raises(ConformanceError, match=r"\[batch_stats_predict batch_norm_predict\] .* running statistics"):
        run_check(BatchStatsPredict, "batch_norm_predict")
    with pytest.raises(ConformanceError, match=r"parity\[batch_norm=after\]\] predictions after training differ"):
        run_check(BatchStatsPredict, "parity[batch_norm=after]")


class BiasedRunningVariance(NumpyMLP):
    """Keras' running variance: the biased batch variance."""

    name = "biased_running_variance"

    def _update_running_stats(self, ws, m):
        for var in ws.bn_var:
            var *= (m - 1) / m  # (PyTorch's rule multiplies by m / (m - 1) again)
        super()._update_running_stats(ws, m)


def test_a_biased_running_variance_fails_only_the_running_statistics_check() -> None:
    for check_id in ("parity[batch_norm=before]", "parity[batch_norm=after]", "batch_norm_predict"):
        assert run_check(BiasedRunningVariance, check_id) is None, check_id
    with pytest.raises(ConformanceError, match=r"parity\[batch_norm_running\]\] predictions after training differ"):
        run_check(BiasedRunningVariance, "parity[batch_norm_running]")

    class Noted(BiasedRunningVariance):
        name = "noted_running_variance"
        parity_notes = {"batch_norm": "biased running variance"}

    marked = {p.id for p in pytest_params(Noted) if p.marks}
    assert marked == {"parity[batch_norm_running]"}
    report = check_backend(Noted)
    assert any(line.startswith("parity[batch_norm_running]: known difference (biased") for line in report)


class DeclinesNothing(NumpyMLP):
    """Says it has no batch normalization, but its skip() accepts batch_norm specs."""

    name = "declines_nothing"
    supports_batch_norm = False

    def skip(self, spec):  # noqa: ANN001, ANN201 - ignores its own declaration
        return None


def test_batch_norm_capability_is_honoured_by_skip() -> None:
    with pytest.raises(ConformanceError, match=r"skip\(\) returned None for .*batch_norm=before.* outside the"):
        run_check(DeclinesNothing, "skip")
    assert not any("batch_norm" in cid for cid, _ in backend_checks(DeclinesNothing))
    # A backend that does not declare it inherits the base class's False, whose skip() declines batch norm.
    assert run_check(TinySGD, "skip") is None
    assert TinySGD().skip(ModelSpec(n_inputs=2, n_outputs=1, loss="binary_cross_entropy", batch_norm="after"))
    assert not any("batch_norm" in cid for cid, _ in backend_checks(TinySGD))


def test_tolerances_are_one_object_or_keywords() -> None:
    checks = dict(backend_checks(Float32Only, tolerances=Tolerances(float32_rtol=1e-3)))
    assert checks["parity[loss=mse]"]() == "in float32 with rtol 0.001: the backend declares no float64"
    checks = dict(backend_checks(Float32Only, float32_rtol=1e-3))
    assert checks["parity[loss=mse]"]() == "in float32 with rtol 0.001: the backend declares no float64"
    # At least one run of the task's own epochs (200), not the default 2000.
    with pytest.raises(ConformanceError, match=r"after 200 epochs"):
        dict(backend_checks(NeverLearns, xor_epochs=3))["learns_xor"]()


def test_eager_framework_import_is_caught(tmp_path) -> None:
    plugin = tmp_path / "eager.py"
    plugin.write_text(
        "import sqlite3  # stands in for a framework imported at module level\n"
        "from mlpbench.backends.numpy_mlp import NumpyMLP\n\n\n"
        "class Eager(NumpyMLP):\n"
        "    name = 'eager'\n"
        "    requires = ('numpy', 'sqlite3')\n"
    )
    (entry,) = load_plugin_file(plugin)
    with pytest.raises(ConformanceError, match=r"imports sqlite3: import the framework inside prepare\(\)"):
        run_check(entry.cls, "lazy_import")


def test_known_differences_must_name_real_checks_and_must_still_fail() -> None:
    with pytest.raises(ValueError, match="names no check of this backend: parity\\[optimizer=adagrad\\]"):
        check_backend(NumpyMLP, known_differences={"parity[optimizer=adagrad]": "typo"})
    with pytest.raises(ConformanceError, match=r"passes, but known_differences says it fails .* remove the entry"):
        check_backend(NumpyMLP, known_differences={"metadata": "stale"})


def test_missing_requirements_cannot_be_checked() -> None:
    class Absent(NumpyMLP):
        name = "absent"
        requires = ("no_such_module_xyz",)

    with pytest.raises(RuntimeError, match="cannot import no_such_module_xyz"):
        check_backend(Absent)


# ------------------------------------------------------ the README's example, verbatim
#: Where the "Write your own backend" guide lives (it moved from the README to docs/); the first that has it.
GUIDES = ("docs/writing-a-backend.md", "README.md")


def readme_example() -> str:
    """The ```python block defining a Backend under a "Write your own backend" heading of the guide."""
    for name in GUIDES:
        path = ROOT / name
        text = path.read_text(encoding="utf-8") if path.is_file() else ""
        heading = re.search(r"^#+ Write your own backend\s*$", text, re.M)
        if heading is not None:
            for block in re.findall(r"^```python\n(.*?)^```", text[heading.end() :], re.S | re.M):
                if re.search(r"^class \w+\(Backend\):", block, re.M):
                    return block
    pytest.fail(f"no ```python block with a Backend subclass under a 'Write your own backend' heading in {GUIDES}")


@pytest.fixture(scope="module")
def example_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("plugin") / "tiny_mlp.py"
    path.write_text(readme_example(), encoding="utf-8")
    return path


def test_readme_example_passes_the_kit(example_file) -> None:
    (entry,) = load_plugin_file(example_file)
    report = check_backend(entry.cls)
    assert all(": ok" in line or "requires no framework" in line for line in report), report
    assert any(line.startswith("parity[loss=cross_entropy]: ok") for line in report)


def test_readme_example_runs_through_the_cli(example_file, tmp_path) -> None:
    (entry,) = load_plugin_file(example_file)
    out = tmp_path / "res"
    args = f"--backends numpy,{entry.name} --tasks xor --seeds 2 --set optimizer=sgd --set lr=0.1 --no-progress"
    code = main(["run", "--plugin", str(example_file), *args.split(), "--out", str(out)])
    assert code == 0
    runs = load_results(out).runs
    assert len(runs) == 4 and set(runs["status"]) == {"ok"}
    mine = runs[runs.backend == entry.name]
    assert len(mine) == 2 and (mine["test_accuracy"] == 1.0).all()
    # Same spec, same weights, same batches: the example and the reference end at the same training loss.
    ref = runs[runs.backend == "numpy"].set_index("seed")["final_train_loss"]
    assert np.allclose(mine.set_index("seed")["final_train_loss"], ref, rtol=1e-5)


# ------------------------------------------------------- the out-of-tree JAX package
def test_jax_package_is_listed_and_runs_through_the_cli(tmp_path, capsys) -> None:
    entry = discover().backends.get("jax")
    if entry is None:
        pytest.skip(JAX_MISSING)
    if entry.cls is not None and entry.cls.missing_requirements():
        pytest.skip(f"jax is not importable here ({', '.join(entry.cls.missing_requirements())})")
    assert main(["list"]) == 0
    line = next(li for li in capsys.readouterr().out.splitlines() if li.strip().startswith("jax "))
    assert "available" in line and "[package mlpbench-jax " in line
    out = tmp_path / "res"
    code = main(["run", "--backends", "jax", "--tasks", "xor", "--seeds", "1", "--out", str(out), "--no-progress"])
    assert code == 0
    runs = load_results(out).runs
    assert list(runs["status"]) == ["ok"] and runs["test_accuracy"].iloc[0] == 1.0
