"""Model identity: every documented results.json name parses to one ModelKey and renders back."""

from __future__ import annotations

import pytest

from ethoedge.experiment.keys import ModelKey

NAMES = ["teacher", "baseline", "ensemble", "student", "student_kd", "student_h16",
         "student_kd_h16", "student_w8", "student_kd_w16", "student_h16_w8",
         "student_kd_h8_w6"]  # fmt: skip


@pytest.mark.parametrize("name", NAMES)
def test_name_round_trip(name):
    key = ModelKey.parse(name)
    assert key.name == name
    assert ModelKey.parse(key.name) == key


def test_fields_and_relations():
    k = ModelKey.parse("student_kd_h16_w8")
    assert (k.role, k.hidden, k.kd, k.bits) == ("student", 16, True, 8)
    assert k.float_key == ModelKey.parse("student_kd_h16")
    assert k.plain_key == ModelKey.parse("student_h16_w8")
    assert ModelKey("student").with_kd().quantized(16).name == "student_kd_w16"
    assert len({ModelKey.parse(n) for n in NAMES}) == len(NAMES)


@pytest.mark.parametrize("bad", ["students", "student_kd_", "student_h0", "student_w", "kd",
                                 "student_w8_kd", "teacher_kd"])  # fmt: skip
def test_bad_names_rejected(bad):
    with pytest.raises(ValueError):
        ModelKey.parse(bad)


def test_teacher_has_no_student_fields():
    with pytest.raises(ValueError):
        ModelKey("teacher", hidden=16)
