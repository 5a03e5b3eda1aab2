r"""Distilling the smallest student through a larger one (a "teacher assistant").

A finished run with distilled students of two sizes holds, per fold and seed, the distilled
headline student (``--assistant``, e.g. ``student_kd``, H=32) and the plain small one
(``--student``, e.g. ``student_h8``). This probe trains, for every fold and seed, the small
student again by consistent distillation (the same augmented batch through both models) from
that fold's and seed's assistant instead of the ResNet (Mirzadeh et al., "Improved knowledge
distillation via teacher assistant", AAAI 2020), with the run's student recipe and
``kd.alpha``, at ``--temperature`` (default: the run's). Checkpoints go to the run's work
folder as ``<fold>_<student>_ta<T>_s<seed>.pt`` (resumable); nothing of the run is changed.

    python benchmarks/assistant_probe.py runs/b_sizes --assistant student_kd \
        --student student_h8 --temperature 1 [--compare runs/b_h8_T1:student_kd] \
        [--workers 2] [--json OUT.json]

Prints the pooled MCC (mean +- sd over seeds) of the assistant, the plain small student, the
run's own distilled small student and the one distilled through the assistant, and the paired
differences by seed and per fold and seed; ``--compare RUN:KEY`` adds another run's
predictions of the same folds and seeds (e.g. the small student distilled from the ResNet at
the same temperature). ``--json`` writes them.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

_CTX: dict[str, Any] = {}


def _context(run: Path) -> Any:
    """The run's job context (config, windows cut as the run cuts them, folds), once per
    process."""
    if str(run) not in _CTX:
        from ethoedge.config import load_yaml
        from ethoedge.data import load_dataset, make_windows
        from ethoedge.experiment.folds import fold_windows
        from ethoedge.experiment.jobs import JobContext

        cfg = load_yaml(run / "config.yaml")
        w = make_windows(load_dataset(cfg.data), cfg.window)
        folds = {f.name: f for f in fold_windows(cfg, w)}
        _CTX[str(run)] = JobContext(cfg, w, folds, run / "work")
    return _CTX[str(run)]


def _train_one(run: Path, fold: str, seed: int, assistant: str, student: str, T: float) -> Any:
    import torch

    torch.set_num_threads(1)
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from ethoedge.experiment.jobs import student_config
    from ethoedge.experiment.keys import ModelKey
    from ethoedge.inference import Classifier
    from ethoedge.models import GRUStudent
    from ethoedge.train import fit, seed_everything
    from finished_run import fold_model

    ctx = _context(run)
    cfg, w, f = ctx.cfg, ctx.windows, ctx.folds[fold]
    teacher = fold_model(ctx, fold, assistant, seed, run).eval()
    key = ModelKey.parse(student)
    seed_everything(seed)
    model = GRUStudent(len(w.class_names), student_config(cfg, key), n_channels=w.X.shape[1])
    kd = replace(cfg.kd, soft_labels="consistent", temperature=T, baseline_weight=0.0)
    tag = f"{T:g}".replace(".", "p")
    t0 = time.perf_counter()
    fit(model, w.X[f.train], w.y[f.train], f.normalizer, replace(cfg.student_train, seed=seed),
        kd=kd, teacher=teacher,
        checkpoint=ctx.work_dir / f"{fold}_{student}_ta{tag}_s{seed}.pt")  # fmt: skip
    clf = Classifier(model.eval(), f.normalizer, w.class_names, device="cpu")
    probs = clf.predict_proba(w.X[f.test]).astype(np.float32)
    return fold, seed, f.test, probs, time.perf_counter() - t0


def _stored(work: Path, fold: str, key: str, seed: int) -> Any:
    """A job's held-out predictions from a run's work folder, as a ``Prediction``."""
    from ethoedge.experiment.aggregate import Prediction

    p = work / f"{fold}_{key}_s{seed}.pred.npz"
    if not p.is_file():
        raise SystemExit(f"{p}: no predictions (is {key} a model of that run?)")
    z = np.load(p)
    return Prediction(fold, seed, z["test_idx"], z["probs"], 0, 0)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("run", type=Path, help="a finished ethoedge run folder")
    ap.add_argument("--assistant", default="student_kd", help="the larger distilled student")
    ap.add_argument("--student", default="student_h8", help="the small plain student's key")
    ap.add_argument("--temperature", type=float, default=None)
    ap.add_argument("--compare", action="append", default=[], metavar="RUN:KEY")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args(argv)
    if not (args.run / "results.json").is_file():
        raise SystemExit(f"{args.run}: no results.json (not a finished ethoedge run)")

    from joblib import Parallel, delayed

    from ethoedge.experiment.aggregate import Prediction, model_entry, paired_entries

    ctx = _context(args.run)
    cfg, w = ctx.cfg, ctx.windows
    T = cfg.kd.temperature if args.temperature is None else args.temperature
    tasks = [(fold, seed) for fold in ctx.folds for seed in cfg.seeds]
    t0 = time.perf_counter()
    done = Parallel(n_jobs=args.workers, backend="loky")(
        delayed(_train_one)(args.run, fold, seed, args.assistant, args.student, T)
        for fold, seed in tasks
    )
    wall = time.perf_counter() - t0
    kd_key = args.student.replace("student", "student_kd", 1)
    sources = {"assistant": (ctx.work_dir, args.assistant), "plain": (ctx.work_dir, args.student),
               "kd_run": (ctx.work_dir, kd_key)}  # fmt: skip
    for spec in args.compare:
        other, key = spec.rsplit(":", 1)
        sources[spec] = (Path(other) / "work", key)
    preds = {name: [_stored(work, f, key, s) for f, s in tasks]
             for name, (work, key) in sources.items()}  # fmt: skip
    preds["kd_assistant"] = [Prediction(f, s, idx, probs, 0, 0) for f, s, idx, probs, _ in done]
    for name, ps in preds.items():
        for p, q in zip(ps, preds["plain"], strict=True):
            if not np.array_equal(p.test_idx, q.test_idx):
                raise SystemExit(f"{name}: fold {p.fold} tests other windows")
    entries = {n: model_entry(w.y, ps, w.class_names) for n, ps in preds.items()}

    out: dict[str, Any] = {"run": str(args.run), "assistant": args.assistant,
                           "student": args.student, "temperature": T, "wall_s": wall,
                           "models": {}, "paired": {}}  # fmt: skip
    for n in ("assistant", "plain", "kd_run", "kd_assistant", *args.compare):
        v = [r["mcc"] for r in entries[n]["pooled_by_seed"]]
        m, sd = entries[n]["mcc"], entries[n]["mcc_std"]
        out["models"][n] = {"mcc": m, "mcc_sd": sd, "by_seed": v}
        print(f"{n:>30}: {m:.3f} ± {sd:.3f}  ({', '.join(f'{x:.3f}' for x in v)})")
    for a, b in [("kd_assistant", "plain"), ("kd_run", "plain"), ("kd_assistant", "kd_run")] + [
        ("kd_assistant", s) for s in args.compare
    ]:
        pe = paired_entries(entries[a], entries[b])
        d, pf = pe["pooled_by_seed"], pe["per_fold_and_seed"]
        out["paired"][f"{a} - {b}"] = {"by_seed": d, "per_fold_and_seed": pf}
        print(f"{a} − {b}: {d['mean']:+.3f} [{d['ci_low']:+.3f}, {d['ci_high']:+.3f}] by seed;"
              f" {pf['mean']:+.3f} [{pf['ci_low']:+.3f}, {pf['ci_high']:+.3f}] per fold and"
              f" seed (n={pf['n']})")  # fmt: skip
    print(f"wall {wall:.0f} s for {len(tasks)} students", file=sys.stderr)
    if args.json:
        args.json.write_text(json.dumps(out, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    raise SystemExit(main())
