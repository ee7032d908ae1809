"""Tokens as candidate words, and ranked lists of them fused into one ranking.

An audit's tools each rank tokens (promoted by a latent, raised by the fine-tune, over-used in
samples); a hypothesis is a word several tools point at. Tokens become words by decoding, stripping
and lower-casing; pieces shorter than 3 letters, non-words and function words are dropped, since
they name nothing a person could check. Fusion is reciprocal-rank fusion (Cormack et al. 2009):
score(word) = sum over tools of 1 / (FUSION_K + rank in that tool).
"""

from __future__ import annotations

import re
from collections import defaultdict

FUSION_K = 10
STOPWORDS = frozenset("""
a about above after again against all also am an and any are as at be because been before being below between
both but by can could did do does doing down during each few for from further had has have having he her here
hers herself him himself his how i if in into is it its itself just let like make may me might more most must my
myself no nor not now of off on once one only or other our ours ourselves out over own same she should so some
such than that the their theirs them themselves then there these they this those through to too under until up
very was we well were what when where which while who whom why will with would you your yours yourself yourselves
get got go going know really think way thing things lot much many new good great sure help want need use used
here's it's i'm you're that's don't can't won't let's user assistant system im_start im_end endoftext
""".split())


def word(piece: str) -> str | None:
    """A token's text as a candidate word, or None."""
    w = re.sub(r"^[^A-Za-z]+|[^A-Za-z]+$", "", piece.strip()).lower()
    return w if len(w) >= 3 and w.isalpha() and w not in STOPWORDS else None


def ranked_words(tok, scored: list[tuple[int, float]], n: int = 30, word_start: bool = False) -> list[tuple[str, float]]:
    """Token ids with scores -> the n best distinct words (a word keeps its best token's score).
    word_start: only tokens that begin a word (on the output side, where a piece such as " strugg"
    names nothing)."""
    best: dict[str, float] = {}
    for t, s in sorted(scored, key=lambda ts: -ts[1]):
        if word_start and not starts_a_word(tok, int(t)):
            continue
        w = word(tok.decode([int(t)]))
        if w and w not in best:
            best[w] = float(s)
            if len(best) == n:
                break
    return list(best.items())


def starts_a_word(tok, t: int) -> bool:
    piece = tok.convert_ids_to_tokens(t)
    return isinstance(piece, str) and piece.startswith(("Ġ", "▁", " "))


def fuse(tools: dict[str, list[tuple[str, float]]], n: int = 20) -> list[dict]:
    """{tool: [(word, score), ...] best first} -> hypotheses, best first, each with its evidence."""
    score, evidence = defaultdict(float), defaultdict(list)
    for tool, words in tools.items():
        for rank, (w, s) in enumerate(words, 1):
            score[w] += 1.0 / (FUSION_K + rank)
            evidence[w].append({"tool": tool, "rank": rank, "score": round(float(s), 4)})
    order = sorted(score, key=lambda w: (-score[w], w))[:n]
    return [{"rank": i, "hypothesis": w, "score": round(score[w], 4), "tools": len(evidence[w]), "evidence": evidence[w]}
            for i, w in enumerate(order, 1)]
