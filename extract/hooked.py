"""HookedModel: a Hugging Face causal LM with TransformerLens-style hooks.

    model = load_model("smollm2-135m-q4")
    logits, cache = model.run_with_cache(tokens, names=["blocks.15.hook_resid_pre"], stop_at_layer=15)
    logits = model.run_with_hooks(tokens, hooks=[("blocks.3.attn.hook_z", fn)])

A hook function is called as fn(activation, hook) with `hook` the resolved Site (name, layer);
it may return a replacement tensor. Hooks live only for the duration of one call and are
removed in a `finally`, also when the forward raises.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import ExitStack, contextmanager

import torch
from torch import nn

from extract import attention
from extract.norms import gain
from extract.sites import Site, get_module, layout_for, resolve, site_names

HookFn = Callable[[torch.Tensor, Site], "torch.Tensor | None"]


class _StopForward(Exception):
    pass


class HookedModel:
    def __init__(self, model: nn.Module, tokenizer, name: str = "custom", device: torch.device | None = None,
                 bos_token_id: int | None = None, weights: str = ""):
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.name = name
        self.weights = weights
        self.config = model.config
        self.layout = layout_for(model.config)
        self.device = device or next(model.parameters()).device
        self.bos_token_id = bos_token_id
        self.masked_lm = "MaskedLM" in type(model).__name__
        """An encoder trained to fill masked tokens (BERT family): bidirectional, no next token."""
        self.eos_token_id = getattr(tokenizer, "sep_token_id", None) if self.masked_lm else None
        """Appended by to_tokens for masked LMs ([SEP] / </s>), as they were trained."""
        cfg = model.config
        self.n_layers = cfg.num_hidden_layers
        self.d_model = cfg.hidden_size
        self.n_heads = cfg.num_attention_heads
        self.d_head = getattr(cfg, "head_dim", None) or self.d_model // self.n_heads
        self.d_mlp = getattr(cfg, "intermediate_size", None) or getattr(cfg, "n_inner", None) or 4 * self.d_model
        """Width of the MLP's hidden layer (mlp.hook_post)."""
        self.n_kv_heads = getattr(cfg, "num_key_value_heads", None) or self.n_heads
        self.d_vocab = cfg.vocab_size
        model.config._attn_implementation = attention.register()
        self._layers = get_module(model, self.layout.layers)

    @property
    def fingerprint(self) -> str:
        """A hash of the weights' content (every tensor's name, shape and 1024 values spread over it):
        what a reuse compares to tell that a model's weights changed, wherever they were loaded from."""
        import hashlib

        h = hashlib.blake2b(digest_size=16)
        with torch.no_grad():
            for name, p in self.model.state_dict().items():
                flat = p.detach().reshape(-1)
                h.update(f"{name}{tuple(p.shape)}".encode())
                h.update(flat[:: max(1, flat.numel() // 1024)][:1024].to("cpu", torch.float32).numpy().tobytes())
        return h.hexdigest()

    def __repr__(self) -> str:
        return (f"HookedModel({self.name}: {self.config.model_type}, {self.n_layers} layers, d_model={self.d_model}, "
                f"{self.n_heads} heads, device={self.device})")

    # ----------------------------------------------------------------- names and tokens
    def hook_names(self) -> list[str]:
        return site_names(self.layout, self.n_layers)

    def site(self, name: str) -> Site:
        return resolve(name, self.layout, self.n_layers)

    def to_tokens(self, text: str | Sequence[str], prepend_bos: bool = True) -> torch.Tensor:
        """Token ids [batch, pos]; all texts must tokenise to the same length (no padding)."""
        texts = [text] if isinstance(text, str) else list(text)
        ids = [self.tokenizer(t, add_special_tokens=False)["input_ids"] for t in texts]
        if prepend_bos and self.bos_token_id is not None:
            ids = [[self.bos_token_id] + i for i in ids]
        if self.eos_token_id is not None:
            ids = [i + [self.eos_token_id] for i in ids]
        if len({len(i) for i in ids}) != 1:
            raise ValueError(f"texts tokenise to different lengths {sorted({len(i) for i in ids})}; "
                             "pass them one at a time or make them align")
        return torch.tensor(ids, dtype=torch.long, device=self.device)

    def to_single_token(self, text: str) -> int:
        ids = self.tokenizer(text, add_special_tokens=False)["input_ids"]
        if len(ids) != 1:
            raise ValueError(f"{text!r} is {len(ids)} tokens for {self.name}, not one")
        return ids[0]

    def to_str_tokens(self, tokens: torch.Tensor | Sequence[int]) -> list[str]:
        """One string per token of a single sequence ([pos] or [1, pos])."""
        if isinstance(tokens, torch.Tensor):
            if tokens.ndim == 2 and tokens.shape[0] == 1:
                tokens = tokens[0]
            if tokens.ndim != 1:
                raise ValueError(f"to_str_tokens takes one sequence, got shape {tuple(tokens.shape)}")
            tokens = tokens.tolist()
        return [self.tokenizer.decode([i]) for i in tokens]

    def unembed_directions(self, directions: torch.Tensor) -> torch.Tensor:
        """Logits that residual-stream directions [n, d_model] promote: the final norm as a
        linear map (its scale frozen at 1, its bias left out) followed by the unembedding."""
        if self.masked_lm:
            raise ValueError(f"{self.name}'s masked-LM head applies a dense layer and a GELU before its norm: "
                             "residual directions have no linear logit readout")
        norm = get_module(self.model, self.layout.final_norm)
        d = directions.float().to(self.device)
        if isinstance(norm, nn.LayerNorm):
            d = d - d.mean(-1, keepdim=True)
        g = gain(norm, self.layout.norm_gain_offset)
        if g is not None:
            d = d * g
        return d @ get_module(self.model, self.layout.unembed).weight.float().T

    # ----------------------------------------------------------------- running
    def forward(self, tokens: torch.Tensor, **kwargs) -> torch.Tensor:
        tokens = tokens.to(self.device)
        return self.model(input_ids=tokens, use_cache=False, **kwargs).logits

    __call__ = forward

    def run_with_hooks(self, tokens: torch.Tensor, hooks: Iterable[tuple[str, HookFn]] = (),
                       stop_at_layer: int | None = None, **kwargs) -> torch.Tensor | None:
        """Forward with hooks attached; returns logits, or None when stopped early."""
        with self.hooks(hooks, stop_at_layer=stop_at_layer):
            try:
                return self.forward(tokens, **kwargs)
            except _StopForward:
                return None

    @torch.no_grad()
    def run_with_cache(self, tokens: torch.Tensor, names: Iterable[str] | str | Callable[[str], bool] | None = None,
                       stop_at_layer: int | None = None, hooks: Iterable[tuple[str, HookFn]] = (),
                       cache_device: torch.device | str | None = None, **kwargs) -> tuple[torch.Tensor | None, dict]:
        """(logits or None if stopped early, {hook name: activation}).

        names: a list, one name, a filter function (TransformerLens' names_filter) or None for all.
        stop_at_layer=L runs embeddings and blocks 0..L-1 only (L = n_layers: all blocks, no final
        norm or unembedding); every cached site must lie before the stop.
        """
        if names is None:
            names = self.hook_names()
        elif isinstance(names, str):
            names = [names]
        elif callable(names):
            names = [n for n in self.hook_names() if names(n)]
        names = list(names)
        cache: dict[str, torch.Tensor] = {}

        def store(act: torch.Tensor, hook: Site) -> None:
            cache[hook.name] = act.detach() if cache_device is None else act.detach().to(cache_device)

        logits = self.run_with_hooks(tokens, [*hooks, *((n, store) for n in names)], stop_at_layer=stop_at_layer, **kwargs)
        return logits, cache

    # ----------------------------------------------------------------- hook plumbing
    @contextmanager
    def hooks(self, hooks: Iterable[tuple[str, HookFn]], stop_at_layer: int | None = None) -> Iterator[None]:
        hooks = list(hooks)
        sites = [self.site(name) for name, _ in hooks]
        if stop_at_layer is not None:
            if not 0 <= stop_at_layer <= self.n_layers:
                raise ValueError(f"stop_at_layer={stop_at_layer} out of range 0..{self.n_layers}")
            for site in sites:
                if self._depth(site) >= stop_at_layer:
                    raise ValueError(f"hook {site.name} lies beyond stop_at_layer={stop_at_layer}")
        with ExitStack() as stack:
            attn_hooks: dict[int, dict[str, HookFn]] = {}
            for site, (_, fn) in zip(sites, hooks):
                if site.kind == "attn":
                    module = get_module(self.model, site.module)
                    slot = attn_hooks.setdefault(id(module), {})
                    slot[site.key] = _compose(slot.get(site.key), _bind(fn, site))
                    setattr(module, attention.HOOKS_ATTR, slot)
                    stack.callback(_clear_attr, module)
                else:
                    stack.enter_context(self._attach(site, fn))
            if stop_at_layer is not None:
                stop_module = self._layers[stop_at_layer] if stop_at_layer < self.n_layers \
                    else get_module(self.model, self.layout.final_norm)
                stack.enter_context(_removing(stop_module.register_forward_pre_hook(_raise_stop)))
            yield

    def _depth(self, site: Site) -> int:
        """Last block that must run for a site to be read: embeddings -1, ln_final n_layers.
        resid_pre is a block's input, read before the block runs."""
        if site.layer is not None:
            return site.layer - 1 if site.name.endswith(".hook_resid_pre") else site.layer
        return self.n_layers if site.name.startswith("ln_final") else -1

    def min_stop_layer(self, names: Iterable[str]) -> int | None:
        """The smallest stop_at_layer that still reaches every named site (None: the whole model)."""
        stop = max(self._depth(self.site(n)) for n in names) + 1
        return stop if stop <= self.n_layers else None

    def _attach(self, site: Site, fn: HookFn):
        module = get_module(self.model, site.module)
        if site.kind == "out":
            def out_hook(mod, args, output):
                first = output[0] if isinstance(output, tuple) else output
                new = fn(first, site)
                if new is None:
                    return None
                return (new, *output[1:]) if isinstance(output, tuple) else new
            return _removing(module.register_forward_hook(out_hook))
        if site.kind in ("in", "heads"):
            n_heads, d_head = self.n_heads, self.d_head

            def in_hook(mod, args, kwargs):
                positional = len(args) > 0
                x = args[0] if positional else kwargs["hidden_states"]
                view = x.view(*x.shape[:-1], n_heads, d_head) if site.kind == "heads" else x
                new = fn(view, site)
                if new is None:
                    return None
                new = new.reshape(x.shape)
                return ((new, *args[1:]), kwargs) if positional else (args, {**kwargs, "hidden_states": new})
            return _removing(module.register_forward_pre_hook(in_hook, with_kwargs=True))
        if site.kind == "mid":
            return self._attach_mid(site, fn, module)
        raise AssertionError(site.kind)

    @contextmanager
    def _attach_mid(self, site: Site, fn: HookFn, attn_out_module: nn.Module):
        """resid_mid = resid_pre + attn_out. A replacement is applied by rewriting attn_out to
        (new resid_mid - resid_pre), so the layer's own residual add produces it."""
        saved: dict[str, torch.Tensor] = {}

        def keep_pre(mod, args, kwargs):
            saved["pre"] = args[0] if args else kwargs["hidden_states"]

        def on_attn_out(mod, args, output):
            attn = output[0] if isinstance(output, tuple) else output
            new = fn(saved["pre"] + attn, site)
            if new is None:
                return None
            attn = new - saved["pre"]
            return (attn, *output[1:]) if isinstance(output, tuple) else attn

        h1 = self._layers[site.layer].register_forward_pre_hook(keep_pre, with_kwargs=True)
        h2 = attn_out_module.register_forward_hook(on_attn_out)
        try:
            yield
        finally:
            h1.remove()
            h2.remove()
            saved.clear()


@contextmanager
def _removing(handle):
    try:
        yield handle
    finally:
        handle.remove()


def _raise_stop(*_):
    raise _StopForward


def _clear_attr(module: nn.Module) -> None:
    if hasattr(module, attention.HOOKS_ATTR):
        delattr(module, attention.HOOKS_ATTR)


def _bind(fn: HookFn, site: Site) -> Callable[[torch.Tensor], torch.Tensor | None]:
    return lambda t: fn(t, site)


def _compose(first, second):
    if first is None:
        return second

    def both(t):
        out = first(t)
        t = t if out is None else out
        out2 = second(t)
        return t if out2 is None else out2
    return both
