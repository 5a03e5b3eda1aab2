"""The students' recipe of each fold, chosen by inner animal-wise validation.

Which input stage and heading augmentation suit the students depends on the data: the
posture cue that the ``static`` part of the signal carries tells lying from standing on some
collars, and a collar turned on another animal breaks a model that leans on it. With
``RunConfig.student_recipes`` a run chooses among candidate recipes (:class:`StudentRecipe`)
per fold, from that fold's training animals only:

1. the fold's training animals are dealt into ``recipe_groups`` groups
   (:func:`~ethoedge.experiment.jobs.animal_groups`);
2. per candidate and group, one plain headline student (the run's first seed) trains on the
   other groups' training windows, normalised by their own statistics, and predicts the
   group's windows (an *inner fold*, named ``{fold}~{recipe}~g{group}`` in the work folder);
3. per candidate, the MCC of those predictions pooled over the groups; the best candidate
   (the first listed on a tie) trains every student of the fold, plain and distilled, every
   size and seed.

The test animal of a fold is in none of its inner folds, so the choice never sees it. The
deployment bundle chooses likewise on all animals. Cost: ``candidates x groups`` extra
student trainings per fold, run on the run's executor.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ethoedge.config import StudentRecipe
from ethoedge.data.windows import Normalizer
from ethoedge.experiment.executor import execute
from ethoedge.experiment.folds import FoldWindows
from ethoedge.experiment.jobs import Job, JobContext, animal_groups
from ethoedge.experiment.keys import STUDENT


@dataclass(frozen=True)
class RecipeChoice:
    """What the inner validation of one fold found.

    Attributes:
        fold: the outer fold.
        chosen: the recipe its students train with.
        inner_mcc: pooled inner MCC per candidate name (None: not validated, fewer than two
            training animals).
        groups: the training animals of each inner group.
    """

    fold: str
    chosen: StudentRecipe
    inner_mcc: dict[str, float | None]
    groups: list[list[str]]

    def to_json(self) -> dict[str, Any]:
        return {
            "chosen": self.chosen.name,
            "inner_mcc": dict(self.inner_mcc),
            "groups": [list(g) for g in self.groups],
        }


def inner_fold_name(fold: str, recipe: StudentRecipe, group: int) -> str:
    return f"{fold}~{recipe.name}~g{group}"


def inner_folds(
    ctx: JobContext, fold: FoldWindows
) -> tuple[list[list[str]], dict[str, tuple[StudentRecipe, FoldWindows]]]:
    """The inner folds of ``fold``: its training animals' groups, and per candidate and
    group the inner fold (trained on the other groups, tested on the group)."""
    cfg, w = ctx.cfg, ctx.windows
    animals = w.animal[fold.train]
    groups = animal_groups(animals, cfg.recipe_groups)
    names = [sorted(str(a) for a in g) for g in groups]
    out: dict[str, tuple[StudentRecipe, FoldWindows]] = {}
    if len(groups) < 2:
        return names, out
    for g, members in enumerate(groups):
        rows = np.isin(animals, members)
        train, test = fold.train[~rows], fold.train[rows]
        assert not set(np.unique(w.animal[train])) & set(members), "an inner fold saw its group"
        norm = Normalizer.fit(w.X[train])
        for recipe in cfg.student_recipes:
            name = inner_fold_name(fold.name, recipe, g)
            out[name] = (recipe, FoldWindows(name, train, train, None, test, norm))
    return names, out


def choose_recipes(
    ctx: JobContext,
    folds: list[FoldWindows],
    *,
    use_gpu: bool = False,
    progress: bool = True,
) -> dict[str, RecipeChoice]:
    """Each fold's student recipe (see the module docstring); ``{}`` when the run has no
    candidates. The inner students are jobs of the run's executor (``ctx.cfg.executor``,
    ``workers``, ``ray_address``), resumable like the others."""
    from ethoedge.evaluate.metrics import classification_metrics

    cfg, w = ctx.cfg, ctx.windows
    if not cfg.student_recipes:
        return {}
    plan: dict[str, tuple[str, StudentRecipe, FoldWindows]] = {}
    groups_of: dict[str, list[list[str]]] = {}
    for fold in folds:
        groups_of[fold.name], inner = inner_folds(ctx, fold)
        plan.update({name: (fold.name, r, f) for name, (r, f) in inner.items()})
    ictx = JobContext(
        cfg,
        w,
        {**ctx.folds, **{name: f for name, (_, _, f) in plan.items()}},
        ctx.work_dir,
        ctx.threads,
        recipes={name: r for name, (_, r, _) in plan.items()},
    )
    jobs = [Job(name, STUDENT, cfg.seeds[0]) for name in plan]
    outputs = execute(ictx, jobs, executor=cfg.executor, workers=cfg.workers,
                      ray_address=cfg.ray_address, use_gpu=use_gpu, progress=progress,
                      label="student recipes")  # fmt: skip
    choices = {}
    for fold in folds:
        scores: dict[str, float | None] = {}
        for recipe in cfg.student_recipes:
            outs = [o for j, o in outputs.items()
                    if plan[j.fold][0] == fold.name and plan[j.fold][1] == recipe]  # fmt: skip
            if not outs:
                scores[recipe.name] = None
                continue
            idx = np.concatenate([o.test_idx for o in outs])
            pred = np.concatenate([o.pred for o in outs])
            scores[recipe.name] = float(
                classification_metrics(w.y[idx], pred, w.class_names)["mcc"]
            )
        # max keeps the first of equals: a tie (or no score) keeps the first candidate
        best = max(cfg.student_recipes, key=lambda r: _or_lowest(scores[r.name]))
        choices[fold.name] = RecipeChoice(fold.name, best, scores, groups_of[fold.name])
    return choices


def _or_lowest(score: float | None) -> float:
    return -np.inf if score is None else score
