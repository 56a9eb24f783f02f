"""Graph data for the ``node_classification`` task: loading, generating, normalising.

Every loader returns a :class:`Graph` on the CPU: float32 features, an edge list (either
direction; :func:`normalized_adjacency` symmetrises it), int64 labels and boolean
train/validation/test masks.  The task moves what it needs to its device once.

Data sets:

* ``cora``, ``citeseer``, ``pubmed``: torch_geometric's ``Planetoid`` with its standard public
  split (20 training nodes per class, 500 validation, 1000 test); features row-normalised to sum
  1, as GCN does (``normalize=False``: the raw bag-of-words, as GRAND's and FROND's
  ``get_dataset`` read them, without ``NormalizeFeatures``).  The raw files are looked up in
  ``<root>/planetoid/<Name>/raw`` (or ``<root>/<Name>/raw``), ``<root>`` resolved as in the
  image task (the ``data_root`` parameter, else ``$FDEBENCH_DATA``, else
  ``~/.cache/fdebench/data``).  They are always *copied* to a
  temporary folder and processed there, so the data folder is only read (it may be shared or
  read-only).  With ``download`` on and files missing, ``Planetoid`` downloads into
  ``<root>/planetoid/<Name>``.
* ``karate``: torch_geometric's bundled ``KarateClub`` (34 nodes, 4 classes, one-hot features,
  no download).  It ships one training node per class only, so the split is ours:
  :func:`stratified_split` (per class, seeded: half train, a quarter validation, the rest test).
* ``sbm``: :func:`stochastic_block_model`, a generated planted-partition graph for scaling
  studies (10^6 nodes in seconds, memory linear in the number of edges), split the same way.
"""

from __future__ import annotations

import contextlib
import io
import math
import shutil
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch

from .image_data import DataMissingError, resolve_root

__all__ = [
    "DATASETS", "DESCRIPTIONS", "PLANETOID", "Graph", "csr_matrix", "induced_subgraph",
    "load_graph", "load_karate", "load_planetoid", "normalized_adjacency", "stochastic_block_model",
    "stratified_split",
]

DATASETS = ("cora", "citeseer", "pubmed", "karate", "sbm")
#: how reports name each data set (generated data begin with "synthetic")
DESCRIPTIONS = {
    "cora": "Planetoid Cora (torch_geometric, public split)",
    "citeseer": "Planetoid CiteSeer (torch_geometric, public split)",
    "pubmed": "Planetoid PubMed (torch_geometric, public split)",
    "karate": "Zachary's karate club (torch_geometric, seeded split)",
    "sbm": "synthetic: a generated stochastic block model, not real data",
}
#: our dataset name -> Planetoid's folder (and ``name`` argument)
PLANETOID = {"cora": "Cora", "citeseer": "CiteSeer", "pubmed": "PubMed"}
#: :func:`stratified_split`'s train and validation fractions per class; the rest is test
SPLIT = (0.5, 0.25)


@dataclass
class Graph:
    """Node features ``x`` (n x F), ``edge_index`` (2 x E), labels ``y`` and split masks."""

    x: torch.Tensor
    edge_index: torch.Tensor
    y: torch.Tensor
    train_mask: torch.Tensor
    val_mask: torch.Tensor
    test_mask: torch.Tensor

    @property
    def n_nodes(self) -> int:
        return len(self.y)

    @property
    def n_classes(self) -> int:
        return int(self.y.max().item()) + 1


# ---- normalisation ----------------------------------------------------------------------------
def csr_matrix(crow: torch.Tensor, col: torch.Tensor, values: torch.Tensor,
               n_nodes: int) -> torch.Tensor:
    """An ``n_nodes x n_nodes`` sparse CSR tensor viewing the three arrays (no copy, no check)."""
    with warnings.catch_warnings():  # "Sparse CSR tensor support is in beta state"
        warnings.simplefilter("ignore", UserWarning)
        return torch.sparse_csr_tensor(crow, col, values, (n_nodes, n_nodes),
                                       check_invariants=False)


def normalized_adjacency(edge_index: torch.Tensor, n_nodes: int) -> torch.Tensor:
    """``A_hat = D^-1/2 (A + I) D^-1/2`` as a sparse CSR tensor (float32).

    ``A`` is the unweighted undirected adjacency of ``edge_index`` (both directions, duplicates
    and self-loops dropped), ``D`` the degree matrix of ``A + I`` (the renormalisation trick of
    Kipf & Welling 2017, eq. (2)).  Memory and time are linear in the edges (one sort).
    """
    src, dst = edge_index
    row, col = torch.cat([src, dst, torch.arange(n_nodes)]), torch.cat([dst, src,
                                                                        torch.arange(n_nodes)])
    key = torch.unique(row * n_nodes + col)  # sorted by row, then column; loops once each
    row, col = key // n_nodes, key % n_nodes
    counts = torch.bincount(row, minlength=n_nodes)
    inv_sqrt_deg = counts.float().rsqrt()
    values = inv_sqrt_deg[row] * inv_sqrt_deg[col]
    crow = torch.cat([torch.zeros(1, dtype=torch.long), counts.cumsum(0)])
    return csr_matrix(crow, col, values, n_nodes)


def induced_subgraph(edge_index: torch.Tensor, n_nodes: int) -> torch.Tensor:
    """The edges of ``edge_index`` between nodes ``0 .. n_nodes - 1``."""
    keep = (edge_index < n_nodes).all(dim=0)
    return edge_index[:, keep]


# ---- splits -----------------------------------------------------------------------------------
def stratified_split(y: torch.Tensor, seed: int,
                     fractions: tuple[float, float] = SPLIT) -> tuple[torch.Tensor, ...]:
    """Seeded train/validation/test masks holding ``fractions`` (train, validation) of every
    class, the rest test: a class of ``m`` nodes puts its ``ceil(m * f_train)`` first nodes of a
    random order in train, and so on."""
    n = len(y)
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    order = perm[torch.argsort(y[perm], stable=True)]  # grouped by class, random within
    counts = torch.bincount(y)
    starts = counts.cumsum(0) - counts
    rank = torch.empty(n, dtype=torch.long)
    rank[order] = torch.arange(n) - starts[y[order]]
    position = rank.double() / counts[y].double()  # in [0, 1) within the node's class
    train = position < fractions[0]
    val = ~train & (position < fractions[0] + fractions[1])
    return train, val, ~(train | val)


# ---- data sets --------------------------------------------------------------------------------
def _planetoid_files(name: str) -> list[str]:
    """The eight raw file names ``Planetoid`` reads (``ind.cora.x``, ...)."""
    parts = ("x", "tx", "allx", "y", "ty", "ally", "graph", "test.index")
    return [f"ind.{name.lower()}.{p}" for p in parts]


def _missing(name: str, raw: Path, missing: list[str], download: bool,
             cause: BaseException | None) -> DataMissingError:
    why = f"download failed ({type(cause).__name__}: {cause})".splitlines()[0] if download \
        else "download is off"
    files = f"{len(missing)} of 8 files missing: {', '.join(missing)}"
    if len(missing) < 8:
        fix = (f"put the missing file{'s' if len(missing) > 1 else ''} into {raw} (the "
               "originals are in github.com/kimiyoung/planetoid, folder data/)")
    else:
        fix = (f"set the task parameter data_root or the environment variable FDEBENCH_DATA "
               f"to a folder holding planetoid/{name}/raw")
    return DataMissingError(f"{name} not found under {raw} ({files}; {why}). Fix: {fix}, or "
                            "set download: true (needs internet).")


def _datasets():
    """``torch_geometric.datasets``, imported on first use (it takes seconds) and without its
    import-time ``torch.jit.script`` deprecation warnings."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*torch.jit.script", category=FutureWarning)
        import torch_geometric.datasets

    return torch_geometric.datasets


def _read_planetoid(root: Path, name: str, normalize: bool) -> Graph:
    with contextlib.redirect_stderr(io.StringIO()):  # "Processing... Done!"
        data = _datasets().Planetoid(str(root), name)[0]
    x = data.x / data.x.sum(dim=1, keepdim=True).clamp_min(1.0) if normalize else data.x
    return Graph(x, data.edge_index, data.y, data.train_mask, data.val_mask, data.test_mask)


def load_planetoid(name: str, root: Path, download: bool, normalize: bool = True) -> Graph:
    """Planetoid ``name`` (``"Cora"``, ...) from ``root/planetoid/<name>/raw`` or
    ``root/<name>/raw``, processed in a temporary copy; downloaded if missing and ``download``;
    features row-normalised to sum 1 if ``normalize``."""
    files = _planetoid_files(name)
    candidates = [root / "planetoid" / name / "raw", root / name / "raw"]
    raw = next((c for c in candidates if all((c / f).is_file() for f in files)), None)
    if raw is None:
        home = next((c for c in candidates if c.is_dir()), candidates[0])
        missing = [f for f in files if not (home / f).is_file()]
        if not download:
            raise _missing(name, home, missing, download, None)
        try:
            return _read_planetoid(root / "planetoid", name, normalize)
        except Exception as exc:  # offline, or the download was refused
            raise _missing(name, home, missing, download, exc) from exc
    with tempfile.TemporaryDirectory(prefix="fdebench-planetoid-") as tmp:
        shutil.copytree(raw, Path(tmp) / name / "raw")
        return _read_planetoid(Path(tmp), name, normalize)


def load_karate(seed: int) -> Graph:
    """Zachary's karate club (torch_geometric's bundled copy) with a seeded stratified split."""
    data = _datasets().KarateClub()[0]
    return Graph(data.x, data.edge_index, data.y, *stratified_split(data.y, seed))


def stochastic_block_model(n_nodes: int, n_classes: int, n_features: int, homophily: float,
                           avg_degree: float, seed: int) -> Graph:
    """A seeded planted-partition stochastic block model with Gaussian class features.

    Labels are uniform over ``n_classes``.  ``round(n_nodes * avg_degree / 2)`` undirected edges
    are drawn, a fraction ``homophily`` of them inside a class (a uniform node, then a uniform
    node of its class) and the rest between classes (a uniform node, then a uniform node of
    another class, by rejection): the SBM with one within-class and one between-class
    probability, sampled with a fixed edge count (as G(n, m) is to G(n, p)), in memory linear in
    the edges, never an n x n matrix.  Self-loops drawn are dropped and duplicates merged, so
    the realised mean degree is a little below ``avg_degree`` for small classes.
    Features: a class mean drawn from ``N(0, 4 / n_features)`` per coordinate plus ``N(0, 1)``
    noise, so that features alone separate the classes only in part and the graph helps.
    """
    gen = torch.Generator().manual_seed(seed)
    y = torch.randint(n_classes, (n_nodes,), generator=gen)
    n_edges = round(n_nodes * avg_degree / 2)
    n_within = round(n_edges * homophily)
    counts = torch.bincount(y, minlength=n_classes)
    starts = counts.cumsum(0) - counts
    by_class = torch.argsort(y, stable=True)
    u = torch.randint(n_nodes, (n_within,), generator=gen)
    c = y[u]
    offset = (torch.rand(n_within, generator=gen, dtype=torch.float64) * counts[c]).long()
    v = by_class[starts[c] + torch.minimum(offset, counts[c] - 1)]
    a = torch.randint(n_nodes, (n_edges - n_within,), generator=gen)
    b = torch.randint(n_nodes, (n_edges - n_within,), generator=gen)
    while (same := y[a] == y[b]).any():
        b[same] = torch.randint(n_nodes, (int(same.sum()),), generator=gen)
    edge_index = torch.stack([torch.cat([u, a]), torch.cat([v, b])])
    edge_index = edge_index[:, edge_index[0] != edge_index[1]]
    means = torch.randn(n_classes, n_features, generator=gen) * (2 / math.sqrt(n_features))
    x = means[y] + torch.randn(n_nodes, n_features, generator=gen)
    return Graph(x, edge_index, y, *stratified_split(y, seed))


def load_graph(name: str, *, data_root: str = "", download: bool = False, seed: int = 0,
               sbm: dict | None = None, normalize_features: bool = True) -> Graph:
    """Data set ``name`` (one of :data:`DATASETS`); ``sbm`` holds
    :func:`stochastic_block_model`'s keyword arguments (all but ``seed``) for ``"sbm"``;
    ``normalize_features`` applies to the Planetoid sets."""
    if name in PLANETOID:
        return load_planetoid(PLANETOID[name], resolve_root(data_root), download,
                              normalize_features)
    if name == "karate":
        return load_karate(seed)
    if name == "sbm":
        return stochastic_block_model(**(sbm or {}), seed=seed)
    raise ValueError(f"unknown dataset {name!r}; valid: {', '.join(DATASETS)}")
