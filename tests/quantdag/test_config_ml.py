"""The ``ml`` section of quantdag.yaml: defaults, and a bad value named."""

from __future__ import annotations

import pytest

from pipeline_helpers import config_with
from quantdag.errors import ConfigurationError


def test_ml_defaults_train_on_the_research_markets():
    c = config_with()
    assert c.ml.enabled and c.ml.model_name == "quantdag_ml"
    assert c.ml_markets == c.research_markets
    cfg = c.ml.training_config()
    assert cfg.labels.kind == "triple_barrier" and cfg.threshold in cfg.thresholds and cfg.cpcv is None


@pytest.mark.parametrize(
    ("ml", "match"),
    [({"features": {"groups": ["nope"]}}, "nope"), ({"labels": {"horizon": 0}}, "horizon"), ({"labels": {"kind": "meta"}}, "meta"),
     ({"cpcv": [2, 3]}, "cpcv"), ({"markets": ["DOGE/USDT:1h"]}, "DOGE"), ({"model": "xgboost"}, "xgboost"), ({"typo": 1}, "typo")],
)  # fmt: skip
def test_bad_ml_setting_is_named(ml, match):
    with pytest.raises(ConfigurationError, match=match):
        config_with(ml=ml)
