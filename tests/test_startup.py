import gc

import pytest

from realesrgan_ext.startup import frozen_startup


@pytest.fixture
def restore_gc():
    was_enabled = gc.isenabled()
    yield
    gc.unfreeze()
    if was_enabled:
        gc.enable()


def test_frozen_startup_pauses_the_collector_then_freezes_what_the_block_made(restore_gc):
    gc.enable()
    gc.unfreeze()
    with frozen_startup():
        assert not gc.isenabled()
        made = [[index] for index in range(1000)]  # container objects the collector tracks
    assert gc.isenabled()
    assert gc.get_freeze_count() >= len(made)
    assert gc.collect() >= 0  # later collections still run


def test_frozen_startup_leaves_a_disabled_collector_disabled_even_on_error(restore_gc):
    gc.disable()
    with pytest.raises(ImportError), frozen_startup():
        raise ImportError("no such engine")
    assert not gc.isenabled()
