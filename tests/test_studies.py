"""Study settings (paper_repro/experiments/studies.py): job sizes and the images of each shard."""

from __future__ import annotations

import pytest

from paper_repro.config import load_config
from paper_repro.errors import PaperReproError
from paper_repro.experiments.studies import Study, studies
from paper_repro.query import Norm


def _study(**kw) -> Study:
    base = dict(
        name="s",
        models=("m",),
        norms=(Norm.LINF,),
        images=10,
        per_class=False,
        untargeted=False,
        max_distance=None,
        timeout=2.0,
        shards=1,
    )
    return Study(**{**base, **kw})


def test_job_minutes_count_queries_per_job():
    assert _study().job_minutes() == pytest.approx(10 * 9 * 2 / 60)  # 9 targets per image
    assert _study(untargeted=True).job_minutes() == pytest.approx(10 * 2 / 60)
    assert _study(shards=3).job_minutes() == pytest.approx(4 * 9 * 2 / 60)  # 10 = 4 + 3 + 3
    assert _study(shards=3).job_minutes(classes=3) == pytest.approx(4 * 2 * 2 / 60)


def test_shards_deal_every_image_once():
    s = _study(shards=3)
    dealt = [s.shard_images(list(range(100, 110)), k) for k in range(3)]
    assert dealt == [[100, 103, 106, 109], [101, 104, 107], [102, 105, 108]]
    with pytest.raises(PaperReproError, match="shard 3"):
        s.shard_images(list(range(10)), 3)


def test_the_default_config_schedules_carlini_first():
    jobs = studies(load_config())
    order = sorted(jobs, key=lambda n: -jobs[n].job_minutes())
    assert order[0] == "carlini" and order[-1] == "sandwich"
