import numpy as np
import pytest
from sklearn.metrics import f1_score, matthews_corrcoef

from ethoedge.errors import ConfigError
from ethoedge.evaluate.cv import make_splits, mean_std, paired_difference
from ethoedge.evaluate.metrics import classification_metrics, per_class_csv, save_confusion

ANIMALS = np.repeat(np.array(["a", "b", "c", "d", "e", "f"]), 5)


@pytest.mark.parametrize("protocol", ["loao", "kfold", "holdout"])
def test_no_split_leaks_an_animal(protocol):
    splits = make_splits(ANIMALS, protocol, k=3, seed=1)
    assert len(splits) == {"loao": 6, "kfold": 3, "holdout": 1}[protocol]
    tested = []
    for s in splits:
        sides = [set(ANIMALS[s.train]), set(ANIMALS[s.test]), set(ANIMALS[s.val])]
        assert all(sides) and not (
            sides[0] & sides[1] or sides[0] & sides[2] or sides[1] & sides[2]
        )
        assert len(s.train) + len(s.test) + len(s.val) == len(ANIMALS)
        tested += list(s.test)
    if protocol != "holdout":  # every window is tested exactly once
        assert sorted(tested) == list(range(len(ANIMALS)))


@pytest.mark.parametrize("protocol", ["loao", "kfold", "holdout"])
def test_zero_validation_animals_keeps_every_training_animal(protocol):
    for s in make_splits(ANIMALS, protocol, k=3, seed=1, val_animals=0):
        assert s.val is None
        assert not set(ANIMALS[s.train]) & set(ANIMALS[s.test])
        assert len(s.train) + len(s.test) == len(ANIMALS)


def test_fewer_animals_than_folds_is_a_clear_error():
    with pytest.raises(ConfigError, match="at least 7 animals"):
        make_splits(ANIMALS, "kfold", k=7)


def test_metrics_agree_with_sklearn(tmp_path):
    rng = np.random.default_rng(0)
    y, p = rng.integers(0, 3, 50), rng.integers(0, 3, 50)
    m = classification_metrics(y, p, ("a", "b", "c"))
    assert m["mcc"] == pytest.approx(matthews_corrcoef(y, p))
    assert m["macro_f1"] == pytest.approx(f1_score(y, p, average="macro"))
    assert np.asarray(m["confusion"]).sum() == 50
    assert per_class_csv(m).splitlines()[0] == "class,precision,recall,f1,support"
    csv, png = save_confusion(m["confusion"], ("a", "b", "c"), tmp_path / "cm", "t")
    assert csv.read_text().startswith("true\\predicted,a,b,c") and png.stat().st_size > 1000


def test_paired_difference_interval():
    a = np.array([0.60, 0.70, 0.65, 0.72])
    b = np.array([0.55, 0.66, 0.64, 0.65])
    d = paired_difference(a, b)
    diff = a - b
    half = 3.182446305284263 * diff.std(ddof=1) / 2  # t(0.975, 3) * sd / sqrt(4)
    assert d["mean"] == pytest.approx(diff.mean())
    assert d["ci_low"] == pytest.approx(diff.mean() - half)
    assert d["ci_high"] == pytest.approx(diff.mean() + half)
    assert mean_std([0.5]) == (0.5, 0.0)
