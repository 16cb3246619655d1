"""A distributed search: a chief and two workers, as separate processes on 127.0.0.1."""

import csv
import os
import re
import socket
import subprocess
import sys

from test_tuning_search import RECIPE

SEARCH = (RECIPE.replace('algorithm = "hyperband"', 'algorithm = "random"\nmax_trials = 2')
          .replace("epochs = 5", "epochs = 1"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_chief_and_two_workers_share_one_search(tmp_path):
    recipe, out, port = tmp_path / "d.toml", tmp_path / "d", str(free_port())
    recipe.write_text(SEARCH)
    env = {k: v for k, v in os.environ.items() if not k.startswith("KERASTUNER_")}
    base = [sys.executable, "-m", "kadvisor.cli", "tune", str(recipe), "--out", str(out), "--port", port]
    roles = {"chief": ["--chief"], "w1": ["--worker", "w1"], "w2": ["--worker", "w2"]}
    procs = {name: subprocess.Popen(base + extra, env=env, cwd=tmp_path, stdout=subprocess.PIPE,
                                    stderr=subprocess.STDOUT, text=True)
             for name, extra in roles.items()}
    outputs = {}
    try:
        for name, proc in procs.items():
            outputs[name] = proc.communicate(timeout=300)[0]
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                proc.kill()
    assert {name: p.returncode for name, p in procs.items()} == {"chief": 0, "w1": 0, "w2": 0}, outputs
    chief = outputs["chief"]
    assert f"chief: serving the search on 127.0.0.1:{port}" in chief
    # The chief reports every worker's trial as it finishes, and writes the results.
    assert len(re.findall(r"^trial \d \(\d/2\) val_accuracy", chief, re.M)) == 2, chief
    assert "2 of 2 trials completed" in chief
    done = [int(re.search(r"worker (w\d): (\d+) trials", outputs[w]).group(2)) for w in ("w1", "w2")]
    assert sum(done) == 2, outputs
    with open(out / "leaderboard.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert sorted(r["trial"] for r in rows) == ["0", "1"]
    assert all(r["status"] == "COMPLETED" for r in rows)
    assert (out / "best.toml").exists() and (out / "search.png").exists()
