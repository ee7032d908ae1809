"""IOI roles of a circuit's heads, by the tests of Wang et al. (2022): where a head attends at the
positions that define each class, what it writes to the IO - S logit difference, and whether it
moves the name movers' queries.

  name mover           at END attends IO more than both S tokens, direct effect on IO - S > +0.1
  negative name mover  the same attention, direct effect < -0.1
  S-inhibition         at END attends S2 more than IO, and patching its output (ABC) into the name
                       movers' queries lowers IO - S (path patching)
  induction            at S2 attends S1 + 1
  duplicate token      at S2 attends S1
  previous token       at S1 + 1 attends S1
Attention thresholds are 0.2 (0.3 for previous token), means over the task's prompts; the first
class that holds is the head's role; None when none holds (the head still belongs to the circuit).
"""

from __future__ import annotations

import torch

from extract.ioi.dla import direct_logit_attribution
from extract.ioi.path_patching import path_patch

ROLE_ABBREV = {"name mover": "NM", "negative name mover": "NNM", "S-inhibition": "SI", "induction": "IND",
               "duplicate token": "DT", "previous token": "PT"}


def head_roles(model, task, heads: list[tuple[int, int]]) -> dict[tuple[int, int], dict]:
    """(layer, head) -> {'role', 'attention': {...}, 'dla', 'si_effect'} for IOI tasks."""
    if not heads:
        return {}
    layers = sorted({layer for layer, _ in heads})
    _, cache = model.run_with_cache(task.clean.to(model.device), names=[f"blocks.{l}.attn.hook_pattern" for l in layers],
                                    cache_device="cpu")
    rows = torch.arange(len(task))
    p = task.pos
    dla = direct_logit_attribution(model, task.clean, task.io_tok, task.s_tok)["heads"].mean(0)
    out = {}
    for layer, h in heads:
        pat = cache[f"blocks.{layer}.attn.hook_pattern"][:, h].float()  # [n, q, k]

        def att(q, k):
            return round(float(pat[rows, q, k].mean()), 4)
        a = {"end->IO": att(p["end"], p["IO"]), "end->S1": att(p["end"], p["S1"]), "end->S2": att(p["end"], p["S2"]),
             "S2->S1+1": att(p["S2"], p["S1"] + 1), "S2->S1": att(p["S2"], p["S1"]),
             "S1+1->S1": att(p["S1"] + 1, p["S1"])}
        out[(layer, h)] = {"attention": a, "dla": round(float(dla[layer, h]), 4), "role": None}
    movers = [k for k, r in out.items() if _attends_io(r["attention"]) and r["dla"] > 0.1]
    si = {}
    candidates = [k for k, r in out.items() if r["attention"]["end->S2"] >= 0.2
                  and r["attention"]["end->S2"] > r["attention"]["end->IO"] and movers and k[0] < max(movers)[0]]
    if candidates:
        pp = path_patch(model, task.clean, task.corrupt, candidates, movers, task.patch_metric(), inputs="q")
        si = {k: float(v) - pp["base"] for k, v in zip(candidates, pp["values"])}
    for k, r in out.items():
        a = r["attention"]
        if _attends_io(a) and abs(r["dla"]) > 0.1:
            r["role"] = "name mover" if r["dla"] > 0 else "negative name mover"
        elif si.get(k, 0.0) < 0:
            r["role"], r["si_effect"] = "S-inhibition", round(si[k], 4)
        elif a["S2->S1+1"] >= 0.2:
            r["role"] = "induction"
        elif a["S2->S1"] >= 0.2:
            r["role"] = "duplicate token"
        elif a["S1+1->S1"] >= 0.3:
            r["role"] = "previous token"
    return out


def _attends_io(a: dict) -> bool:
    return a["end->IO"] >= 0.2 and a["end->IO"] > a["end->S1"] + a["end->S2"]
