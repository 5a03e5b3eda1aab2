"""One training loop for teacher and student: augmentation, early stopping, checkpoints.

Windows enter :func:`fit` as RAW acceleration in g, shape ``(n, 3, L)``; each batch is
augmented in g (random 3-D rotation, scaling, jitter: a rotated collar still measures gravity
with magnitude 1 g) and then normalised with the training animals' :class:`Normalizer`, so the
model always sees what it sees at inference: ``Normalizer.apply(X)``.

Determinism: the model is initialised by the caller after :func:`seed_everything`; every epoch
draws its shuffling and augmentation from a generator seeded with ``(seed, epoch)``, so a run
resumed from a checkpoint continues exactly as the uninterrupted run would have, and two runs
with one seed give identical weights on CPU.
"""

from __future__ import annotations

import hashlib
import math
import random
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
import torch
from pydantic import Field
from sklearn.metrics import matthews_corrcoef
from torch import nn
from torch.nn import functional as F

from ethoedge.configbase import (
    Bool,
    Float,
    Int,
    NonNegFloat,
    NonNegInt,
    PosFloat,
    PosInt,
    config_dataclass,
)
from ethoedge.data.windows import Normalizer
from ethoedge.distill.config import KDConfig
from ethoedge.distill.loss import kd_loss
from ethoedge.errors import ConfigError
from ethoedge.io import atomic_path
from ethoedge.models.device import resolve_device


@config_dataclass(key="augment")
class AugmentConfig:
    """Training-time augmentation of raw windows (g), applied per window.

    Attributes:
        rotate: rotate each window by a random 3-D rotation (uniform axis, angle uniform in
            ``[-max_angle_deg, max_angle_deg]``): collars turn on the neck.
        max_angle_deg: largest rotation angle in degrees.
        scale: multiply each window by a factor uniform in ``[1 - scale, 1 + scale]`` (0: off).
        jitter: standard deviation (g) of Gaussian noise added to every sample (0: off).
        yaw_deg: before that, turn each window about the sensor's ``yaw_axis`` by an angle
            uniform in ``[-yaw_deg, yaw_deg]`` (0: off; 180: any heading): a sensor box
            mounted facing another way on the collar, which leaves the gravity component
            along that axis, and so the posture cue in it, as it is.
        yaw_axis: the sensor axis of ``yaw_deg``: ``auto`` takes the one gravity mostly lies
            along, the axis of the largest absolute mean over the training windows (``z`` on
            the bundled cattle collars).
        mixup: after the per-window changes, mix each window of a batch with another one of
            the same batch: ``lam * x_i + (1 - lam) * x_j`` with ``lam ~ Beta(mixup, mixup)``
            drawn per window, and its hard label likewise (``lam`` of its own class, the rest
            of the other's; Zhang et al., ICLR 2018). In consistent distillation the teacher
            scores the mixed window, so the student learns the teacher's answer between
            behaviours too ("function matching", Beyer et al., CVPR 2022). 0: off.
    """

    rotate: Bool = True
    max_angle_deg: NonNegFloat = 30.0
    scale: Annotated[NonNegFloat, Field(lt=1)] = 0.1
    jitter: NonNegFloat = 0.01
    yaw_deg: Annotated[NonNegFloat, Field(le=180)] = 0.0
    yaw_axis: Literal["auto", "x", "y", "z"] = "auto"
    mixup: NonNegFloat = 0.0

    def resolved(self, X: np.ndarray) -> AugmentConfig:
        """This config with ``yaw_axis`` ``auto`` replaced by the axis of the largest absolute
        mean of the raw windows ``X`` (n, 3, L)."""
        if self.yaw_axis != "auto" or self.yaw_deg <= 0:
            return self
        k = int(np.argmax(np.abs(np.asarray(X, dtype=np.float64).mean(axis=(0, 2)))))
        return replace(self, yaw_axis="xyz"[k])

    @property
    def enabled(self) -> bool:
        """Whether :func:`augment_batch` changes a window (``mixup`` is applied apart)."""
        return ((self.rotate and self.max_angle_deg > 0) or self.scale > 0 or self.jitter > 0
                or self.yaw_deg > 0)  # fmt: skip


@config_dataclass(key="train")
class TrainConfig:
    """How one model is trained.

    Attributes:
        epochs: maximum number of epochs.
        batch_size: windows per batch.
        lr: AdamW learning rate.
        weight_decay: AdamW weight decay.
        patience: stop after this many epochs without improvement of the validation score
            (validation windows come from held-out *training* animals); 0 disables.
        monitor: validation score for early stopping: ``"mcc"`` (higher is better) or
            ``"loss"`` (hard-label cross-entropy, lower is better).
        lr_schedule: ``"constant"`` or ``"cosine"`` (per epoch, from ``lr`` at epoch 1 down
            to ``lr * (1 + cos(pi * (epochs - 1) / epochs)) / 2`` at the last; stateless, so a
            resumed run follows the same schedule).
        label_smoothing: label smoothing of the hard-label cross-entropy of plain training
            (0: off; the control a distilled student must beat). Distillation's loss keeps
            its hard-label term unsmoothed.
        ema_epochs: keep an exponential moving average of the weights (and buffers), updated
            after every optimiser step, with a time constant of this many epochs (decay
            ``exp(-1 / (ema_epochs * steps per epoch))``); the averaged weights are the ones
            scored, kept and returned (0: off, the trained weights themselves).
        seed: seed of the initialisation (via :func:`seed_everything`), shuffling, augmentation.
        device: ``"auto"`` (CUDA if available), ``"cpu"`` or ``"cuda"``.
        augment: augmentation settings.
    """

    epochs: PosInt = 30
    batch_size: Annotated[Int, Field(ge=2)] = 128
    lr: PosFloat = 1e-3
    weight_decay: NonNegFloat = 1e-4
    patience: NonNegInt = 6
    monitor: Literal["mcc", "loss"] = "mcc"
    label_smoothing: Annotated[Float, Field(ge=0, lt=1)] = 0.0
    ema_epochs: NonNegFloat = 0.0
    lr_schedule: Literal["constant", "cosine"] = "constant"
    seed: Int = 0
    device: Literal["auto", "cpu", "cuda"] = "auto"
    augment: AugmentConfig = field(default_factory=AugmentConfig)


@dataclass
class FitResult:
    """What :func:`fit` did.

    Attributes:
        best_epoch: 1-based epoch whose weights were kept.
        epochs_run: epochs trained (including ones restored from a checkpoint).
        best_score: validation score of the kept weights (None without validation data).
        history: one record per epoch (train loss, val loss, val MCC, seconds).
        resumed_from: epoch restored from a checkpoint (0 when started fresh).
    """

    best_epoch: int
    epochs_run: int
    best_score: float | None
    history: list[dict[str, float]]
    resumed_from: int = 0


def epoch_lr(cfg: TrainConfig, epoch: int) -> float:
    """Learning rate of 1-based ``epoch`` under ``cfg.lr_schedule``."""
    if cfg.lr_schedule == "cosine":
        return cfg.lr * 0.5 * (1.0 + math.cos(math.pi * (epoch - 1) / cfg.epochs))
    return cfg.lr


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (call before building a model)."""
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)


def random_rotations(n: int, max_angle_deg: float, gen: torch.Generator) -> torch.Tensor:
    """(n, 3, 3) rotation matrices: uniform random axis, angle uniform in +-max_angle_deg.

    Rodrigues: ``R = I + sin(a) K + (1 - cos(a)) K^2`` with ``K`` the cross-product matrix of
    the unit axis.
    """
    axis = torch.randn(n, 3, generator=gen, dtype=torch.float64)
    axis = axis / axis.norm(dim=1, keepdim=True).clamp_min(1e-12)
    ang = (torch.rand(n, generator=gen, dtype=torch.float64) * 2 - 1) * math.radians(max_angle_deg)
    kx, ky, kz = axis[:, 0], axis[:, 1], axis[:, 2]
    zero = torch.zeros_like(kx)
    K = torch.stack(
        [
            torch.stack([zero, -kz, ky], 1),
            torch.stack([kz, zero, -kx], 1),
            torch.stack([-ky, kx, zero], 1),
        ],
        1,
    )  # (n, 3, 3)
    eye = torch.eye(3, dtype=torch.float64).expand(n, 3, 3)
    s, c = torch.sin(ang)[:, None, None], torch.cos(ang)[:, None, None]
    return (eye + s * K + (1 - c) * (K @ K)).float()


def axis_rotations(n: int, axis: str, max_angle_deg: float, gen: torch.Generator) -> torch.Tensor:
    """(n, 3, 3) rotations about the sensor axis ``axis`` ("x", "y" or "z"), angle uniform in
    +-max_angle_deg."""
    ang = (torch.rand(n, generator=gen, dtype=torch.float64) * 2 - 1) * math.radians(max_angle_deg)
    c, s = torch.cos(ang), torch.sin(ang)
    k = "xyz".index(axis)
    i, j = [a for a in range(3) if a != k]
    r = torch.eye(3, dtype=torch.float64).repeat(n, 1, 1)
    r[:, i, i], r[:, i, j], r[:, j, i], r[:, j, j] = c, -s, s, c
    return r.float()


def augment_batch(x: torch.Tensor, cfg: AugmentConfig, gen: torch.Generator) -> torch.Tensor:
    """Augment raw windows ``x`` (b, 3, L) in g; returns a new tensor."""
    b = x.shape[0]
    if cfg.yaw_deg > 0:
        if cfg.yaw_axis == "auto":
            raise ValueError("yaw_axis 'auto': resolve it first (AugmentConfig.resolved(X))")
        x = axis_rotations(b, cfg.yaw_axis, cfg.yaw_deg, gen) @ x
    if cfg.rotate and cfg.max_angle_deg > 0:
        x = random_rotations(b, cfg.max_angle_deg, gen) @ x  # (b, 3, 3) @ (b, 3, L)
    if cfg.scale > 0:
        f = 1 + (torch.rand(b, 1, 1, generator=gen) * 2 - 1) * cfg.scale
        x = x * f
    if cfg.jitter > 0:
        x = x + torch.randn(x.shape, generator=gen) * cfg.jitter
    return x


def mix_batch(
    x: torch.Tensor,
    y: torch.Tensor,
    n_classes: int,
    concentration: float,
    gen: torch.Generator,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Mixup of a batch: windows ``x`` (b, 3, L) and int labels ``y`` (b,) become
    ``lam x + (1 - lam) x[p]`` and the class probabilities ``lam onehot(y) + (1 - lam)
    onehot(y[p])``, with a random permutation ``p`` of the batch and ``lam ~ Beta(c, c)``
    per window (drawn from ``gen``)."""
    b = x.shape[0]
    p = torch.randperm(b, generator=gen)
    rng = np.random.default_rng(int(torch.randint(0, 2**62, (1,), generator=gen)))
    lam = torch.from_numpy(rng.beta(concentration, concentration, size=b).astype(np.float32))
    one = F.one_hot(y, n_classes).float()
    xm = lam[:, None, None] * x + (1 - lam[:, None, None]) * x[p]
    ym = lam[:, None] * one + (1 - lam[:, None]) * one[p]
    return xm, ym


def _normalize(x: torch.Tensor, norm: Normalizer) -> torch.Tensor:
    m = torch.tensor(norm.mean, dtype=torch.float32)[None, :, None]
    s = torch.tensor(norm.std, dtype=torch.float32)[None, :, None]
    return (x - m) / s


def _fingerprint(
    model: nn.Module, X: np.ndarray, y: np.ndarray, parts: list[Any], arrays: list[np.ndarray]
) -> str:
    """Digest of what shapes the trained weights: ``parts`` (settings), the model's layout, the
    labels, a sample of ``X`` and every one of ``arrays`` in full (soft labels, a teacher)."""
    h = hashlib.sha256()
    h.update(repr(parts).encode())
    h.update(repr([(k, tuple(v.shape)) for k, v in model.state_dict().items()]).encode())
    h.update(repr(X.shape).encode())
    h.update(np.ascontiguousarray(y).tobytes())
    h.update(np.ascontiguousarray(X[:: max(1, len(X) // 64)]).tobytes())
    for a in arrays:
        h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()


# Options added after checkpoints existed, as key paths: left out of the fingerprint while off
# (falsy), so that checkpoints made before them stay valid.
_LATER_TRAIN = (("ema_epochs",), ("augment", "mixup"))
_LATER_KD = (("standardize_logits",),)


def _without_later_options_off(
    settings: dict[str, Any], later: tuple[tuple[str, ...], ...]
) -> dict[str, Any]:
    for path in later:
        parent = settings
        for key in path[:-1]:
            parent = parent[key]
        if not parent[path[-1]]:
            del parent[path[-1]]
    return settings


def _snapshot(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}


@torch.no_grad()
def _evaluate(
    model: nn.Module, Xn: torch.Tensor, y: torch.Tensor, batch_size: int, device: str
) -> tuple[float, float]:
    """(cross-entropy, MCC) of ``model`` on normalised windows."""
    model.eval()
    logits = torch.cat(
        [model(Xn[i : i + batch_size].to(device)).cpu() for i in range(0, len(Xn), batch_size)]
    )
    loss = float(F.cross_entropy(logits, y))
    mcc = float(matthews_corrcoef(y.numpy(), logits.argmax(1).numpy()))
    return loss, mcc


def fit(
    model: nn.Module,
    X: np.ndarray,
    y: np.ndarray,
    normalizer: Normalizer,
    cfg: TrainConfig,
    *,
    X_val: np.ndarray | None = None,
    y_val: np.ndarray | None = None,
    kd: KDConfig | None = None,
    teacher_logits: np.ndarray | None = None,
    teacher: nn.Module | None = None,
    checkpoint: str | Path | None = None,
    on_epoch: Callable[[int, dict[str, float]], None] | None = None,
) -> FitResult:
    """Train ``model`` in place on raw windows ``X`` (n, 3, L) with labels ``y``; keep the best.

    Plain training (teacher or student) minimises cross-entropy. With ``kd`` (alpha > 0) the
    student minimises :func:`~ethoedge.distill.kd_loss` against ``teacher_logits`` (n, C)
    (stored soft labels, row i for window i), or, when ``kd.consistent``, against ``teacher``
    run on the same augmented batch.

    Early stopping: after each epoch the model is scored on ``X_val``/``y_val`` (windows of
    held-out *training* animals); the weights of the best epoch are restored at the end. Without
    validation data the model trains for ``cfg.epochs`` and the last epoch is kept.

    ``checkpoint``: a file written (atomically) after every epoch; if it exists and was made by
    the same model, data and config, training resumes from it (a finished checkpoint returns
    at once with the kept weights).
    """
    device = resolve_device(cfg.device)
    n = len(X)
    if n == 0:
        raise ConfigError("no training windows")
    use_kd = kd is not None and kd.alpha > 0
    if use_kd:
        assert kd is not None
        if kd.consistent and teacher is None:
            raise ConfigError("consistent distillation needs the teacher model")
        if not kd.consistent and teacher_logits is None:
            raise ConfigError("distillation needs the teacher's soft labels")
        if not kd.consistent and cfg.augment.mixup > 0:
            raise ConfigError(
                "mixup in distillation needs kd.soft_labels: consistent (stored soft labels"
                " are of the windows unmixed)"
            )
        if teacher_logits is not None and len(teacher_logits) != n:
            raise ConfigError(f"{len(teacher_logits)} soft labels for {n} training windows")
    has_val = X_val is not None and y_val is not None and len(X_val) > 0
    # A checkpoint of another normalisation or of other soft labels (a retrained teacher,
    # another ensemble, another consistent teacher) is not resumed from.
    soft: list[np.ndarray] = []
    if teacher_logits is not None:
        soft = [np.asarray(teacher_logits, np.float32)]
    elif teacher is not None:
        soft = [v.detach().cpu().numpy() for v in teacher.state_dict().values()]
    settings = _without_later_options_off(asdict(cfg), _LATER_TRAIN)
    kd_settings = kd and _without_later_options_off(asdict(kd), _LATER_KD)
    parts = [settings, kd_settings, has_val and len(X_val), asdict(normalizer)]  # type: ignore[arg-type]
    fp = _fingerprint(model, X, y, parts, soft)

    model.to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    Xt = torch.from_numpy(np.ascontiguousarray(X, dtype=np.float32))
    yt = torch.from_numpy(np.asarray(y, dtype=np.int64))
    Tt = (
        torch.from_numpy(np.ascontiguousarray(teacher_logits, dtype=np.float32))
        if teacher_logits is not None
        else None
    )
    if has_val:
        Xv = _normalize(torch.from_numpy(np.ascontiguousarray(X_val, dtype=np.float32)), normalizer)
        yv = torch.from_numpy(np.asarray(y_val, dtype=np.int64))
    if teacher is not None:
        teacher.to(device).eval()

    augment = cfg.augment.resolved(X)
    n_classes = 0
    if augment.mixup > 0:  # the model's output width: mixed labels are class probabilities
        model.eval()
        with torch.no_grad():
            n_classes = int(model(_normalize(Xt[:2], normalizer).to(device)).shape[1])
    ema = _ema(model, cfg, n)
    kept = model if ema is None else ema.module  # the weights scored and kept
    start_epoch, best_epoch, bad = 0, 0, 0
    best_score: float | None = None
    best_state = _snapshot(model)
    history: list[dict[str, float]] = []
    resumed_from = 0
    ckpt = Path(checkpoint) if checkpoint is not None else None
    if ckpt is not None and ckpt.exists():
        state = torch.load(ckpt, map_location="cpu", weights_only=True)
        if state.get("fingerprint") == fp:
            model.load_state_dict(state["model"])
            opt.load_state_dict(state["optim"])
            if ema is not None:
                ema.load_state_dict(state["ema"])
            best_state = state["best_state"]
            best_score, best_epoch, bad = state["best_score"], state["best_epoch"], state["bad"]
            history = list(state["history"])
            start_epoch = resumed_from = int(state["epoch"])
            if state["done"]:
                model.load_state_dict(best_state)
                return FitResult(best_epoch, start_epoch, best_score, history, resumed_from)

    prev_det = torch.are_deterministic_algorithms_enabled()
    torch.use_deterministic_algorithms(True, warn_only=True)
    try:
        done = False
        for epoch in range(start_epoch + 1, cfg.epochs + 1):
            t0 = time.perf_counter()
            gen = torch.Generator().manual_seed(cfg.seed * 1_000_003 + epoch)
            for group in opt.param_groups:
                group["lr"] = epoch_lr(cfg, epoch)
            perm = torch.randperm(n, generator=gen)
            model.train()
            total, count = 0.0, 0
            for i in range(0, n, cfg.batch_size):
                idx = perm[i : i + cfg.batch_size]
                if len(idx) < 2 and n >= 2:
                    continue  # batch norm needs two windows
                xb = Xt[idx]
                yb = yt[idx]
                if augment.enabled:
                    xb = augment_batch(xb, augment, gen)
                if augment.mixup > 0:  # yb: class probabilities from here
                    xb, yb = mix_batch(xb, yb, n_classes, augment.mixup, gen)
                xb = _normalize(xb, normalizer).to(device)
                yb = yb.to(device)
                out = model(xb)
                if use_kd:
                    assert kd is not None
                    if kd.consistent:
                        assert teacher is not None
                        with torch.no_grad():
                            zt = teacher(xb)
                    else:
                        assert Tt is not None
                        zt = Tt[idx].to(device)
                    loss = kd_loss(out, zt, yb, kd.alpha, kd.temperature, kd.standardize_logits)
                else:
                    loss = F.cross_entropy(out, yb, label_smoothing=cfg.label_smoothing)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                if ema is not None:
                    ema.update_parameters(model)
                total += float(loss.detach()) * len(idx)
                count += len(idx)
            rec: dict[str, float] = {"epoch": epoch, "train_loss": total / max(count, 1)}
            if has_val:
                vloss, vmcc = _evaluate(kept, Xv, yv, 512, device)
                rec.update(val_loss=vloss, val_mcc=vmcc)
                score = vmcc if cfg.monitor == "mcc" else -vloss
                if best_score is None or score > best_score:
                    best_score, best_epoch, bad = score, epoch, 0
                    best_state = _snapshot(kept)
                else:
                    bad += 1
                done = cfg.patience > 0 and bad >= cfg.patience
            else:
                best_epoch = epoch
                best_state = _snapshot(kept)
            done = done or epoch == cfg.epochs
            rec["seconds"] = time.perf_counter() - t0
            history.append(rec)
            if ckpt is not None:
                state = {
                    "fingerprint": fp,
                    "epoch": epoch,
                    "model": model.state_dict(),
                    "optim": opt.state_dict(),
                    "best_state": best_state,
                    "best_score": best_score,
                    "best_epoch": best_epoch,
                    "bad": bad,
                    "history": history,
                    "done": done,
                }
                if ema is not None:
                    state["ema"] = ema.state_dict()
                with atomic_path(ckpt) as tmp:
                    torch.save(state, tmp)
            if on_epoch is not None:
                on_epoch(epoch, rec)
            if done:
                break
    finally:
        torch.use_deterministic_algorithms(prev_det)
    model.load_state_dict(best_state)
    return FitResult(best_epoch, len(history), best_score, history, resumed_from)


def _ema(model: nn.Module, cfg: TrainConfig, n: int) -> Any:
    """The moving average (a :class:`torch.optim.swa_utils.AveragedModel`) of ``model``'s
    weights with ``cfg.ema_epochs`` (None when off), for ``n`` training windows per epoch."""
    if not cfg.ema_epochs:
        return None
    from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

    steps = n // cfg.batch_size + (n % cfg.batch_size >= 2)  # a last batch of one is skipped
    decay = math.exp(-1.0 / (cfg.ema_epochs * max(steps, 1)))
    return AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(decay), use_buffers=True)


@torch.no_grad()
def predict_proba(
    model: nn.Module, X: np.ndarray, normalizer: Normalizer, batch_size: int = 512
) -> np.ndarray:
    """Class probabilities (n, C) float32 of ``model`` for RAW windows ``X`` (n, 3, L) in g."""
    from ethoedge.distill.soft_labels import predict_logits, softmax

    device = next(model.parameters()).device.type
    return softmax(predict_logits(model, normalizer.apply(X), batch_size, device))
