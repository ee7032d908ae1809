"""A user's own LLM as explainer and simulator: a local causal-LM folder (or a registry name), loaded
through the lab's own model code, or an OpenAI-compatible endpoint (POST URL/chat/completions).

    lm = open_llm("path/to/model" | "http://localhost:8000/v1", timeout_s=60)
    lm.generate(prompt, max_new_tokens=16) -> str
    lm.yes_probability([prompt, ...]) -> [P(yes) per prompt]   (local: from the logits of Yes / No;
                                                                 an endpoint: its answer, 1 or 0)

Prompts follow delphi's: the explainer sees a latent's top-activating contexts with the active
tokens marked <<like this>> and answers with a short phrase; the simulator sees a label and one
excerpt and answers whether the latent fires in it. A request that times out or answers garbage
raises LLMError; callers record it for that latent and go on.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import numpy as np
import torch

from mechinterp.formats.errors import LabError

EXPLAIN = ("Below are text excerpts where one feature of a language model is active; the tokens it is "
           "most active on are marked <<like this>>.\n\n{examples}\n\nIn a few words, what does the feature "
           "detect? Answer with a short phrase only.")
SIMULATE = ("A feature of a language model is active on: {label}\n\nText: {excerpt}\n\n"
            "Is the feature active anywhere in this text? Answer Yes or No.")


class LLMError(LabError):
    """An explainer that could not be loaded, did not answer, or answered garbage."""


def mark(tokens: list[str], acts: np.ndarray, frac: float = 0.3) -> str:
    """The excerpt's text with the tokens above frac x its maximum marked <<...>> (runs merged)."""
    hot = acts > frac * max(float(np.nanmax(acts)) if len(acts) else 0.0, 1e-12)
    out, inside = [], False
    for t, h in zip(tokens, hot):
        if h and not inside:
            out.append("<<")
        if not h and inside:
            out.append(">>")
        out.append(t)
        inside = bool(h)
    return "".join(out + ([">>"] if inside else []))


class LocalLM:
    def __init__(self, name: str, device: str = "auto"):
        from extract.models import load_model

        try:
            self.model = load_model(name, device=device)
        except (ValueError, OSError, KeyError) as e:
            raise LLMError(f"the explainer {name!r} is not a causal language model the lab can load "
                           f"({str(e).splitlines()[0]}); pass a Hugging Face causal-LM folder or an http(s) URL") from None
        self.name, self.tok = name, self.model.tokenizer
        ids = [self.tok.encode(w, add_special_tokens=False) for w in ("Yes", "No", " Yes", " No")]
        self.yes_no = [i[0] for i in ids]

    def _ids(self, prompt: str) -> list[int]:
        if getattr(self.tok, "chat_template", None):
            text = self.tok.apply_chat_template([{"role": "user", "content": prompt}], tokenize=False,
                                                add_generation_prompt=True)
            return self.tok.encode(text, add_special_tokens=False)
        return self.model.to_tokens(prompt)[0].tolist()

    @torch.inference_mode()
    def generate(self, prompt: str, max_new_tokens: int = 16) -> str:
        ids = torch.tensor([self._ids(prompt)], device=self.model.device)
        start, eos = ids.shape[1], self.tok.eos_token_id
        for _ in range(max_new_tokens):
            nxt = self.model(ids)[:, -1].argmax(-1, keepdim=True)
            if int(nxt) == eos or "\n" in self.tok.decode(nxt[0]):
                break
            ids = torch.cat([ids, nxt], 1)
        return self.tok.decode(ids[0, start:]).strip()

    @torch.inference_mode()
    def yes_probability(self, prompts: list[str], batch: int = 16) -> np.ndarray:
        out = []
        for b in range(0, len(prompts), batch):
            seqs = [self._ids(p) for p in prompts[b:b + batch]]
            n = max(map(len, seqs))
            x = torch.tensor([s + [0] * (n - len(s)) for s in seqs], device=self.model.device)   # right-padded:
            logits = self.model(x)[torch.arange(len(seqs)), torch.tensor([len(s) - 1 for s in seqs])]  # causal, so exact
            yn = logits[:, self.yes_no].float()
            yes, no = torch.logaddexp(yn[:, 0], yn[:, 2]), torch.logaddexp(yn[:, 1], yn[:, 3])
            out.append(torch.sigmoid(yes - no).cpu().numpy())
        return np.concatenate(out) if out else np.zeros(0)


class EndpointLM:
    def __init__(self, url: str, timeout_s: float = 60.0, model: str = "default"):
        self.name, self.url, self.timeout, self.model = url, url.rstrip("/") + "/chat/completions", timeout_s, model

    def _ask(self, prompt: str, max_tokens: int) -> str:
        body = json.dumps({"model": self.model, "messages": [{"role": "user", "content": prompt}],
                           "max_tokens": max_tokens, "temperature": 0}).encode()
        req = urllib.request.Request(self.url, body, {"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as r:
                reply = json.loads(r.read().decode("utf-8", "replace"))
            return str(reply["choices"][0]["message"]["content"]).strip()
        except TimeoutError:
            raise LLMError(f"{self.url} did not answer within {self.timeout:g}s") from None
        except (urllib.error.URLError, OSError) as e:
            raise LLMError(f"{self.url} cannot be reached ({getattr(e, 'reason', e)})") from None
        except (ValueError, KeyError, IndexError, TypeError):
            raise LLMError(f"{self.url} answered something that is not an OpenAI-style chat completion") from None

    def generate(self, prompt: str, max_new_tokens: int = 16) -> str:
        return self._ask(prompt, max_new_tokens).splitlines()[0] if prompt else ""

    def yes_probability(self, prompts: list[str], batch: int = 16) -> np.ndarray:
        out = []
        for p in prompts:
            a = self._ask(p, 3).strip().lower()
            if not a.startswith(("yes", "no")):
                raise LLMError(f"{self.url} answered {a[:30]!r} where Yes or No was asked")
            out.append(1.0 if a.startswith("yes") else 0.0)
        return np.asarray(out)


def open_llm(spec: str, device: str = "auto", timeout_s: float = 60.0):
    return EndpointLM(spec, timeout_s) if spec.startswith(("http://", "https://")) else LocalLM(spec, device)
