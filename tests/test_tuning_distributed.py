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


def test_a_worker_without_a_chief_says_what_it_waits_for_and_gives_up(tmp_path):
    recipe = tmp_path / "search.toml"
    recipe.write_text(SEARCH)
    port = free_port()  # nothing listens there
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    result = subprocess.run([sys.executable, "-m", "kadvisor.cli", "tune", str(recipe), "--worker", "1",
                             "--port", str(port), "--wait", "2"], cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 1, result.stderr[-2000:]
    assert (f"worker: waiting up to 2 s for the chief at 127.0.0.1:{port} (started with kadvisor tune "
            f"RECIPE --chief --host 127.0.0.1 --port {port})") in result.stdout + result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last == (f"Error: --worker: no chief answered at 127.0.0.1:{port} within 2 s; expected kadvisor "
                    f"tune RECIPE --chief running there (or a longer --wait)")
    assert "Traceback" not in result.stderr
