"""``node_classification``: fractional graph neural diffusion on a graph's nodes.

Model, the "linear" diffusion of GRAND (Chamberlain et al. 2021, ICML: GRAND-l, the diffusion
with a fixed attention matrix) and its fractional form in FROND (Kang et al. 2024, ICLR:
F-GRAND-l): input dropout
-> ``Linear(F -> hidden)`` -> one :class:`FDEBlock` solving, on ``[0, t_end]``,

* ``model: linear``:    ``D^alpha X = (A_hat - I) X``
* ``model: learnable``: ``D^alpha X = (A_hat - I) X W``, ``W`` (hidden x hidden) learnable,
  symmetric positive semi-definite and initialised near the identity (see
  :attr:`DiffusionField.weight`)

-> ``Linear(hidden -> n_classes)`` on ``X(t_end)``.  ``A_hat = D^-1/2 (A + I) D^-1/2`` (see
:func:`.graph_data.normalized_adjacency`) is a sparse CSR matrix multiplied with
``torch.sparse.mm``; nothing of size nodes x nodes is ever dense.

Training is full-batch: one runner iteration is one epoch (Adam with weight decay, cross-entropy
on the training nodes).  After every epoch the runner calls :meth:`after_iteration`, which
measures validation and test accuracy (no gradient, dropout off), remembers the test accuracy at
the best validation accuracy so far, and stops training after ``patience`` epochs without a
better validation accuracy (``patience: 0`` never stops early).
"""

from __future__ import annotations

import math
import time
from typing import Any, ClassVar

import torch
from torch import nn
from torch.autograd.function import once_differentiable
from torch.nn import functional as F

from .base import HIGHER, LOWER, FDEBlock, Task
from .graph_data import (
    DATASETS,
    Graph,
    csr_matrix,
    induced_subgraph,
    load_graph,
    normalized_adjacency,
)
from .graph_data import DESCRIPTIONS as GRAPH_DESCRIPTIONS

__all__ = ["TASKS", "DiffusionClassifier", "DiffusionField", "NodeClassification"]

MODELS = ("linear", "learnable")
#: graphs larger than this are gradient-probed on the subgraph induced by their first nodes
PROBE_MAX_NODES = 10_000


class SymmetricSparseMM(torch.autograd.Function):
    """``A @ X`` for a *symmetric* sparse ``A``, differentiable in ``X`` only.

    The cotangent of ``X`` is ``A^T G = A G``: the backward pass reuses ``A`` as it is, where
    autograd's own rule transposes the sparse matrix in every step's backward pass (forward
    plus backward on a 10^5-node graph, 32 columns, one CPU thread: 0.10 s here, 0.23 s with
    autograd's rule, 0.32 s with a COO matrix).
    """

    @staticmethod
    def forward(ctx, adjacency: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        ctx.adjacency = adjacency  # a view of the field's buffers: keeping it costs nothing
        return torch.sparse.mm(adjacency, x)

    @staticmethod
    @once_differentiable
    def backward(ctx, grad: torch.Tensor) -> tuple[None, torch.Tensor]:
        return None, torch.sparse.mm(ctx.adjacency, grad)


class DiffusionField(nn.Module):
    """``f(t, X) = (A_hat - I) X`` (``learnable``: ``(A_hat - I) X W``).

    ``A_hat`` is kept as the three arrays of its CSR form, registered as buffers, and the CSR
    tensor viewing them is rebuilt per call (free): a CSR tensor cannot be deep-copied, and the
    gradient probe deep-copies the model and casts it with ``.double()``, which casts the values
    buffer too.
    """

    def __init__(self, adjacency: torch.Tensor, hidden: int, learnable: bool) -> None:
        super().__init__()
        self.set_adjacency(adjacency)
        self.learnable = learnable
        if learnable:  # W = I plus a small rotation
            self.rotation = nn.Parameter(0.01 * torch.randn(hidden, hidden))
            self.spectrum = nn.Parameter(torch.ones(hidden))

    @property
    def weight(self) -> torch.Tensor | None:
        """``W = U diag(clamp(d, 0, 1)) U^T`` with ``U = exp(R - R^T)`` orthogonal (``None`` for
        the linear model).

        The eigenvalues of ``W`` are ``clamp(d, 0, 1)``.  Like the learnable weight of CGNN
        (Xhonneux et al. 2020, ICML, "Continuous graph neural networks"), ``W`` is symmetric
        positive semi-definite, so the field stays a diffusion (``A_hat - I`` has its eigenvalues
        in ``[-2, 0]``), and the orthogonal ``U`` also keeps the field's eigenvalues above -2,
        where explicit steps up to 1 stay stable.  Unconstrained, Adam moves every entry of a
        64 x 64 ``W`` by ``lr`` per step: on Cora it learned negative eigenvalues within 10
        epochs (an anti-diffusion, growing like ``exp(2 |lambda| t)``) and test accuracy fell
        below 50%.
        """
        if not self.learnable:
            return None
        basis = torch.linalg.matrix_exp(self.rotation - self.rotation.T)
        return (basis * self.spectrum.clamp(0, 1)) @ basis.T

    def set_adjacency(self, adjacency: torch.Tensor) -> None:
        """Use the sparse CSR matrix ``adjacency`` (symmetric) from now on."""
        self.n_nodes = adjacency.shape[0]
        self.register_buffer("crow", adjacency.crow_indices(), persistent=False)
        self.register_buffer("col", adjacency.col_indices(), persistent=False)
        self.register_buffer("values", adjacency.values(), persistent=False)

    @property
    def adjacency(self) -> torch.Tensor:
        return csr_matrix(self.crow, self.col, self.values, self.n_nodes)

    def forward(self, t: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        diffused = SymmetricSparseMM.apply(self.adjacency, x) - x
        return diffused @ self.weight if self.learnable else diffused


class DiffusionClassifier(nn.Module):
    """Input dropout -> linear encoder -> diffusion block (state at ``t_end``) -> decoder."""

    def __init__(self, n_features: int, hidden: int, n_classes: int, field: DiffusionField,
                 t_end: float, dropout: float, engine: dict[str, Any]) -> None:
        super().__init__()
        self.dropout = nn.Dropout(dropout)
        self.encoder = nn.Linear(n_features, hidden)
        self.block = FDEBlock(field, torch.tensor([0.0, t_end]), **engine)
        self.decoder = nn.Linear(hidden, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.block(self.encoder(self.dropout(x)))[-1])


class NodeClassification(Task):
    """Planetoid / karate / SBM node classification through one graph-diffusion FDE block."""

    name = "node_classification"
    params: ClassVar[dict[str, Any]] = {
        "dataset": "karate", "data_root": "", "download": False,
        "model": "linear", "hidden": 64, "epochs": 200, "lr": 0.01, "weight_decay": 5e-4,
        "dropout": 0.5, "patience": 50,
        # sbm only
        "n_nodes": 10_000, "n_classes": 5, "n_features": 32, "homophily": 0.8,
        "avg_degree": 10.0,
    }
    choices: ClassVar[dict[str, tuple[str, ...]]] = {"dataset": DATASETS, "model": MODELS}
    metrics: ClassVar[dict[str, str | None]] = {
        "test_accuracy": HIGHER, "val_accuracy": HIGHER, "train_loss": LOWER,
        "epochs_trained": None}

    @classmethod
    def skip(cls, config: dict[str, Any]) -> str | None:
        c = config
        if c["hidden"] < 1 or c["epochs"] < 1 or c["patience"] < 0:
            return "hidden and epochs must be >= 1, patience >= 0 (0: no early stopping)"
        if not (0 <= c["dropout"] < 1 and c["lr"] > 0 and c["weight_decay"] >= 0):
            return "dropout must be in [0, 1), lr > 0 and weight_decay >= 0"
        if c["dataset"] == "sbm" and not (
            2 <= c["n_classes"] <= c["n_nodes"] and c["n_features"] >= 1
            and 0 <= c["homophily"] <= 1 and c["avg_degree"] > 0
        ):
            return ("sbm needs 2 <= n_classes <= n_nodes, n_features >= 1, homophily in "
                    "[0, 1] and avg_degree > 0")
        return None

    # ---- setup ----------------------------------------------------------------------------
    def setup(self) -> None:
        c = self.config
        started = time.perf_counter()
        graph = load_graph(
            c["dataset"], data_root=c["data_root"], download=c["download"], seed=c["seed"],
            sbm={k: c[k] for k in ("n_nodes", "n_classes", "n_features", "homophily",
                                   "avg_degree")})
        self.n_classes = graph.n_classes
        self.x, self.y = graph.x.to(self.device), graph.y.to(self.device)
        self.masks = {name: getattr(graph, f"{name}_mask").to(self.device)
                      for name in ("train", "val", "test")}
        self._probe = self._probe_graph(graph)
        self.data_time_s = time.perf_counter() - started
        edges = graph.edge_index.shape[1]
        self.data = (f"{GRAPH_DESCRIPTIONS[c['dataset']]}: {graph.n_nodes} nodes, {edges} "
                     f"directed edges, {graph.x.shape[1]} features, {self.n_classes} classes")
        torch.manual_seed(c["seed"])
        field = DiffusionField(normalized_adjacency(graph.edge_index, graph.n_nodes),
                               c["hidden"], c["model"] == "learnable")
        self.model = DiffusionClassifier(
            graph.x.shape[1], c["hidden"], self.n_classes, field, c["t_end"], c["dropout"],
            self.engine_kwargs()).to(self.device)
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=c["lr"],
                                          weight_decay=c["weight_decay"])
        self.iterations = c["epochs"]
        self.epochs_trained, self._since_best = 0, 0
        self.best = {"val_accuracy": -1.0, "test_accuracy": math.nan, "epoch": 0}
        self._last_loss = torch.full((), math.nan)

    def _probe_graph(self, graph: Graph) -> dict[str, torch.Tensor] | None:
        """The gradient probe's data on graphs above :data:`PROBE_MAX_NODES` nodes: the
        subgraph induced by the first ones (a direct-mode probe of the whole of a 10^6-node
        graph in float64 would need more memory than the run it checks)."""
        if graph.n_nodes <= PROBE_MAX_NODES:
            return None
        k = PROBE_MAX_NODES
        return {"adjacency": normalized_adjacency(induced_subgraph(graph.edge_index, k), k),
                "x": self.x[:k], "y": self.y[:k], "mask": self.masks["train"][:k]}

    # ---- training -------------------------------------------------------------------------
    def loss(self, model: nn.Module) -> torch.Tensor:
        model.train()
        mask = self.masks["train"]
        loss = F.cross_entropy(model(self.x)[mask], self.y[mask])
        self._last_loss = loss.detach()
        self.epochs_trained += 1
        return loss

    def probe_loss(self, model: nn.Module) -> torch.Tensor:
        # ``model`` is the probe's own copy (Task.gradient_probe): eval mode turns dropout off
        # so that every gradient mode differentiates one deterministic function.
        model.eval()
        dtype = next(model.parameters()).dtype
        x, y, mask = self.x, self.y, self.masks["train"]
        if self._probe is not None:
            adjacency = self._probe["adjacency"].to(device=self.device, dtype=dtype)
            model.block.field.set_adjacency(adjacency)
            x, y, mask = self._probe["x"], self._probe["y"], self._probe["mask"]
        return F.cross_entropy(model(x.to(dtype))[mask], y[mask])

    def accuracies(self) -> dict[str, float]:
        """Accuracy of the current model on each split (no gradient, dropout off)."""
        self.model.eval()
        with torch.no_grad():
            correct = self.model(self.x).argmax(dim=1) == self.y
        self.model.train()
        return {name: correct[mask].float().mean().item() for name, mask in self.masks.items()}

    def after_iteration(self) -> bool:
        """Track the best validation accuracy; ``True`` after ``patience`` epochs without a
        better one."""
        accuracy = self.accuracies()
        if accuracy["val"] > self.best["val_accuracy"]:
            self.best = {"val_accuracy": accuracy["val"], "test_accuracy": accuracy["test"],
                         "epoch": self.epochs_trained}
            self._since_best = 0
        else:
            self._since_best += 1
        patience = self.config["patience"]
        return patience > 0 and self._since_best >= patience

    # ---- evaluation -----------------------------------------------------------------------
    def evaluate(self) -> dict[str, float]:
        best = self.best
        if best["epoch"] == 0:  # no epoch was tracked (trained without the runner's hook)
            accuracy = self.accuracies()
            best = {"val_accuracy": accuracy["val"], "test_accuracy": accuracy["test"]}
        return {"test_accuracy": best["test_accuracy"], "val_accuracy": best["val_accuracy"],
                "train_loss": self._last_loss.item(), "epochs_trained": self.epochs_trained}


TASKS = [NodeClassification]
