"""The node_classification task: graphs, the sparse diffusion field, data sources, learning,
early stopping and gradient agreement."""

from __future__ import annotations

import copy
import math
import shutil
import time
from functools import partial
from pathlib import Path

import pytest
import task_setup
import torch

from fdebench.runner.suite_file import SuiteError, parse_suite
from fdebench.tasks import get_task
from fdebench.tasks import graph_data as gd
from fdebench.tasks import node_classification as nc
from fdebench.tasks.image_data import DataMissingError
from fdebench.tasks.node_classification import (
    AttentionField,
    DiffusionField,
    EdgeWeightedMM,
    NodeClassification,
)

MODES = ("direct", "adjoint", "checkpoint")
SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
SHARED_PLANETOID = SHARED_DATA / "planetoid"


pytestmark = pytest.mark.usefixtures("one_thread")


config = partial(task_setup.config, NodeClassification)
make = partial(task_setup.make, NodeClassification)


def drive(task: NodeClassification) -> dict[str, float]:
    """Train as the runner does (hook after every epoch, stop when it says so), evaluate."""
    task.fit()
    return task.evaluate()


def dense(adjacency: torch.Tensor) -> torch.Tensor:
    return adjacency.to_dense()


# ---- graphs ---------------------------------------------------------------------------------
def test_symmetric_normalisation():
    # a triangle 0-1-2 plus a pendant 3 on node 2; one edge given twice (both directions), one
    # self-loop, node 4 isolated
    edges = torch.tensor([[0, 1, 2, 1, 2, 1], [1, 2, 0, 0, 3, 1]])
    a_hat = dense(gd.normalized_adjacency(edges, 5)).double()
    a = torch.zeros(5, 5, dtype=torch.float64)
    for i, j in [(0, 1), (1, 2), (2, 0), (2, 3)]:
        a[i, j] = a[j, i] = 1
    a += torch.eye(5, dtype=torch.float64)
    d = a.sum(1).rsqrt()
    torch.testing.assert_close(a_hat, d[:, None] * a * d[None, :], rtol=1e-6, atol=1e-7)
    assert torch.equal(a_hat, a_hat.T)
    assert a_hat[4, 4] == 1.0  # an isolated node keeps its own state


def test_sparse_field_matches_dense_reference():
    gen = torch.Generator().manual_seed(0)
    edges = torch.randint(12, (2, 30), generator=gen)
    adjacency = gd.normalized_adjacency(edges, 12)
    laplacian = dense(adjacency).double() - torch.eye(12, dtype=torch.float64)
    x = torch.randn(12, 4, generator=gen, dtype=torch.float64, requires_grad=True)
    for learnable in (False, True):
        field = DiffusionField(adjacency, 4, learnable).double()
        out = field(torch.tensor(0.0), x)
        weight = field.weight if learnable else torch.eye(4, dtype=torch.float64)
        reference = laplacian @ x @ weight
        torch.testing.assert_close(out, reference)
        cotangent = torch.randn(12, 4, generator=gen, dtype=torch.float64)
        (grad,) = torch.autograd.grad(out, x, cotangent)
        (grad_ref,) = torch.autograd.grad(reference, x, cotangent)
        torch.testing.assert_close(grad, grad_ref)
    eigenvalues = torch.linalg.eigvalsh(DiffusionField(adjacency, 4, True).weight.detach())
    assert eigenvalues.min() > 0.9 and eigenvalues.max() <= 1 + 1e-6  # near the identity


def test_sbm_is_labelled_synthetic():
    task = make(dataset="sbm", n_nodes=200, epochs=1)
    assert task.data.startswith("synthetic") and "200 nodes" in task.data


def test_sbm_sizes_homophily_and_seeds():
    args = {"n_nodes": 4000, "n_classes": 4, "n_features": 8, "homophily": 0.7,
            "avg_degree": 8.0}
    graph = gd.stochastic_block_model(**args, seed=0)
    src, dst = graph.edge_index
    assert graph.x.shape == (4000, 8) and graph.n_nodes == 4000 and graph.n_classes == 4
    assert (src != dst).all()
    assert abs(len(src) - 4000 * 8 / 2) < 0.01 * 4000 * 8 / 2
    assert abs((graph.y[src] == graph.y[dst]).double().mean().item() - 0.7) < 0.02
    assert (torch.bincount(graph.y) > 800).all()
    masks = graph.train_mask.int() + graph.val_mask.int() + graph.test_mask.int()
    assert (masks == 1).all()
    same = gd.stochastic_block_model(**args, seed=0)
    assert torch.equal(same.edge_index, graph.edge_index) and torch.equal(same.x, graph.x)
    assert not torch.equal(gd.stochastic_block_model(**args, seed=1).edge_index, graph.edge_index)


def test_sbm_is_linear_in_the_edges():
    # a dense 10^5 x 10^5 matrix would need 40 GB: building this at all shows there is none
    start = time.perf_counter()
    graph = gd.stochastic_block_model(100_000, 5, 4, 0.8, 10.0, seed=0)
    adjacency = gd.normalized_adjacency(graph.edge_index, graph.n_nodes)
    assert time.perf_counter() - start < 20
    assert adjacency.layout == torch.sparse_csr
    assert 100_000 * 10 < adjacency.values().numel() <= 100_000 * 11  # both directions + loops


def test_stratified_split_keeps_every_class_in_every_split():
    karate = gd.load_karate(seed=0)
    for mask in (karate.train_mask, karate.val_mask, karate.test_mask):
        assert set(karate.y[mask].tolist()) == {0, 1, 2, 3}
    assert (karate.train_mask.sum(), karate.val_mask.sum(), karate.test_mask.sum()) == (18, 8, 8)
    y = torch.arange(100) % 2
    assert not torch.equal(gd.stratified_split(y, 0)[0], gd.stratified_split(y, 1)[0])


# ---- the task -------------------------------------------------------------------------------
def test_registered_and_skips():
    assert get_task("node_classification") is NodeClassification
    suite = {"name": "s", "tasks": [{"task": "node_classification", "dataset": "ogbn-arxiv",
                                     "model": "gat"}]}
    with pytest.raises(SuiteError) as info:
        parse_suite(suite)
    assert sorted(info.value.problems) == [
        "<suite>: tasks[0].dataset: unknown value 'ogbn-arxiv'; valid values: citeseer, cora, "
        "karate, pubmed, sbm",
        "<suite>: tasks[0].model: unknown value 'gat'; valid values: attention, learnable, linear"]
    assert NodeClassification.skip(config(dataset="sbm", n_classes=1))
    assert "dividing attention_dim" in NodeClassification.skip(
        config(model="attention", heads=3, attention_dim=8))
    assert NodeClassification.skip(config(model="linear", heads=3, attention_dim=8)) is None
    assert NodeClassification.skip(config(output_dropout=1.0))


@pytest.mark.parametrize("model", ["linear", "learnable", "attention"])
def test_karate_through_the_runner(model):
    from fdebench.runner import Measure, RunDescription
    from fdebench.runner.execute import execute

    cfg = config(model=model, epochs=40, patience=0, t_end=2.0, step_size=0.2,
                 gradient="adjoint")
    record = execute(RunDescription(
        suite="t", run_id="r", task="node_classification", config=cfg, config_hash="h",
        device="cpu", measure=Measure(warmup_iters=1, timed_iters=5, time_limit_s=60, threads=1)))
    assert record["status"] == "ok", record["traceback"]
    assert record["test_accuracy"] >= 0.75  # observed 0.875-1.0 on 8 test nodes (4 classes)
    assert record["val_accuracy"] >= 0.5 and math.isfinite(record["train_loss"])
    assert record["epochs_trained"] == record["iterations"] == 40
    assert record["nfe_forward"] == 10 and record["grad_rel_err"] < 1e-10
    assert record["peak_mem_bytes"] > 0 and record["peak_rss_bytes"] > 0
    assert record["data"].startswith("Zachary's karate club") and "34 nodes" in record["data"]
    assert record["setup_time_s"] >= record["data_time_s"] > 0


def test_early_stopping_stops():
    task = make(epochs=500, patience=5, t_end=2.0, step_size=0.2)
    result = drive(task)
    assert result["epochs_trained"] < 500
    assert result["epochs_trained"] == task.best["epoch"] + 5
    assert result["val_accuracy"] == task.best["val_accuracy"]


@pytest.mark.parametrize("model", ["linear", "learnable"])
@pytest.mark.parametrize("mode", ["adjoint", "checkpoint"])
def test_gradient_probe_matches_direct_in_float64(model, mode):
    task = make(model=model, alpha=0.6, t_end=1.0, step_size=0.1, dropout=0.5)
    reference = task.gradient_probe("direct")
    assert reference.dtype == torch.float64 and reference.norm() > 0
    assert torch.equal(reference, task.gradient_probe("direct"))  # dropout is off in the probe
    grad = task.gradient_probe(mode)
    assert ((grad - reference).norm() / reference.norm()).item() < 1e-10


@pytest.mark.parametrize("model", ["linear", "attention"])
def test_large_graphs_probe_a_subgraph(monkeypatch, model):
    monkeypatch.setattr(nc, "PROBE_MAX_NODES", 150)
    task = make(dataset="sbm", n_nodes=400, n_classes=3, n_features=4, hidden=8,
                step_size=0.25, model=model, heads=2, attention_dim=8)
    assert task._probe["x"].shape == (150, 4)
    assert task._probe["adjacency"].shape == (150, 150)
    reference, grad = task.gradient_probe("direct"), task.gradient_probe("adjoint")
    assert ((grad - reference).norm() / reference.norm()).item() < 1e-10
    assert task.model.block.field.n_nodes == 400  # the probe changed its own copy only
    edges = torch.tensor([[0, 1, 5], [1, 7, 2]])
    assert gd.induced_subgraph(edges, 6).tolist() == [[0, 5], [1, 2]]


# ---- data sources ---------------------------------------------------------------------------
def test_missing_planetoid_is_a_clear_error(tmp_path, monkeypatch):
    empty = tmp_path / "nothing-here"
    monkeypatch.setenv("FDEBENCH_DATA", str(empty))
    with pytest.raises(DataMissingError) as info:
        make(dataset="cora")
    message = str(info.value)
    assert str(empty / "planetoid" / "Cora" / "raw") in message
    assert "FDEBENCH_DATA" in message and "data_root" in message and "download: true" in message
    assert len(message.splitlines()) == 1


def test_an_incomplete_planetoid_names_the_missing_file(tmp_path):
    raw = tmp_path / "planetoid" / "PubMed" / "raw"
    raw.mkdir(parents=True)
    for part in ("x", "tx", "y", "ty", "ally", "graph", "test.index"):
        (raw / f"ind.pubmed.{part}").write_bytes(b"")
    with pytest.raises(DataMissingError, match=r"1 of 8 files missing: ind\.pubmed\.allx"):
        make(dataset="pubmed", data_root=str(tmp_path))


@pytest.mark.skipif(not (SHARED_PLANETOID / "PubMed" / "raw").is_dir(), reason="no shared PubMed")
@pytest.mark.skipif((SHARED_PLANETOID / "PubMed" / "raw" / "ind.pubmed.allx").is_file(),
                    reason="the shared PubMed is complete")
def test_shared_pubmed_lacks_allx():
    with pytest.raises(DataMissingError, match=r"ind\.pubmed\.allx") as info:
        make(dataset="pubmed", data_root=str(SHARED_DATA))
    assert str(SHARED_PLANETOID / "PubMed" / "raw") in str(info.value)


@pytest.mark.skipif(not (SHARED_PLANETOID / "Cora" / "raw").is_dir(), reason="no shared Cora")
def test_cora_loads_from_a_copy_and_learns(tmp_path):
    root = tmp_path / "data"
    shutil.copytree(SHARED_PLANETOID / "Cora" / "raw", root / "planetoid" / "Cora" / "raw")
    before = sorted(p.name for p in root.rglob("*"))
    task = make(dataset="cora", data_root=str(root), alpha=1.0, t_end=10.0, step_size=1.0,
                epochs=30, patience=0)
    assert sorted(p.name for p in root.rglob("*")) == before  # processed in a temporary copy
    assert task.x.shape == (2708, 1433) and task.n_classes == 7
    assert [int(m.sum()) for m in task.masks.values()] == [140, 500, 1000]
    assert drive(task)["test_accuracy"] >= 0.7  # observed 0.78 after 30 epochs; chance ~0.3
    torch.testing.assert_close(task.x.sum(dim=1), torch.ones(2708))  # row-normalised
    raw = gd.load_graph("cora", data_root=str(root), normalize_features=False).x
    assert set(raw.unique().tolist()) == {0.0, 1.0} and torch.equal(raw > 0, task.x > 0)


# ---- the attention model --------------------------------------------------------------------
ATTENTION = {"model": "attention", "hidden": 8, "heads": 2, "attention_dim": 8, "t_end": 1.0,
             "step_size": 0.1}


def small_graph(seed: int = 0, n: int = 12) -> tuple[torch.Tensor, torch.Tensor]:
    """A random graph's normalised adjacency (its structure: edges both ways, self-loops)."""
    gen = torch.Generator().manual_seed(seed)
    return gd.normalized_adjacency(torch.randint(n, (2, 30), generator=gen), n), gen


def named_gradients(task: NodeClassification, mode: str, **overrides) -> dict[str, torch.Tensor]:
    """The probe's gradient under ``mode`` split by parameter name."""
    flat = task.gradient_probe(mode, **overrides)
    names = [(n, p.numel()) for n, p in task.model.named_parameters()]
    parts = flat.split([size for _, size in names])
    return {name: part for (name, _), part in zip(names, parts, strict=True)}


def test_attention_is_row_stochastic_on_each_neighbourhood():
    adjacency, gen = small_graph()
    field = AttentionField(adjacency, 6, heads=3, attention_dim=6).double()
    for layer in (field.attention.query, field.attention.key):  # away from the near-uniform start
        torch.nn.init.normal_(layer.weight, generator=gen)
    x0 = torch.randn(12, 6, generator=gen, dtype=torch.float64)
    field.attend(x0)
    heads = field.attention(x0, field.row, field.col)
    assert heads.shape == (len(field.col), 3) and (heads > 0).all()
    ones = torch.ones(12, dtype=torch.float64)
    for h in range(3):  # every head sums to 1 over each node's neighbours and itself
        rows = torch.zeros(12, dtype=torch.float64).index_add_(0, field.row, heads[:, h])
        torch.testing.assert_close(rows, ones)
    a_att = field.attention_matrix.to_dense()
    torch.testing.assert_close(a_att.sum(dim=1), ones)
    assert torch.equal(a_att != 0, dense(adjacency) != 0)  # on the edges and self-loops only
    assert not torch.allclose(a_att, a_att.T)  # not symmetric
    field.set_adjacency(adjacency)
    with pytest.raises(RuntimeError, match="attend"):
        field(torch.tensor(0.0), x0)


def test_attention_starts_near_a_random_walk():
    # GRAND's constant initial weights (1e-5): the first attention is nearly uniform
    adjacency, gen = small_graph()
    field = AttentionField(adjacency, 6, heads=2, attention_dim=4).double()
    field.attend(torch.randn(12, 6, generator=gen, dtype=torch.float64))
    a = (dense(adjacency) != 0).double()
    torch.testing.assert_close(field.attention_matrix.to_dense(), a / a.sum(1, keepdim=True),
                               rtol=0, atol=1e-3)


def test_edge_weighted_product_and_its_gradients():
    adjacency, gen = small_graph()
    field = AttentionField(adjacency, 4, heads=1, attention_dim=4)
    values = torch.rand(len(field.col), generator=gen, dtype=torch.float64, requires_grad=True)
    x = torch.randn(12, 4, generator=gen, dtype=torch.float64, requires_grad=True)
    a = torch.zeros(12, 12, dtype=torch.float64).index_put((field.row, field.col), values)
    torch.testing.assert_close(EdgeWeightedMM.apply(values, x, field), a @ x)
    assert torch.autograd.gradcheck(lambda v, y: EdgeWeightedMM.apply(v, y, field), (values, x))


@pytest.mark.parametrize("mode", ["adjoint", "checkpoint"])
def test_attention_exact_modes_match_direct_for_every_parameter(mode):
    task = make(**ATTENTION, alpha=0.6, dropout=0.5, output_dropout=0.5)
    reference, grads = named_gradients(task, "direct"), named_gradients(task, mode)
    attention = [n for n in reference if ".attention." in n]
    assert len(attention) == 4 and "block.field.rate_logit" in reference
    for name, ref in reference.items():
        assert ref.norm() > 0, name  # every parameter gets a gradient, the attention's too
        assert ((grads[name] - ref).norm() / ref.norm()).item() < 1e-10, name


@pytest.mark.parametrize(("mode", "alpha"), [("continuous", 0.6), ("paper", 0.6),
                                             ("backsolve", 1.0)])
def test_attention_approximate_modes_reach_the_attention(mode, alpha):
    task = make(**ATTENTION, alpha=alpha)
    reference, grads = named_gradients(task, "direct"), named_gradients(task, mode)
    for name, grad in grads.items():
        assert torch.isfinite(grad).all() and grad.norm() > 0, name
    flat = torch.cat(list(grads.values()))
    flat_ref = torch.cat(list(reference.values()))
    assert ((flat - flat_ref).norm() / flat_ref.norm()).item() < 0.05  # observed 4e-4 .. 0.011


def test_attention_direct_gradient_matches_finite_differences():
    task = make(**ATTENTION, alpha=0.6)
    grads = named_gradients(task, "direct")
    model = copy.deepcopy(task._initial).double()
    eps = 1e-6
    for name, index in [("block.field.attention.query.weight", (1, 2)),
                        ("block.field.attention.key.bias", (3,))]:
        parameter = model.get_parameter(name)
        original = parameter.data[index].item()
        losses = []
        for sign in (1, -1):
            parameter.data[index] = original + sign * eps
            with torch.no_grad():
                losses.append(task.probe_loss(model).item())
        parameter.data[index] = original
        finite_difference = (losses[0] - losses[1]) / (2 * eps)
        analytic = grads[name].view(parameter.shape)[index].item()
        assert analytic != 0
        assert abs(analytic - finite_difference) < 1e-6 * abs(analytic) + 1e-10, name
