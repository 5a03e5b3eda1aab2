from dataclasses import replace

import numpy as np
import pytest
import torch

from ethoedge.data import Normalizer
from ethoedge.models import GRUStudent, StudentConfig
from ethoedge.train import (
    AugmentConfig,
    KDConfig,
    TrainConfig,
    augment_batch,
    axis_rotations,
    fit,
    random_rotations,
    seed_everything,
)
from kdhelpers import separable_windows

torch.set_num_threads(1)
CFG = TrainConfig(epochs=3, batch_size=32, lr=1e-2, patience=0, device="cpu",
                  augment=AugmentConfig(max_angle_deg=20, scale=0.1, jitter=0.01))  # fmt: skip


def _data():
    w = separable_windows(n_per_animal=30, animals="abc", L=12)
    return w.X, w.y, Normalizer.fit(w.X)


def _train(X, y, norm, **kw):
    seed_everything(0)
    m = GRUStudent(3, StudentConfig(hidden=4))
    res = fit(m, X, y, norm, CFG, X_val=X[:30], y_val=y[:30], **kw)
    return m, res


def test_rotations_are_proper_and_preserve_norm():
    R = random_rotations(16, 45.0, torch.Generator().manual_seed(0)).double()
    eye = torch.eye(3, dtype=torch.float64).expand(16, 3, 3)
    assert torch.allclose(R @ R.transpose(1, 2), eye, atol=1e-6)
    assert torch.allclose(torch.linalg.det(R), torch.ones(16, dtype=torch.float64), atol=1e-6)
    x = torch.randn(16, 3, 10)
    xr = augment_batch(x, AugmentConfig(max_angle_deg=45, scale=0.0, jitter=0.0),
                       torch.Generator().manual_seed(1))  # fmt: skip
    assert torch.allclose(xr.norm(dim=1), x.norm(dim=1), atol=1e-5)  # |g| unchanged


def test_yaw_turns_about_its_axis_only():
    """A yaw about z keeps each sample's z component and the norm of its x-y part, is a proper
    rotation, and turns the x-y part by some angle within the bound (here 30 degrees)."""
    R = axis_rotations(64, "z", 30.0, torch.Generator().manual_seed(0)).double()
    eye = torch.eye(3, dtype=torch.float64).expand(64, 3, 3)
    assert torch.allclose(R @ R.transpose(1, 2), eye, atol=1e-6)
    assert torch.allclose(torch.linalg.det(R), torch.ones(64, dtype=torch.float64), atol=1e-6)
    ang = torch.rad2deg(torch.atan2(R[:, 1, 0], R[:, 0, 0]))
    assert ang.abs().max() <= 30.0 + 1e-9 and ang.abs().max() > 20.0
    x = torch.randn(64, 3, 10)
    cfg = AugmentConfig(rotate=False, scale=0.0, jitter=0.0, yaw_deg=180.0, yaw_axis="z")
    assert cfg.enabled
    xr = augment_batch(x, cfg, torch.Generator().manual_seed(1))
    assert torch.equal(xr[:, 2], x[:, 2])
    assert torch.allclose(xr[:, :2].norm(dim=1), x[:, :2].norm(dim=1), atol=1e-5)
    assert not torch.allclose(xr[:, :2], x[:, :2], atol=1e-3)
    # about x: x kept
    about_x = AugmentConfig(rotate=False, scale=0.0, jitter=0.0, yaw_deg=90.0, yaw_axis="x")
    xr = augment_batch(x, about_x, torch.Generator().manual_seed(1))
    assert torch.equal(xr[:, 0], x[:, 0])
    assert not AugmentConfig(rotate=False, scale=0.0, jitter=0.0).enabled
    # auto: the axis gravity lies along in the training windows (here y), resolved before use
    g = torch.zeros(8, 3, 10)
    g[:, 1] = -0.9
    auto = AugmentConfig(rotate=False, scale=0.0, jitter=0.0, yaw_deg=90.0)
    assert auto.yaw_axis == "auto" and auto.resolved(g.numpy() + 0.1).yaw_axis == "y"
    with pytest.raises(ValueError, match="resolve"):
        augment_batch(x, auto, torch.Generator().manual_seed(1))


def test_same_seed_same_weights_and_resume_is_exact(tmp_path):
    X, y, norm = _data()
    m1, r1 = _train(X, y, norm)
    m2, _ = _train(X, y, norm)
    for (k, a), b in zip(m1.state_dict().items(), m2.state_dict().values(), strict=True):
        assert torch.equal(a, b), k

    class Killed(Exception):
        pass

    def die(epoch, rec):
        if epoch == 2:
            raise Killed

    ck = tmp_path / "ck.pt"
    with pytest.raises(Killed):
        _train(X, y, norm, checkpoint=ck, on_epoch=die)
    m3, r3 = _train(X, y, norm, checkpoint=ck)
    assert r3.resumed_from == 2 and r3.epochs_run == 3
    assert r3.best_epoch == r1.best_epoch
    for a, b in zip(m1.state_dict().values(), m3.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    # A finished checkpoint returns at once with the kept weights.
    m4, r4 = _train(X, y, norm, checkpoint=ck)
    assert r4.resumed_from == 3
    for a, b in zip(m1.state_dict().values(), m4.state_dict().values(), strict=True):
        assert torch.equal(a, b)


def test_kd_alpha_zero_equals_plain_training():
    X, y, norm = _data()
    m1, _ = _train(X, y, norm)
    junk = np.random.default_rng(0).normal(size=(len(X), 3)).astype(np.float32)
    m2, _ = _train(X, y, norm, kd=KDConfig(alpha=0.0, temperature=2.0), teacher_logits=junk)
    for a, b in zip(m1.state_dict().values(), m2.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    m3, _ = _train(X, y, norm, kd=KDConfig(alpha=0.9, temperature=2.0), teacher_logits=junk)
    assert not torch.equal(m1.out.weight, m3.out.weight)


def test_cosine_schedule_values_and_resume(tmp_path):
    from ethoedge.errors import ConfigError
    from ethoedge.train import epoch_lr

    cos = TrainConfig(epochs=4, lr=0.1, lr_schedule="cosine")
    got = [epoch_lr(cos, e) for e in range(1, 5)]
    want = [0.1 * 0.5 * (1 + np.cos(np.pi * k / 4)) for k in range(4)]  # 0.1, .0854, .05, .0146
    np.testing.assert_allclose(got, want, rtol=1e-12)
    assert epoch_lr(TrainConfig(lr=0.1), 7) == 0.1
    with pytest.raises(ConfigError, match="lr_schedule"):
        TrainConfig(lr_schedule="step")  # type: ignore[arg-type]
    # A killed cosine run resumes onto the same weights as the uninterrupted run.
    X, y, norm = _data()
    cfg = TrainConfig(epochs=3, batch_size=32, lr=1e-2, patience=0, device="cpu",
                      lr_schedule="cosine")  # fmt: skip

    def train(**kw):
        seed_everything(0)
        m = GRUStudent(3, StudentConfig(hidden=4))
        fit(m, X, y, norm, cfg, X_val=X[:30], y_val=y[:30], **kw)
        return m

    ref = train()

    class Killed(Exception):
        pass

    def die(epoch, rec):
        if epoch == 2:
            raise Killed

    with pytest.raises(Killed):
        train(checkpoint=tmp_path / "c.pt", on_epoch=die)
    resumed = train(checkpoint=tmp_path / "c.pt")
    for a, b in zip(ref.state_dict().values(), resumed.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    # The schedule changes the result (it is applied, not only validated).
    seed_everything(0)
    const = GRUStudent(3, StudentConfig(hidden=4))
    fit(const, X, y, norm, TrainConfig(epochs=3, batch_size=32, lr=1e-2, patience=0,
                                       device="cpu"))  # fmt: skip
    assert not torch.equal(const.out.weight, ref.out.weight)


def test_label_smoothing_reaches_the_plain_loss_only(monkeypatch):
    import ethoedge.train as T

    seen: list[float] = []
    real = T.F.cross_entropy

    def spy(logits, target, *a, label_smoothing=0.0, **kw):
        seen.append(label_smoothing)
        return real(logits, target, *a, label_smoothing=label_smoothing, **kw)

    monkeypatch.setattr(T.F, "cross_entropy", spy)
    X, y, norm = _data()
    seed_everything(0)
    m = GRUStudent(3, StudentConfig(hidden=4))
    from dataclasses import replace

    fit(m, X, y, norm, replace(CFG, epochs=1, label_smoothing=0.2))
    assert seen and set(seen) == {0.2}
    # smoothing keeps the model less sure of the training windows than plain training
    seed_everything(0)
    plain = GRUStudent(3, StudentConfig(hidden=4))
    fit(plain, X, y, norm, replace(CFG, epochs=3))
    seed_everything(0)
    smooth = GRUStudent(3, StudentConfig(hidden=4))
    fit(smooth, X, y, norm, replace(CFG, epochs=3, label_smoothing=0.5))
    with torch.no_grad():
        xn = torch.from_numpy(norm.apply(X))
        p_plain = torch.softmax(plain(xn), 1).max(1).values.mean()
        p_smooth = torch.softmax(smooth(xn), 1).max(1).values.mean()
    assert p_smooth < p_plain


def test_a_checkpoint_of_another_normalisation_or_other_soft_labels_is_not_resumed(tmp_path):
    """A finished checkpoint is reused only for the same normaliser and the same soft labels:
    a teacher trained on the same windows under another fold normaliser (or a student
    distilled from other soft labels) trains afresh."""
    X, y, norm = _data()
    ck = tmp_path / "ck.pt"
    _train(X, y, norm, checkpoint=ck)
    assert _train(X, y, norm, checkpoint=ck)[1].resumed_from == CFG.epochs
    other = Normalizer(tuple(m + 0.5 for m in norm.mean), norm.std)
    assert _train(X, y, other, checkpoint=ck)[1].resumed_from == 0

    kd = KDConfig(alpha=0.5, temperature=2.0)
    z = np.random.default_rng(0).normal(size=(len(X), 3)).astype(np.float32)
    ck2 = tmp_path / "kd.pt"
    _train(X, y, norm, checkpoint=ck2, kd=kd, teacher_logits=z)
    assert _train(X, y, norm, checkpoint=ck2, kd=kd, teacher_logits=z)[1].resumed_from == CFG.epochs
    assert _train(X, y, norm, checkpoint=ck2, kd=kd, teacher_logits=z + 1.0)[1].resumed_from == 0


def test_ema_keeps_the_moving_average_of_every_step_and_resumes_exactly(tmp_path, monkeypatch):
    """With ``ema_epochs`` the returned weights are the exponential moving average of the
    weights after every optimiser step (the first step's weights, then
    ``e = d e + (1 - d) w``, ``d = exp(-1 / (ema_epochs * steps per epoch))``), the trained
    weights follow the same path as without it, and a killed run resumes onto them exactly."""
    import math

    X, y, norm = _data()  # 90 windows, batches of 32: 3 steps per epoch (the last has 26)
    cfg = TrainConfig(epochs=3, batch_size=32, lr=1e-2, patience=0, device="cpu",
                      augment=AugmentConfig(rotate=False, scale=0.0, jitter=0.0),
                      ema_epochs=0.5)  # fmt: skip
    steps: list[dict[str, torch.Tensor]] = []
    real_step = torch.optim.AdamW.step
    holder: dict[str, torch.nn.Module] = {}

    def spy(self, *a, **kw):
        out = real_step(self, *a, **kw)
        steps.append({k: v.detach().clone() for k, v in holder["m"].state_dict().items()})
        return out

    def train(c, **kw):
        seed_everything(0)
        m = GRUStudent(3, StudentConfig(hidden=4))
        holder["m"] = m
        fit(m, X, y, norm, c, **kw)
        return m

    monkeypatch.setattr(torch.optim.AdamW, "step", spy)
    plain = train(replace(cfg, ema_epochs=0.0))
    plain_steps, steps[:] = list(steps), []
    ema = train(cfg)
    assert len(steps) == len(plain_steps) == 9
    for a, b in zip(steps, plain_steps, strict=True):  # the average does not steer training
        for k in a:
            assert torch.equal(a[k], b[k]), k
    d = math.exp(-1 / (0.5 * 3))
    want = {k: v.double() for k, v in steps[0].items()}
    for w in steps[1:]:
        want = {k: d * want[k] + (1 - d) * w[k].double() for k in want}
    got = ema.state_dict()
    for k in want:
        torch.testing.assert_close(got[k].double(), want[k], rtol=0, atol=1e-6)
    assert not torch.equal(got["out.weight"], plain.state_dict()["out.weight"])

    class Killed(Exception):
        pass

    def die(epoch, rec):
        if epoch == 2:
            raise Killed

    monkeypatch.setattr(torch.optim.AdamW, "step", real_step)
    with pytest.raises(Killed):
        train(cfg, checkpoint=tmp_path / "e.pt", on_epoch=die)
    resumed = train(cfg, checkpoint=tmp_path / "e.pt")
    for (k, a), b in zip(got.items(), resumed.state_dict().values(), strict=True):
        assert torch.equal(a, b), k


def test_mix_batch_mixes_windows_and_labels_in_the_same_proportions():
    from ethoedge.train import mix_batch

    b = 64
    x = torch.arange(b, dtype=torch.float32)[:, None, None].expand(b, 3, 5).clone()
    y = torch.arange(b)  # window i is the constant i, of class i
    xm, ym = mix_batch(x, y, b, 0.4, torch.Generator().manual_seed(0))
    assert xm.shape == x.shape and ym.shape == (b, b)
    torch.testing.assert_close(ym.sum(1), torch.ones(b))
    partners = set()
    for i in range(b):
        lam = float(ym[i, i])
        assert 0 < lam <= 1
        others = [j for j in range(b) if j != i and ym[i, j] > 0]
        assert len(others) <= 1  # one other window at most (none when paired with itself)
        j = others[0] if others else i
        partners.add(j)
        want = torch.full((3, 5), lam * i + (1 - lam) * j)
        torch.testing.assert_close(xm[i], want, rtol=0, atol=1e-4)
    assert len(partners) == b  # the partners are a permutation of the batch
    shares = ym[torch.arange(b), y]
    assert float(shares.min()) < 0.5 and float((shares < 1).float().mean()) > 0.9


def test_mixup_plain_loss_is_against_mixed_label_probabilities(monkeypatch):
    import ethoedge.train as T

    targets: list[torch.Tensor] = []
    real = T.F.cross_entropy

    def spy(logits, target, *a, **kw):
        targets.append(target.detach().clone())
        return real(logits, target, *a, **kw)

    monkeypatch.setattr(T.F, "cross_entropy", spy)
    X, y, norm = _data()
    seed_everything(0)
    m = GRUStudent(3, StudentConfig(hidden=4))
    cfg = replace(CFG, epochs=1, augment=replace(CFG.augment, mixup=0.4))
    fit(m, X, y, norm, cfg)
    assert targets and all(t.ndim == 2 and t.shape[1] == 3 for t in targets)
    for t in targets:
        torch.testing.assert_close(t.sum(1), torch.ones(len(t)))
    assert any(bool(((t > 0) & (t < 1)).any()) for t in targets)  # labels really mixed


def test_consistent_distillation_with_mixup_scores_the_mixed_window():
    """The teacher of consistent distillation sees exactly the student's mixed input."""
    from ethoedge.models import ResNetTeacher, TeacherConfig

    X, y, norm = _data()
    seed_everything(1)
    teacher = ResNetTeacher(3, TeacherConfig(filters=(4, 4, 4)))
    seen_t: list[torch.Tensor] = []
    seen_s: list[torch.Tensor] = []
    teacher.register_forward_hook(lambda mod, inp, out: seen_t.append(inp[0].clone()))
    seed_everything(0)
    m = GRUStudent(3, StudentConfig(hidden=4))
    m.register_forward_hook(
        lambda mod, inp, out: seen_s.append(inp[0].clone()) if mod.training else None
    )
    cfg = replace(
        CFG, epochs=1, augment=AugmentConfig(rotate=False, scale=0.0, jitter=0.0, mixup=1.0)
    )
    fit(m, X, y, norm, cfg, kd=KDConfig(alpha=0.5, temperature=1.0, soft_labels="consistent"),
        teacher=teacher)  # fmt: skip
    assert len(seen_t) == len(seen_s) == 3
    for a, b in zip(seen_t, seen_s, strict=True):
        assert torch.equal(a, b)
    # and it is not the batch unmixed: no row equals a normalised training window
    xn = torch.from_numpy(norm.apply(X))
    rows = seen_s[0].reshape(len(seen_s[0]), -1)
    d = torch.cdist(rows, xn.reshape(len(xn), -1)).min(1).values
    assert float(d.max()) > 1e-3


def test_mixup_with_stored_soft_labels_is_refused():
    from ethoedge.errors import ConfigError
    from kdhelpers import tiny_config

    X, y, norm = _data()
    z = np.zeros((len(X), 3), np.float32)
    cfg = replace(CFG, augment=replace(CFG.augment, mixup=0.4))
    with pytest.raises(ConfigError, match="consistent"):
        fit(GRUStudent(3, StudentConfig(hidden=4)), X, y, norm, cfg,
            kd=KDConfig(alpha=0.5), teacher_logits=z)  # fmt: skip
    base = tiny_config()
    with pytest.raises(ConfigError, match="consistent"):
        replace(base, student_train=cfg)
    replace(base, student_train=cfg, kd=KDConfig(soft_labels="consistent"))
    replace(base, student_train=cfg, kd=KDConfig(alpha=0.0))


def test_a_mixup_checkpoint_is_not_resumed_without_mixup(tmp_path):
    X, y, norm = _data()
    ck = tmp_path / "ck.pt"
    _train(X, y, norm, checkpoint=ck)
    seed_everything(0)
    mixed = replace(CFG, augment=replace(CFG.augment, mixup=0.4))
    res = fit(GRUStudent(3, StudentConfig(hidden=4)), X, y, norm, mixed, X_val=X[:30],
              y_val=y[:30], checkpoint=ck)  # fmt: skip
    assert res.resumed_from == 0


def test_a_distilled_checkpoint_is_not_resumed_with_standardised_logits(tmp_path):
    X, y, norm = _data()
    z = np.random.default_rng(0).normal(size=(len(X), 3)).astype(np.float32)
    ck = tmp_path / "ck.pt"
    _train(X, y, norm, checkpoint=ck, kd=KDConfig(alpha=0.5), teacher_logits=z)
    again = _train(X, y, norm, checkpoint=ck, kd=KDConfig(alpha=0.5), teacher_logits=z)[1]
    assert again.resumed_from == CFG.epochs  # the same settings resume
    seed_everything(0)
    res = fit(GRUStudent(3, StudentConfig(hidden=4)), X, y, norm, CFG, X_val=X[:30],
              y_val=y[:30], checkpoint=ck, kd=KDConfig(alpha=0.5, standardize_logits=True),
              teacher_logits=z)  # fmt: skip
    assert res.resumed_from == 0
