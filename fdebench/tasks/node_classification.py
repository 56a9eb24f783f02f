"""``node_classification``: fractional graph neural diffusion on a graph's nodes.

Model, the "linear" diffusion of GRAND (Chamberlain et al. 2021, ICML: GRAND-l, the diffusion
with a fixed attention matrix) and its fractional form in FROND (Kang et al. 2024, ICLR:
F-GRAND-l): input dropout
-> ``Linear(F -> hidden)`` -> one :class:`FDEBlock` solving, on ``[0, t_end]``,

* ``model: linear``:    ``D^alpha X = (A_hat - I) X``
* ``model: learnable``: ``D^alpha X = (A_hat - I) X W``, ``W`` (hidden x hidden) learnable,
  symmetric positive semi-definite and initialised near the identity (see
  :attr:`DiffusionField.weight`)
* ``model: attention``: ``D^alpha X = sigmoid(rho) (A_att - I) X + beta X(0)``, GRAND's
  attention diffusion (GRAND-l with its ``attention`` block) in FROND's fractional form (the
  ``att_frac`` block with the ``laplacian`` function): ``A_att`` is a multi-head scaled
  dot-product attention on the edges (self-loops included), row-stochastic, computed once per
  forward from the block's input ``X(0)`` and constant during the solve; ``rho`` and ``beta``
  are learnt scalars (see :class:`AttentionField`, :class:`GraphAttention`)

-> (``attention`` only: ReLU, as FROND's classifier) -> ``Dropout(output_dropout)`` ->
``Linear(hidden -> n_classes)`` on ``X(t_end)``.  ``A_hat = D^-1/2 (A + I) D^-1/2`` (see
:func:`.graph_data.normalized_adjacency`) is a sparse CSR matrix multiplied with
``torch.sparse.mm``; so is ``A_att``, on the same edges; nothing of size nodes x nodes is ever
dense.

Training is full-batch: one runner iteration is one epoch (Adam with weight decay, cross-entropy
on the training nodes).  After every epoch the runner calls :meth:`after_iteration`, which
measures validation and test accuracy (no gradient, dropout off), remembers the test accuracy at
the best validation accuracy so far, and stops training after ``patience`` epochs without a
better validation accuracy (``patience: 0`` never stops early).
"""

from __future__ import annotations

import math
import time
import warnings
from typing import Any, ClassVar

import torch
from torch import nn
from torch.autograd.function import once_differentiable
from torch.nn import functional as F

from .base import HIGHER, LOWER, FDEBlock, Task
from .graph_data import (
    DATASETS,
    PLANETOID,
    Graph,
    csr_matrix,
    induced_subgraph,
    load_graph,
    normalized_adjacency,
)
from .graph_data import DESCRIPTIONS as GRAPH_DESCRIPTIONS

__all__ = [
    "TASKS", "AttentionField", "DiffusionClassifier", "DiffusionField", "GraphAttention",
    "NodeClassification",
]

MODELS = ("linear", "learnable", "attention")
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


def _segment_softmax() -> Any:
    """``torch_geometric.utils.softmax``, imported on first use (torch_geometric takes seconds
    to import) and without its import-time ``torch.jit.script`` deprecation warnings."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*torch.jit.script", category=FutureWarning)
        from torch_geometric.utils import softmax

    return softmax


class EdgeWeightedMM(torch.autograd.Function):
    """``A @ X`` for a sparse ``A`` given by its edges (``field``'s CSR structure) and their
    ``values``, differentiable in ``values`` and ``X``.

    ``A`` need not be symmetric: the cotangent of ``X`` is ``A^T G``, a CSR product on the
    transposed structure that :meth:`AttentionField.set_adjacency` sorts once (``values``
    permuted per call); the cotangent of the value on edge ``(i, j)`` is ``G_i . X_j``, the
    product ``G X^T`` sampled on the edges (``torch.sparse.sampled_addmm``).
    """

    @staticmethod
    def forward(ctx, values: torch.Tensor, x: torch.Tensor, field: AttentionField) -> torch.Tensor:
        ctx.field = field
        ctx.save_for_backward(values, x)
        return torch.sparse.mm(csr_matrix(field.crow, field.col, values, field.n_nodes), x)

    @staticmethod
    @once_differentiable
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor | None, torch.Tensor | None, None]:
        values, x = ctx.saved_tensors
        field = ctx.field
        grad_values = grad_x = None
        if ctx.needs_input_grad[0]:
            pattern = csr_matrix(field.crow, field.col, values, field.n_nodes)
            grad_values = torch.sparse.sampled_addmm(pattern, grad, x.T, beta=0.0).values()
        if ctx.needs_input_grad[1]:
            transposed = csr_matrix(field.crow_t, field.col_t, values[field.perm_t],
                                    field.n_nodes)
            grad_x = torch.sparse.mm(transposed, grad)
        return grad_values, grad_x, None


class GraphAttention(nn.Module):
    """Multi-head scaled dot-product attention on a graph's edges, row-normalised.

    On edge ``(i, j)`` (``j`` a neighbour of ``i`` or ``i`` itself) head ``h`` scores
    ``s_h(i, j) = (W_Q^h x_i + b_Q^h) . (W_K^h x_j + b_K^h) / sqrt(d_k)``, ``d_k = attention_dim
    / heads``, and the weights are ``softmax_j s_h(i, j)`` over ``i``'s neighbourhood
    (``torch_geometric.utils.softmax``): each head's matrix is row-stochastic, and so is their
    mean, the diffusion's ``A_att``.

    As GRAND's ``SpGraphTransAttentionLayer`` (twitter-research/graph-neural-pde,
    ``function_transformer_attention.py``; FROND keeps it): ``attention_type: scaled_dot`` (the
    code's ``sqrt(d_k)``; the GRAND paper's eq. writes ``d_k``), query and key ``Linear`` layers
    with bias whose weights start at the constant ``1e-5`` (their ``init_weights``), so the first
    attention is nearly uniform over each neighbourhood (``A_att ~ D^-1 (A + I)``, a random-walk
    diffusion), and no dropout on the weights.  Their value and output layers (``V``, ``Wout``)
    are left out: the ``laplacian`` function never uses them.  The normalisation is GRAND's
    default softmax over each node's neighbours (``attention_norm_idx: 0``); FROND's Cora
    parameters (``best_params.py``) normalise over columns with ``squareplus`` instead, which
    makes ``A_att`` column-stochastic, not a weighted mean of each node's neighbours.
    """

    def __init__(self, hidden: int, heads: int, attention_dim: int) -> None:
        super().__init__()
        self.heads, self.d_k = heads, attention_dim // heads
        self.query = nn.Linear(hidden, attention_dim)
        self.key = nn.Linear(hidden, attention_dim)
        for layer in (self.query, self.key):
            nn.init.constant_(layer.weight, 1e-5)

    def forward(self, x: torch.Tensor, row: torch.Tensor, col: torch.Tensor) -> torch.Tensor:
        """The weights on the edges ``(row[e], col[e])`` (``E x heads``), each head's summing
        to 1 over every node's edges."""
        n = x.shape[0]
        query = self.query(x).view(n, self.heads, self.d_k)
        key = self.key(x).view(n, self.heads, self.d_k)
        scores = (query[row] * key[col]).sum(dim=-1) / math.sqrt(self.d_k)
        return _segment_softmax()(scores, row, num_nodes=n)


class AttentionField(nn.Module):
    """``f(t, X) = sigmoid(rho) (A_att - I) X + beta X(0)``, ``A_att`` the mean over heads of
    :class:`GraphAttention`'s weights, computed from the block's input by :meth:`attend`.

    As FROND's ``att_frac`` block with the ``laplacian`` function (zknus/ICLR2024-FROND:
    ``AttODEblock_FRAC.forward`` sets the attention from the block's input once per forward,
    ``LaplacianODEFunc`` multiplies by its mean over heads and returns ``sigmoid(alpha_train)
    (A X - X) + beta_train X(0)`` with ``add_source``, which FROND's Cora parameters set; both
    scalars start at 0, and ``X(0)`` is kept detached, as their ``set_x0`` does).  The edges
    are those of :func:`.graph_data.normalized_adjacency`'s CSR structure (undirected, one
    self-loop per node: GRAND's ``add_remaining_self_loops`` with weight 1); its values are
    not used.

    Inside the solve the field is linear in ``X`` with the constant sparse matrix ``A_att``,
    whose values depend on the attention's parameters: :meth:`solve_params` hands the engine
    those values (with ``rho`` and ``beta``), so every gradient mode produces their cotangent and
    autograd carries it on to ``W_Q`` and ``W_K``.  Call :meth:`attend` before each solve and
    not again before its backward pass (the backward pass of the step-wise and continuous modes
    evaluates the field again).
    """

    def __init__(self, adjacency: torch.Tensor, hidden: int, heads: int,
                 attention_dim: int) -> None:
        super().__init__()
        self.set_adjacency(adjacency)
        self.attention = GraphAttention(hidden, heads, attention_dim)
        self.rate_logit = nn.Parameter(torch.zeros(()))  # FROND's alpha_train
        self.source = nn.Parameter(torch.zeros(()))  # FROND's beta_train
        self.values: torch.Tensor | None = None
        self.x0: torch.Tensor | None = None

    def set_adjacency(self, adjacency: torch.Tensor) -> None:
        """Diffuse on the edges of the sparse CSR matrix ``adjacency`` (its structure only)
        from now on; forgets the attention (call :meth:`attend` again)."""
        n = adjacency.shape[0]
        crow, col = adjacency.crow_indices(), adjacency.col_indices()
        row = torch.repeat_interleave(torch.arange(n, device=crow.device), crow.diff())
        perm_t = torch.argsort(col * n + row)  # the edges in the order of A^T's rows
        counts_t = torch.bincount(col, minlength=n)
        self.n_nodes = n
        for name, value in {"crow": crow, "col": col, "row": row, "perm_t": perm_t,
                            "col_t": row[perm_t],
                            "crow_t": torch.cat([counts_t.new_zeros(1), counts_t.cumsum(0)])
                            }.items():
            self.register_buffer(name, value, persistent=False)
        self.values = self.x0 = None

    def attend(self, x0: torch.Tensor) -> None:
        """Compute ``A_att``'s values from the block's input ``x0`` (and keep ``x0``)."""
        self.values = self.attention(x0, self.row, self.col).mean(dim=1)
        self.x0 = x0.detach()

    @property
    def attention_matrix(self) -> torch.Tensor:
        """``A_att`` as a sparse CSR tensor (after :meth:`attend`)."""
        return csr_matrix(self.crow, self.col, self._values(), self.n_nodes)

    def solve_params(self) -> list[torch.Tensor]:
        """What the solve differentiates: ``A_att``'s values, ``rho`` and ``beta``."""
        return [self._values(), self.rate_logit, self.source]

    def _values(self) -> torch.Tensor:
        if self.values is None:
            raise RuntimeError("AttentionField: call attend(x0) before solving")
        return self.values

    def forward(self, t: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        diffused = EdgeWeightedMM.apply(self._values(), x, self) - x
        return torch.sigmoid(self.rate_logit) * diffused + self.source * self.x0


class DiffusionClassifier(nn.Module):
    """Input dropout -> linear encoder -> diffusion block (state at ``t_end``) -> ``head`` ->
    decoder.

    ``head`` acts on the block's output: ``Dropout(output_dropout)`` (nothing when 0), after a
    ReLU for an :class:`AttentionField` (FROND's and GRAND's ``GNN.forward``: activation, then
    their ``dropout``, then the decoder), whose attention it computes from the block's input
    before each solve.
    """

    def __init__(self, n_features: int, hidden: int, n_classes: int,
                 field: DiffusionField | AttentionField, t_end: float, dropout: float,
                 engine: dict[str, Any], output_dropout: float = 0.0) -> None:
        super().__init__()
        self.dropout = nn.Dropout(dropout)
        self.encoder = nn.Linear(n_features, hidden)
        self.block = FDEBlock(field, torch.tensor([0.0, t_end]), **engine)
        head = [nn.ReLU()] if isinstance(field, AttentionField) else []
        head += [nn.Dropout(output_dropout)] if output_dropout > 0 else []
        self.head = nn.Sequential(*head)
        self.decoder = nn.Linear(hidden, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x0 = self.encoder(self.dropout(x))
        if isinstance(self.block.field, AttentionField):
            self.block.field.attend(x0)
        return self.decoder(self.head(self.block(x0)[-1]))


class NodeClassification(Task):
    """Planetoid / karate / SBM node classification through one graph-diffusion FDE block."""

    name = "node_classification"
    params: ClassVar[dict[str, Any]] = {
        "dataset": "karate", "data_root": "", "download": False, "normalize_features": True,
        "model": "linear", "hidden": 64, "epochs": 200, "lr": 0.01, "weight_decay": 5e-4,
        "dropout": 0.5, "output_dropout": 0.0, "patience": 50,
        # attention only
        "heads": 8, "attention_dim": 128,
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
        if not (0 <= c["dropout"] < 1 and 0 <= c["output_dropout"] < 1 and c["lr"] > 0
                and c["weight_decay"] >= 0):
            return "dropout and output_dropout must be in [0, 1), lr > 0 and weight_decay >= 0"
        if c["model"] == "attention" and not (
            c["heads"] >= 1 and c["attention_dim"] >= 1 and c["attention_dim"] % c["heads"] == 0
        ):
            return (f"attention needs heads >= 1 dividing attention_dim, got heads="
                    f"{c['heads']}, attention_dim={c['attention_dim']}")
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
                                   "avg_degree")},
            normalize_features=c["normalize_features"])
        self.n_classes = graph.n_classes
        self.x, self.y = graph.x.to(self.device), graph.y.to(self.device)
        self.masks = {name: getattr(graph, f"{name}_mask").to(self.device)
                      for name in ("train", "val", "test")}
        self._probe = self._probe_graph(graph)
        self.data_time_s = time.perf_counter() - started
        edges = graph.edge_index.shape[1]
        raw = " (raw, not row-normalised)" if (c["dataset"] in PLANETOID
                                               and not c["normalize_features"]) else ""
        self.data = (f"{GRAPH_DESCRIPTIONS[c['dataset']]}: {graph.n_nodes} nodes, {edges} "
                     f"directed edges, {graph.x.shape[1]} features{raw}, {self.n_classes} "
                     "classes")
        torch.manual_seed(c["seed"])
        adjacency = normalized_adjacency(graph.edge_index, graph.n_nodes)
        if c["model"] == "attention":
            field = AttentionField(adjacency, c["hidden"], c["heads"], c["attention_dim"])
        else:
            field = DiffusionField(adjacency, c["hidden"], c["model"] == "learnable")
        self.model = DiffusionClassifier(
            graph.x.shape[1], c["hidden"], self.n_classes, field, c["t_end"], c["dropout"],
            self.engine_kwargs(), c["output_dropout"]).to(self.device)
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
