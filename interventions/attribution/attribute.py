"""Attribution graphs (Ameisen et al. 2025, "Circuit tracing") for per-layer transcoders.

For one prompt the model is made linear (interventions/attribution/frozen.py): attention patterns and
norm scales frozen, each MLP replaced by the writes of its transcoder's active features, its error
(real output - transcoder output) and its bias. An edge source -> target is the direct effect of
the source's write on the target through that linear model:

  targets  a feature's pre-activation (W_enc[:, f] . mlp_in[L, p]) or a top logit, demeaned
           (W_U[tok] - mean W_U) . final normed residual at the last position
  sources  feature (L, p, f): activation * W_dec[f] written at layer L's MLP output
           error (L, p): its vector there; token (p): its embedding

Each row (target) is one backward pass of the frozen model from the target; B targets go
through one backward of a B-fold copy of the prompt. A row plus the target's bias terms (b_enc,
decoder biases, attention and norm biases: everything that is not a node) sums to the target's
value exactly; `exactness` checks it for every graph.

Node order (rows = targets, columns = sources, as circuit-tracer): [features, errors (layer *
n_pos + pos), tokens, logits]. When more features are active than max_feature_nodes, rows are
computed for the most influential first (influence on the logits through the rows so far), and
the others leave the graph.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field

import numpy as np
import torch

from interventions.attribution import frozen
from mechinterp.formats.attribution_graph import Graph
from mechinterp.formats.bounds import bounds, check_bounds


@dataclass(frozen=True)
class AttributionConfig:
    max_n_logits: int = field(default=10, metadata=bounds(1))
    """Most logit nodes: the top tokens covering desired_logit_prob of the probability, at most this many."""
    desired_logit_prob: float = field(default=0.95, metadata=bounds(0, 1, open_low=True))
    """Probability the logit nodes cover."""
    batch: int = field(default=64, metadata=bounds(1))
    """Targets per backward pass (the prompt is copied this many times in the frozen forward; 32 takes
    about 0.5 GB less on a 64-token prompt and 20% longer)."""
    max_feature_nodes: int = field(default=8192, metadata=bounds(1))
    """Most feature rows computed (the most influential first); the rest leave the graph."""
    update_interval: int = field(default=16, metadata=bounds(1))
    """Batches between updates of the influence ranking when features are selected."""
    target_tokens: tuple[int, ...] = field(default=(), metadata={**bounds(0), "repeat": True, "flag": "target_token"})
    """Token ids whose logits the graph explains (circuit-tracer's attribution targets; repeatable);
    none: the top tokens covering desired_logit_prob."""
    sink_positions: int = field(default=1, metadata=bounds(1))
    """Leading positions (BOS first) whose MLP outputs stay real, with no feature or error nodes: their
    writes become bias (circuit-tracer: 1; 4 for Gemma instruct models)."""

    def __post_init__(self):
        check_bounds(self)


@dataclass
class _Prompt:
    """Per-prompt quantities: active features, their writes and the error and bias writes."""
    features: torch.Tensor      # [n, 3] (layer, pos, feature), ordered
    activations: torch.Tensor   # [n]
    pre: torch.Tensor           # [n] pre-activations (the feature targets' values)
    errors: torch.Tensor        # [n_layers, pos, d]
    writes: dict                # layer -> [pos, d]: features + error + bias = mlp_out - skip(mlp_in)
    bias_writes: dict           # layer -> [pos, d]: the part that is no node (b_dec; all of it at BOS)


def _features(model, tcs, cache: frozen.PromptCache) -> _Prompt:
    feats, acts, pres, errors, writes, biases = [], [], [], [], {}, {}
    real = cache.real[:, None]
    for L in range(model.n_layers):
        tc, x, y = tcs[L], cache.mlp_in[L][0].float(), cache.mlp_out[L][0].float()
        if tc.apply_b_dec_to_input:
            raise ValueError(f"{tc.path} centres its input by b_dec; a transcoder reads its input as is")
        f = tc.encode(x) * ~real
        skip = x @ tc.W_skip.T if hasattr(tc, "W_skip") else torch.zeros_like(y)
        recon = f @ tc.W_dec + tc.b_dec + skip
        errors.append(torch.where(real, torch.zeros_like(y), y - recon))
        writes[L] = y - skip
        biases[L] = torch.where(real, y - skip, tc.b_dec.expand_as(y))
        pos, idx = f.nonzero(as_tuple=True)
        feats.append(torch.stack([torch.full_like(pos, L), pos, idx], 1))
        acts.append(f[pos, idx])
        pres.append(tc.pre_acts(x)[pos, idx])
    return _Prompt(torch.cat(feats), torch.cat(acts), torch.cat(pres), torch.stack(errors), writes, biases)


def logit_targets(model, logits: torch.Tensor, max_n: int, prob: float,
                  targets: tuple[int, ...] = ()) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(token ids, probabilities, demeaned unembedding rows [k, d]) of the `targets`, or else of the
    smallest set of top tokens covering `prob` of the last position's distribution, at most max_n."""
    probs = torch.softmax(logits[0, -1].float(), -1)
    W_U = model.model.get_output_embeddings().weight.float()
    if targets:
        bad = [t for t in targets if t >= len(probs)]
        if bad:
            raise ValueError(f"--target_token {bad[0]} is not a token id of {model.name} (0..{len(probs) - 1})")
        ids = torch.tensor(targets)
        return ids, probs[ids], W_U[ids] - W_U.mean(0)
    top = probs.topk(max_n)
    k = min(int(torch.searchsorted(top.values.cumsum(0), torch.tensor(prob))) + 1, max_n)
    return top.indices[:k], top.values[:k], W_U[top.indices[:k]] - W_U.mean(0)


class _Frozen:
    """The frozen model copied `batch` times, its autograd graph kept for many backward passes."""

    def __init__(self, model, tcs, cache, embed: torch.Tensor, writes: dict, batch: int):
        self.leaves = [embed.expand(batch, -1, -1).clone().requires_grad_()]
        self.leaves += [writes[L][None].expand(batch, -1, -1).clone().requires_grad_() for L in range(model.n_layers)]
        skips = {L: getattr(tcs[L], "W_skip", None) for L in range(model.n_layers)}

        def mlp(layer, x):
            write = self.leaves[1 + layer]
            return write if skips[layer] is None else write + x.float() @ skips[layer].T
        with frozen.replay(model, cache, self.leaves[0], mlp) as taps, \
                frozen.no_param_grads(model), torch.enable_grad():
            model.run_with_hooks(cache.tokens.expand(batch, -1), hooks=taps.hooks)
        self.taps, self.batch = taps, batch
        frozen.release_freed_memory()

    def values(self, prompt: _Prompt, tcs, logit_vecs: torch.Tensor) -> torch.Tensor:
        """Feature pre-activations and demeaned logits as this forward computes them (row 0)."""
        with torch.no_grad():
            pre = torch.zeros(len(prompt.features))
            for layer, tc in tcs.items():
                mine = prompt.features[:, 0] == layer
                p, f = prompt.features[mine, 1], prompt.features[mine, 2]
                pre[mine] = (self.taps.mlp_in[layer][0, p].float() * tc.W_enc[:, f].T).sum(1) + tc.b_enc[f]
            return torch.cat([pre, logit_vecs @ self.taps.resid_final[0, -1].float()])

    def grads(self, targets: list[tuple[int, int, torch.Tensor]]) -> list[torch.Tensor]:
        """d(target b) / d(every source leaf) for up to `batch` targets (layer or -1 for the logits,
        position, vector read there)."""
        outputs, grad_outputs = [], []
        for layer in sorted({t[0] for t in targets}):
            tensor = self.taps.resid_final if layer < 0 else self.taps.mlp_in[layer]
            inject = torch.zeros_like(tensor)
            for b, (L, p, vec) in enumerate(targets):
                if L == layer:
                    inject[b, p] = vec
            outputs.append(tensor)
            grad_outputs.append(inject)
        got = torch.autograd.grad(outputs, self.leaves, grad_outputs, retain_graph=True, allow_unused=True)
        return [torch.zeros_like(leaf) if g is None else g for g, leaf in zip(got, self.leaves)]


class _Sources:
    """Every source's write, laid out for one batched contraction with the gradients: the features'
    activation * W_dec rows padded per (layer, position) cell [n_layers * pos, k_max, d]."""

    def __init__(self, prompt: _Prompt, tcs: dict, embed: torch.Tensor, n_layers: int, n_pos: int):
        L, p, f = prompt.features.T
        cell = L * n_pos + p
        counts = torch.bincount(cell, minlength=n_layers * n_pos)
        first = torch.cumsum(counts, 0) - counts
        self.cell, self.slot = cell, torch.arange(len(cell)) - first[cell]  # features are ordered by cell
        self.dec = torch.zeros(n_layers * n_pos, max(int(counts.max()), 1), embed.shape[-1])
        for layer in range(n_layers):
            mine = L == layer
            self.dec[cell[mine], self.slot[mine]] = prompt.activations[mine, None] * tcs[layer].W_dec[f[mine]]
        self.errors, self.embed = prompt.errors, embed[0]

    def edges(self, grads: list[torch.Tensor]) -> torch.Tensor:
        """Rows [B, n_features + n_layers * pos + pos]: grad . write for every source."""
        g_embed, g_writes = grads[0], grads[1:]
        n_pos = g_embed.shape[1]
        per_cell = torch.cat([torch.bmm(g.transpose(0, 1), self.dec[L * n_pos:(L + 1) * n_pos].transpose(1, 2))
                              for L, g in enumerate(g_writes)])  # [n_layers * pos, B, k_max]
        features = per_cell[self.cell, :, self.slot].T
        errors = [torch.einsum("bpd,pd->bp", g, self.errors[L]) for L, g in enumerate(g_writes)]
        return torch.cat([features, *errors, torch.einsum("bpd,pd->bp", g_embed, self.embed)], 1)


def attribute(model, tcs: dict, tokens: torch.Tensor, cfg: AttributionConfig = AttributionConfig(),
              progress: bool = True) -> Graph:
    """The attribution graph of tokens [1, pos] (BOS first) through transcoders {layer: TorchSAE}."""
    t0 = time.time()
    n_layers, n_pos = model.n_layers, tokens.shape[1]
    if tokens.shape[1] <= cfg.sink_positions:
        raise ValueError(f"the prompt is {tokens.shape[1]} tokens with BOS, no more than --sink_positions "
                         f"{cfg.sink_positions}: nothing left to explain; pass a longer prompt")
    cache = frozen.record(model, tokens, cfg.sink_positions)
    prompt = _features(model, tcs, cache)
    logit_ids, logit_probs, logit_vecs = logit_targets(model, cache.logits, cfg.max_n_logits, cfg.desired_logit_prob,
                                                       cfg.target_tokens)
    sources = _Sources(prompt, tcs, cache.embed.float(), n_layers, n_pos)
    fz = _Frozen(model, tcs, cache, cache.embed.float(), prompt.writes, cfg.batch)
    n_feat, n_src = len(prompt.features), len(prompt.features) + n_layers * n_pos + n_pos

    def run(targets):
        return sources.edges(fz.grads(targets))

    logit_rows = torch.cat([run([(-1, n_pos - 1, v) for v in logit_vecs[i:i + cfg.batch]])[:len(logit_vecs[i:i + cfg.batch])]
                            for i in range(0, len(logit_vecs), cfg.batch)])
    feature_rows = torch.zeros(min(n_feat, cfg.max_feature_nodes), n_src)
    if n_feat > cfg.max_feature_nodes and progress:
        print(f"{n_feat:,} features are active; the graph gives rows to the {cfg.max_feature_nodes:,} of most influence "
              f"(--max_feature_nodes); the other {n_feat - cfg.max_feature_nodes:,} are left out of it", file=sys.stderr)
    order = _select_and_compute(prompt, tcs, run, logit_rows, logit_probs, feature_rows, cfg, progress, t0)
    exact = _exactness(model, tcs, cache, prompt, logit_vecs, fz, feature_rows, order, logit_rows)
    fz = run = None  # the frozen forward's graph (about 1 GB for 64 tokens) goes before the adjacency is built
    frozen.release_freed_memory()
    return _assemble(model, tokens, prompt, order, feature_rows, logit_rows, logit_ids, logit_probs, cfg, exact,
                     time.time() - t0)


def _select_and_compute(prompt, tcs, run, logit_rows, logit_probs, feature_rows, cfg, progress, t0) -> torch.Tensor:
    """Fill feature_rows; returns which active feature each row is. All of them (in layer order)
    when they fit, else the most influential first, re-ranked every update_interval batches."""
    n_feat, n_rows = len(prompt.features), len(feature_rows)
    chosen = torch.full((n_rows,), -1, dtype=torch.long)
    done = torch.zeros(n_feat, dtype=torch.bool)
    filled = 0
    while filled < n_rows:
        if n_rows == n_feat:
            group = torch.arange(n_feat)
        else:
            score = _feature_influence(logit_rows, logit_probs, feature_rows[:filled], chosen[:filled],
                                       prompt.features, n_feat)
            score[done] = -1
            group = score.topk(min(cfg.batch * cfg.update_interval, n_rows - filled)).indices
            group = group[prompt.features[group, 0].argsort(stable=True)]  # shallow layers: shorter backward
        for i in range(0, len(group), cfg.batch):
            part = group[i:i + cfg.batch]
            targets = [(int(L), int(p), tcs[int(L)].W_enc[:, int(f)]) for L, p, f in prompt.features[part].tolist()]
            feature_rows[filled:filled + len(part)] = run(targets)[:len(part)]
            chosen[filled:filled + len(part)] = part
            done[part] = True
            filled += len(part)
            if (filled // cfg.batch) % cfg.update_interval == 0:
                frozen.release_freed_memory()
            if progress:
                rate = filled / (time.time() - t0)
                print(f"\rfeature rows {filled}/{n_rows}  {rate:.0f}/s  ETA {(n_rows - filled) / rate:.0f} s ",
                      end="", file=sys.stderr, flush=True)
    if progress:
        print(file=sys.stderr)
    return chosen


def _feature_influence(logit_rows, logit_probs, rows, chosen, features, n_feat) -> torch.Tensor:
    """Influence of every active feature on the logits through the rows computed so far: prune.influence
    in one pass, because a feature at layer L only reads writes of earlier layers (logit rows first,
    then the feature rows from the top layer down, one layer's rows at a time to bound memory)."""
    absL = logit_rows.abs()
    total = (logit_probs.float() / absL.sum(1).clamp_min(1e-10)) @ absL
    layer_of_row = features[chosen, 0]
    for layer in layer_of_row.unique().flip(0):
        idx = (layer_of_row == layer).nonzero()[:, 0]
        R = rows[idx].abs()
        total += (total[chosen[idx]] / R.sum(1).clamp_min(1e-10)) @ R
    return total[:n_feat]


def _exactness(model, tcs, cache, prompt, logit_vecs, fz, feature_rows, order, logit_rows) -> dict:
    """Each target's value = its row's sum + its bias, the bias being the target's value in the frozen
    model with every node's write set to zero (one more forward)."""
    zero = _Frozen(model, tcs, cache, torch.zeros_like(cache.embed.float()), prompt.bias_writes, 1)
    value, bias = fz.values(prompt, tcs, logit_vecs), zero.values(prompt, tcs, logit_vecs)
    idx = torch.cat([order, len(prompt.features) + torch.arange(len(logit_vecs))])
    row_sums = torch.cat([feature_rows.sum(1), logit_rows.sum(1)])
    residual = (value[idx] - bias[idx] - row_sums).abs()
    return dict(max_abs_residual=float(residual.max()), max_abs_value=float(value[idx].abs().max()),
                value_vs_real_forward=float((value[:len(prompt.pre)] - prompt.pre).abs().max()) if len(prompt.pre) else 0.0)


def _assemble(model, tokens, prompt, order, feature_rows, logit_rows, logit_ids, logit_probs, cfg, exact, seconds) -> Graph:
    n_layers, n_pos, n_feat = model.n_layers, tokens.shape[1], len(prompt.features)
    n_sel, n_logit = len(order), len(logit_ids)
    N = n_sel + n_layers * n_pos + n_pos + n_logit
    keep_cols = torch.cat([order, n_feat + torch.arange(n_layers * n_pos + n_pos)])
    A = torch.zeros(N, N)
    A[:n_sel, :N - n_logit] = feature_rows[:, keep_cols]
    A[N - n_logit:, :N - n_logit] = logit_rows[:, keep_cols]
    return Graph(adjacency=A.numpy(), features=prompt.features[order].numpy().astype(np.int32),
                 activations=prompt.activations[order].numpy(), tokens=tokens[0].cpu().numpy().astype(np.int64),
                 logit_tokens=logit_ids.numpy().astype(np.int64), logit_probs=logit_probs.numpy(),
                 errors_norm=prompt.errors.norm(dim=-1).numpy(), n_layers=n_layers,
                 meta=dict(model=model.name, n_active_features=n_feat, seconds=round(seconds, 2),
                           exactness=exact, config=cfg.__dict__))
