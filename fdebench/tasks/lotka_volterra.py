"""``lotka_volterra``: discover a (fractional) predator-prey system from its trajectory.

Data: the Caputo (fractional) Lotka-Volterra system

    D^alpha_true x = a x - b x y,    D^alpha_true y = c x y - d y,    x(0) = y(0) = 1,

solved with the engine (``abm``, no gradient) on a grid 16 times finer than the finer of the
model's ``step_size`` and the observation spacing ``obs_spacing`` (0.05 by default), and observed
at ``t_k = k obs_spacing``: on ``(0, t_end]`` for training and on ``(t_end, t_end + test_horizon]``
for testing.  The observation times do not depend on the model's step (the solver interpolates
between its grid values), so a step-size study fits the same data. ``alpha_true = -1.0`` (the
default) means "the run's ``alpha``"; a value in ``(0, 1]`` fixes the data's order independently of
the model's (misspecification).  ``noise`` is *relative*: component ``i`` of every training
observation gets Gaussian noise of standard deviation ``noise * std_i``, ``std_i`` the standard
deviation of the clean training observations of that component; the test observations stay clean.
``missing`` (in ``[0, 0.9]``) drops that fraction of the training observation times at random
(seeded): the model is fitted at the remaining, irregular times (the solver interpolates its grid
values there), the "noisy and incomplete observations" the AAAI-2025 adjoint paper names as its
next check; the test observations stay complete.

Models (``model``), solved from the known initial state by an :class:`FDEBlock` with the run's
engine settings and trained on the MSE of the training observations:

* ``"parametric"``: the same equations with learnable ``(a, b, c, d) = exp(theta)`` (positive by
  construction), started from the truth times seeded factors uniform in ``[1 - perturb,
  1 + perturb]``; float64, optimised by :class:`CappedBFGS`.  On a window as short as one third of
  a period the fit is *sloppy*: ``a`` and ``b`` scaled together (likewise ``c`` and ``d``) barely
  change the trajectory, so the Gauss-Newton matrix has a condition number of about 3e3 and Adam
  needs hundreds to thousands of iterations to resolve those directions to 2 %, where BFGS
  reaches the discretisation floor (below) in about 40.  Float64 because float32 gradient noise
  near the optimum corrupts the curvature pairs and makes BFGS wander off again.
* ``"neural"``: a time-independent tanh MLP field ``2 -> hidden -> 2``, float32, Adam (``lr``).

Training stops when it has converged (:meth:`LotkaVolterra.after_iteration`): once the gradient
norm is at most ``gtol`` (1e-9), or the loss has changed by at most ``ftol`` (1e-10) relative for
:data:`STALL` iterations in a row; ``iters`` (300) is only a cap, and the record's ``iterations``
says how many ran.  With ``learn_alpha`` on data at ``alpha_true = 0.75`` from a start at 0.9
(``abm``, ``h = 0.05``) the parametric fit stops after 73 iterations with alpha 0.13 % and
the rates 1.0 % off (a fixed 60 iterations left the rates 3.7 % off).

Defaults (quick: ~1-3 s a run on one CPU thread at ``t_end = 1``, ``h = 0.05``):
``max_step = 0.1`` (at most ~10 % change of a rate per step), ``lr = 0.03`` and ``hidden = 32``
for the neural model (its MSE drops ~100-fold in 60 steps),
``test_horizon = 0.5``, ``perturb = 0.3``.

Recovery is limited by the model's own discretisation: with noise 0 the best fit differs from the
truth by the scheme's error at ``step_size``.  At ``h = 0.05`` over ``[0, 1]`` that bias is about
0.3 % (alpha 1), 1.3 % (alpha 0.8) and 2.2 % (alpha 0.5) with ``abm``, but 4.5 % and 11 % with
``euler`` (alpha 1, 0.8): recovering the parameters within 2 % takes ``method: abm`` (or a smaller
step; ``abm`` at ``h = 0.025`` gives 0.4 % at alpha 0.8).

Metrics: ``param_rel_err = max_i |p_i - p_true_i| / p_true_i`` (parametric model only; the neural
model's results leave it out rather than report NaN), ``train_mse`` against the training
observations and ``test_mse`` against the clean test observations (extrapolation).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable
from typing import Any, ClassVar

import torch
from torch import nn

from ..engine import fdeint
from .base import LOWER, FDEBlock, Task

__all__ = ["CappedBFGS", "LVField", "LotkaVolterra", "MLPField"]

STATE0 = (1.0, 1.0)  # x(0), y(0)
FINE = 16  # the data grid is this many times finer than the model's step
SAME_AS_ALPHA = -1.0  # alpha_true sentinel
#: converged when the loss's relative change stays within ``ftol`` this many iterations in a row
STALL = 5
MODELS = ("parametric", "neural")


class LVField(nn.Module):
    """``f(t, (x, y)) = (a x - b x y, c x y - d y)`` with ``(a, b, c, d) = exp(theta)``."""

    def __init__(self, p: torch.Tensor) -> None:
        super().__init__()
        self.theta = nn.Parameter(p.log())

    @property
    def p(self) -> torch.Tensor:
        """The parameters ``(a, b, c, d)``."""
        return self.theta.exp()

    def forward(self, t: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        a, b, c, d = self.p
        x, y = s[..., 0], s[..., 1]
        return torch.stack((a * x - b * x * y, c * x * y - d * y), dim=-1)


class MLPField(nn.Module):
    """A time-independent tanh MLP field ``2 -> hidden -> 2``."""

    def __init__(self, hidden: int) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(2, hidden), nn.Tanh(), nn.Linear(hidden, 2))

    def forward(self, t: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        return self.net(s)


class CappedBFGS(torch.optim.Optimizer):
    """BFGS from gradients alone, for a few parameters (the runner's ``step()`` has no closure,
    so there is no line search): the step ``-H g`` is cut to length ``max_step``.

    ``H`` approximates the inverse Hessian with the BFGS update (Nocedal & Wright, *Numerical
    Optimization*, 2nd ed., eq. 6.17) ``H <- (I - rho s y^T) H (I - rho y s^T) + rho s s^T``,
    ``rho = 1 / y^T s``, from the last step ``s`` and gradient change ``y``; it starts as
    ``(y^T s / y^T y) I`` (eq. 6.20) at the first pair, before which the step is ``-g``.  Pairs
    that violate the curvature condition ``y^T s > 0`` are skipped, keeping ``H`` positive
    definite.
    """

    def __init__(self, params: Iterable[torch.Tensor], max_step: float = 0.1) -> None:
        super().__init__(params, {"max_step": max_step})

    @torch.no_grad()
    def step(self, closure: Callable[[], torch.Tensor] | None = None) -> torch.Tensor | None:
        """One quasi-Newton step from the parameters' ``.grad`` (``closure``: optional, called
        first with gradients enabled, as in torch)."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        params = [p for group in self.param_groups for p in group["params"]]
        state = self.state[params[0]]
        x = torch.cat([p.reshape(-1) for p in params])
        g = torch.cat([p.grad.reshape(-1) for p in params])
        h = state.get("h")
        if "x" in state:
            s, y = x - state["x"], g - state["g"]
            sy = s @ y
            if sy > 1e-10 * s.norm() * y.norm():
                eye = torch.eye(len(x), dtype=x.dtype, device=x.device)
                h = sy / (y @ y) * eye if h is None else h
                v = eye - torch.outer(s, y) / sy
                h = v @ h @ v.T + torch.outer(s, s) / sy
        state.update(h=h, x=x, g=g)
        d = -g if h is None else -(h @ g)
        d = d * (self.param_groups[0]["max_step"] / d.norm()).clamp(max=1.0)
        for p, dp in zip(params, d.split([p.numel() for p in params]), strict=True):
            p.add_(dp.view_as(p))
        return loss


class LotkaVolterra(Task):
    """Recover the Lotka-Volterra field (parametric or neural) from a sampled trajectory."""

    name = "lotka_volterra"
    params: ClassVar[dict[str, Any]] = {
        "model": "parametric", "iters": 300, "gtol": 1e-9, "ftol": 1e-10, "max_step": 0.1,
        "lr": 0.03, "hidden": 32,
        "alpha_true": -1.0, "noise": 0.0, "test_horizon": 0.5, "perturb": 0.3,
        "obs_spacing": 0.05, "missing": 0.0,
        "a": 1.5, "b": 1.0, "c": 1.0, "d": 3.0,
    }
    choices: ClassVar[dict[str, tuple[str, ...]]] = {"model": MODELS}
    ranges: ClassVar[dict[str, tuple[float, float]]] = {
        "missing": (0.0, 0.9), "gtol": (0.0, 1.0), "ftol": (0.0, 1.0)}
    #: the union over both models; ``param_rel_err`` (the headline) is the parametric model's,
    #: ``alpha_rel_err`` a learnt order's (``learn_alpha``)
    metrics: ClassVar[dict[str, str | None]] = {
        "param_rel_err": LOWER, "train_mse": LOWER, "test_mse": LOWER, "alpha_rel_err": LOWER}

    @classmethod
    def skip(cls, config: dict[str, Any]) -> str | None:
        """The windows must be whole numbers of observations; ``alpha_true`` must be valid."""
        alpha_true = config["alpha_true"]
        if alpha_true != SAME_AS_ALPHA and not 0 < alpha_true <= 1:
            return f"alpha_true must be in (0, 1] or {SAME_AS_ALPHA} (= alpha), got {alpha_true}"
        dt = config["obs_spacing"]
        for key in ("t_end", "test_horizon"):
            n = config[key] / dt if dt > 0 else 0.5
            if round(n) < 1 or abs(n - round(n)) > 1e-9:
                return f"{key} {config[key]:g} is not a positive multiple of obs_spacing {dt:g}"
        return None

    # ---- data -------------------------------------------------------------------------------
    def true_params(self) -> torch.Tensor:
        """``(a, b, c, d)`` of the data, float64 on the CPU."""
        return torch.tensor([float(self.config[k]) for k in "abcd"], dtype=torch.float64)

    def observation_times(self) -> torch.Tensor:
        """``k obs_spacing``, ``k = 0 .. n_train + n_test`` (float64), over both windows."""
        c = self.config
        dt = c["obs_spacing"]
        n = round(c["t_end"] / dt) + round(c["test_horizon"] / dt)
        return dt * torch.arange(n + 1, dtype=torch.float64, device=self.device)

    def alpha_true(self) -> float:
        """The data's order."""
        c = self.config
        return c["alpha"] if c["alpha_true"] == SAME_AS_ALPHA else c["alpha_true"]

    def true_values(self) -> dict[str, float]:
        """The data's order ``alpha`` (and, for the parametric model, the rates ``a`` .. ``d``)."""
        truth = {"alpha": float(self.alpha_true())}
        if self.config["model"] == "parametric":
            truth.update({k: float(self.config[k]) for k in "abcd"})
        return truth

    def clean_data(self) -> torch.Tensor:
        """The true states at :meth:`observation_times`, ``(n + 1, 2)`` float64, solved with
        ``abm`` at ``min(step_size, obs_spacing) / 16``."""
        c = self.config
        alpha = self.alpha_true()
        field = LVField(self.true_params()).to(self.device)
        s0 = torch.tensor(STATE0, dtype=torch.float64, device=self.device)
        with torch.no_grad():
            return fdeint(field, s0, self.observation_times(), alpha=alpha, method="abm",
                          step_size=min(c["step_size"], c["obs_spacing"]) / FINE)

    # ---- task -------------------------------------------------------------------------------
    data = "simulated: a fractional Lotka-Volterra trajectory (engine, fine grid) plus noise"

    def setup(self) -> None:
        """Seeded data and starting point, the model and its optimiser."""
        c = self.config
        torch.manual_seed(c["seed"])
        gen = torch.Generator().manual_seed(c["seed"])
        self.n_train = round(c["t_end"] / c["obs_spacing"])
        clean = self.clean_data().cpu()
        train = clean[1 : self.n_train + 1]
        noise = torch.randn(train.shape, generator=gen, dtype=torch.float64)
        train = train + c["noise"] * train.std(dim=0) * noise

        if c["model"] == "parametric":
            factor = 1 + c["perturb"] * (2 * torch.rand(4, generator=gen, dtype=torch.float64) - 1)
            field: nn.Module = LVField(self.true_params() * factor)
            dtype = torch.float64
        else:
            field, dtype = MLPField(c["hidden"]), torch.float32
        dev = self.device
        self.t_all = self.observation_times()  # float64 for any model: exact grid times
        self.kept = self._kept(gen)
        self._losses: list[float] = []
        self.train_obs = train[self.kept].to(dev, dtype)
        self.test_obs = clean[self.n_train + 1 :].to(dev, dtype)
        t_train = torch.cat([self.t_all[:1], self.t_all[1 : self.n_train + 1][self.kept]])
        self.model = FDEBlock(field, t_train, **self.engine_kwargs())
        self.model.to(dev, dtype)
        if c["model"] == "parametric":
            self.optimizer = CappedBFGS(self.model.parameters(), max_step=c["max_step"])
        else:
            self.optimizer = torch.optim.Adam(self.model.parameters(), lr=c["lr"])

    def _kept(self, gen: torch.Generator) -> torch.Tensor:
        """The indices of the training observations kept (sorted): all of them, or with
        ``missing`` a seeded random ``1 - missing`` of them (at least one)."""
        n = self.n_train
        drop = min(round(self.config["missing"] * n), n - 1)
        if not drop:
            return torch.arange(n)
        return torch.randperm(n, generator=gen)[drop:].sort().values

    def _trajectory(self, model: nn.Module, t_eval: torch.Tensor | None = None) -> torch.Tensor:
        """States at ``t_eval[1:]`` (default: the training times), in the model's dtype."""
        s0 = torch.tensor(STATE0, dtype=next(model.parameters()).dtype, device=self.device)
        return model(s0, t_eval)[1:]

    def loss(self, model: nn.Module) -> torch.Tensor:
        """MSE of both components over the training observations."""
        loss = self.probe_loss(model)
        self._losses.append(loss.item())
        return loss

    def after_iteration(self) -> bool:
        """``True`` once the fit has converged: the gradient norm of the last iteration is at
        most ``gtol``, or the loss has changed by at most ``ftol`` (relative) in each of the
        last :data:`STALL` iterations."""
        c, losses = self.config, self._losses
        grads = [p.grad.reshape(-1) for p in self.model.parameters() if p.grad is not None]
        if grads and torch.cat(grads).norm().item() <= c["gtol"]:
            return True
        if len(losses) <= STALL:
            return False
        recent = losses[-STALL - 1:]
        return all(abs(b - a) <= c["ftol"] * abs(a) for a, b in itertools.pairwise(recent))

    def probe_loss(self, model: nn.Module) -> torch.Tensor:
        """The training loss in ``model``'s dtype."""
        traj = self._trajectory(model)
        return (traj - self.train_obs.to(traj.dtype)).square().mean()

    def evaluate(self) -> dict[str, float]:
        """``param_rel_err`` (parametric only), ``train_mse``, ``test_mse``, and with
        ``learn_alpha`` ``alpha_rel_err = |alpha_learned - alpha_true| / alpha_true``."""
        with torch.no_grad():
            traj = self._trajectory(self.model, self.t_all)
        out: dict[str, float] = {}
        if isinstance(self.model.field, LVField):
            p, p_true = self.model.field.p.detach().double().cpu(), self.true_params()
            out["param_rel_err"] = ((p - p_true).abs() / p_true).max().item()
        fitted = traj[: self.n_train][self.kept.to(traj.device)]
        out["train_mse"] = (fitted - self.train_obs).square().mean().item()
        out["test_mse"] = (traj[self.n_train :] - self.test_obs).square().mean().item()
        if (alpha := self.alpha_learned()) is not None:
            out["alpha_rel_err"] = abs(alpha - self.alpha_true()) / self.alpha_true()
        return out
