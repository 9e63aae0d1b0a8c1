"""Autoplay's step delay (issue 26, next-token-visualization's autoplay speed): config.toml
[sampling] autoplay_delay and the core's autoplay_tick, which holds the next press back
until the delay has passed (the app and a script wait the seconds it returns)."""

from __future__ import annotations

import time
from dataclasses import replace

import pytest
from app_fixtures import embedded_engine, requires_model

from explorer.config import ConfigError, load_settings
from explorer.sampling import SamplingConfig, SamplingError
from explorer.session.headless import Headless
from explorer.session.sampler import StopRule

SAMPLING = SamplingConfig(values={"seed": 5, "temperature": 1.0})


def test_the_delay_is_read_from_config_and_checked(tmp_path):
    path = tmp_path / "config.toml"
    path.write_text("[sampling]\nautoplay_delay = 0.5\n")
    assert load_settings(path).sampling.delay == 0.5
    assert SamplingConfig.from_table({}).delay == 0.0
    for bad in (-1, 11, "fast", float("nan")):
        with pytest.raises(SamplingError, match="autoplay_delay must be a number of seconds from 0 to 10"):
            SamplingConfig.from_table({"autoplay_delay": bad})
    path.write_text('[sampling]\nautoplay_delay = "x"\n')
    with pytest.raises(ConfigError):
        load_settings(path)


@requires_model
def test_autoplay_waits_the_delay_between_steps_and_draws_the_same_tokens():
    engine = embedded_engine()
    ids = tuple(engine.encode("Once upon a time"))
    runs = {}
    for delay in (0.0, 0.25):
        run = Headless(engine, replace(SAMPLING, delay=delay))
        core = run.open(ids)
        core.set_sampler(core.sampler.settings, StopRule(max_tokens=4))
        start = time.monotonic()
        core.autoplay()
        run.settle()
        runs[delay] = (core.book.current.ids, time.monotonic() - start)
        assert not core.autoplaying and core.autoplay_delay == delay
    assert runs[0.25][0] == runs[0.0][0] and len(runs[0.0][0]) == len(ids) + 4
    assert runs[0.25][1] >= 3 * 0.25  # four presses, three waits between them


@requires_model
def test_autoplay_tick_returns_the_wait_and_the_panel_sets_the_delay():
    engine = embedded_engine()
    run = Headless(engine, replace(SAMPLING, delay=2.0))
    core = run.open(tuple(engine.encode("Once upon a time")))
    core.set_sampler(core.sampler.settings, StopRule(max_tokens=3))
    core.autoplay()  # the first press is at once
    while run.jobs:  # run the sampled step's jobs without ticking again
        run.step()
    now = time.monotonic()
    wait = core.autoplay_tick(now=now)
    assert wait is not None and 0 < wait <= 2.0
    assert core.autoplay_tick(now=now + 2.01) is None  # pressed: the next step is on its way
    core.set_autoplay_delay("0.5")
    assert core.autoplay_delay == 0.5
    with pytest.raises(SamplingError, match="The autoplay delay must be a number of seconds"):
        core.set_autoplay_delay("-2")
    core.autoplay()  # stops it
    assert not core.autoplaying
