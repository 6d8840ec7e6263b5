"""GC tuning of the web processes."""

from __future__ import annotations

import gc

import pytest

from contact_center.runtime import tune_gc


@pytest.fixture
def restored_gc():
    thresholds = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*thresholds)


def test_thresholds_are_raised_and_startup_objects_frozen(restored_gc):
    gc.unfreeze()
    assert tune_gc(None) == (50_000, 50, 100)
    assert gc.get_threshold() == (50_000, 50, 100)
    assert gc.get_freeze_count() > 0


def test_python_defaults_can_be_kept(restored_gc):
    before = gc.get_threshold()
    assert tune_gc("python") is None
    assert tune_gc("") is None
    assert gc.get_threshold() == before


@pytest.mark.parametrize("setting", ["1,2", "a,b,c", "0,10,10", "1,2,3,4"])
def test_a_bad_setting_is_refused(restored_gc, setting):
    before = gc.get_threshold()
    with pytest.raises(ValueError, match="GC_THRESHOLDS"):
        tune_gc(setting)
    assert gc.get_threshold() == before
