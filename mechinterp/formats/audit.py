"""A blind audit's files (stdlib only; the owner of their layout):

  DIR/probe/answers.json  the auditor's prompts and both models' greedy answers
  DIR/probe/chats.jsonl   the corpus both models are dumped on (transcripts + plain documents)
  DIR/hypotheses.json     {"hypotheses": [{rank, hypothesis, score, tools, evidence}], "black_box": [...],
                           "tools": {tool: [[word, score], ...]}, "seconds": {...}}: what the audit
                           concludes, written without reading what was planted
  DIR/results.json        the evidence in full (latents, tool details, samples, answers)
  DIR/mean_diff.npy       the mean activation difference, organism minus base, at the crosscoder's site
  DIR/report.html         the page
  DIR/score.json          the scorer's verdict (`mechinterp score-audit`, which alone reads the
                          organism's manifest): the truth's rank, the black-box baseline's, the causal check
"""

from __future__ import annotations

import json
from pathlib import Path

from mechinterp.formats.atomic import atomic_write_text
from mechinterp.formats.errors import LabError
from mechinterp.formats.reading import read_json

PROBE, ANSWERS, CORPUS = "probe", "answers.json", "chats.jsonl"
HYPOTHESES, PAGE, SCORE, MEAN_DIFF = "hypotheses.json", "report.html", "score.json", "mean_diff.npy"


def write(path: Path, data: dict) -> Path:
    atomic_write_text(path, json.dumps(data, indent=1))
    return path


def read_hypotheses(folder: str | Path) -> dict:
    path = Path(folder) / HYPOTHESES
    if not path.exists():
        raise LabError(f"{folder} holds no audit ({HYPOTHESES} missing); run `mechinterp audit --organism DIR --out {folder}`")
    return read_json(path, "re-run the audit's last stage (mechinterp audit --force evidence)")
