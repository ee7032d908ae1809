"""The main job end to end on a tiny setting, killed mid-run and resumed."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest
from conftest import REPO


def _stages(run) -> dict:
    path = run / "stages.json"
    try:
        return json.loads(path.read_text()) if path.exists() else {}
    except json.JSONDecodeError:  # caught mid-write
        return {}


@pytest.mark.slow
def test_main_job_tiny_runs_end_to_end_and_resumes_after_a_kill(tmp_path):
    run = tmp_path / "runs" / "tiny"
    cmd = [sys.executable, str(REPO / "scripts" / "run_all.py"), "--tiny", "--out", str(run), "--device", "cpu"]
    first = subprocess.Popen(cmd, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                             start_new_session=True)
    deadline = time.time() + 900
    while _stages(run).get("ioi", {}).get("status") != "done":
        assert first.poll() is None, first.stdout.read()
        assert time.time() < deadline, "the ioi stage did not finish in time"
        time.sleep(0.5)
    time.sleep(2)  # into the dump stage
    os.killpg(first.pid, signal.SIGKILL)
    first.wait()
    before = _stages(run)
    assert set(before) == {"smoke", "ioi"}, before

    # the resume runs its stages in one process (what is under test is the kill, not the child processes)
    second = subprocess.run([*cmd, "--in_process"], cwd=tmp_path, capture_output=True, text=True, timeout=1200)
    assert second.returncode == 0, second.stdout[-3000:] + second.stderr[-3000:]
    assert "[1/10] smoke: done already, skipped" in second.stdout
    assert "[2/10] ioi: done already, skipped" in second.stdout
    after = _stages(run)
    assert after["smoke"] == before["smoke"] and after["ioi"] == before["ioi"]  # not redone
    assert all(v["status"] == "done" for v in after.values()) and len(after) == 10

    report = json.loads((run / "report.json").read_text())
    ioi = json.loads((run / "ioi" / "results.json").read_text())
    sae = json.loads((run / "sae" / "sae" / "metrics.json").read_text())
    shift = json.loads((run / "shift" / "results.json").read_text())
    ablate = json.loads((run / "ablate" / "ablation.json").read_text())
    assert report["ioi"]["logit_diff_clean"] == ioi["logit_diff"]["clean"]["mean"] > 0
    assert report["sae"]["fvu"] == sae["fvu"] and report["sae"]["l0"] == sae["l0"]
    assert report["sae"]["ce_loss_recovered"] == sae["ce_loss"]["ce_loss_recovered"]
    assert report["shift"]["original probe"]["gender_acc"] == shift["rows"][0]["gender_acc"]
    assert report["ablate"]["metric_ablated"] == ablate["metric_ablated"]
    assert report["dump"]["complete"] and report["dump"]["rows"] > 0
    labels = json.loads((run / "labels" / "results.json").read_text())["table"]
    assert report["labels"]["offline labels"]["detection"] == labels["offline labels"]["detection"]
    assert abs(labels["same labels, shuffled"]["detection"] - 0.5) < 0.1
    page = (run / "report.html").read_text()
    assert page.count("data:image/png;base64,") >= 4 and 'href="browser/index.html"' in page
    assert (run / "browser" / "index.html").exists()
