"""The portfolio spec: validation naming the field, round trip, the two-asset default."""

from __future__ import annotations

import json

import pytest

from engine.portfolio.examples import GLOBAL_SIX
from engine.portfolio.spec import TWO_ASSET, Asset, PortfolioSpec
from engine.validation import ConfigError

EQ = Asset("us", "equity")
BOND = Asset("ust10", "government_bond", maturity_years=10.0)


def test_default_is_the_two_asset_study():
    assert TWO_ASSET.is_two_asset
    assert TWO_ASSET.names == ("equity", "bond")
    assert TWO_ASSET.defensive[0].maturity_years == 7.0
    assert PortfolioSpec.from_dict(TWO_ASSET.to_dict()) == TWO_ASSET


def test_six_asset_round_trip_and_order():
    spec = PortfolioSpec(
        assets=(BOND, EQ, Asset("eu", "equity", vol_ratio=1.2), Asset("cash", "cash"),
                Asset("jp", "equity", vol_ratio=1.1, drift_spread=-0.01)),
        equity_correlation=((1, 0.6, 0.5), (0.6, 1, 0.4), (0.5, 0.4, 1)),
        risky_weights=(0.5, 0.3, 0.2),
    )
    assert [a.name for a in spec.ordered] == ["us", "eu", "jp", "ust10", "cash"]
    assert not spec.is_two_asset
    assert PortfolioSpec.from_dict(spec.to_dict()) == spec


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: Asset("Bad Name", "equity"), "Asset.name"),
        (lambda: Asset("x", "credit"), "asset_class = 'credit' is not one of"),
        (lambda: Asset("x", "government_bond"), "maturity_years is required"),
        (lambda: Asset("x", "government_bond", maturity_years=60), "maturity_years = 60"),
        (lambda: Asset("x", "government_bond", maturity_years=5, roll="weekly"), "roll"),
        (lambda: Asset("x", "government_bond", maturity_years=5.01, coupon_rate=0.03),
         "fractional part"),
        (lambda: Asset("x", "equity", maturity_years=5), "government_bond assets only"),
        (lambda: Asset("x", "equity", vol_ratio=0), "vol_ratio = 0"),
        (lambda: Asset("x", "cash", vol_ratio=2), "equity assets only"),
        (lambda: PortfolioSpec((EQ,)), "at least one equity and at least one"),
        (lambda: PortfolioSpec((EQ, EQ, BOND)), "duplicate name(s) us"),
        (lambda: PortfolioSpec((EQ, Asset("eu", "equity"), BOND)),
         "equity_correlation is required for 2 equities"),
        (lambda: PortfolioSpec((EQ, Asset("eu", "equity"), BOND),
                               equity_correlation=((1, 1), (1, 1))), "not positive definite"),
        (lambda: PortfolioSpec((EQ, Asset("eu", "equity"), BOND),
                               equity_correlation=((1, 0.2), (0.3, 1))), "symmetric"),
        (lambda: PortfolioSpec((EQ, BOND, Asset("c", "cash")), defensive_weights=(0.5, 0.6)),
         "defensive_weights"),
        (lambda: PortfolioSpec((EQ, BOND), risky_weights=(-0.1,)), "risky_weights[0] = -0.1"),
        (lambda: PortfolioSpec.from_dict({"assets": [{"name": "x", "asset_class": "equity",
                                                      "ticker": "SPX"}]}),
         "assets[0]: unknown field(s) ticker"),
    ],
)
def test_invalid_specs_name_the_field(make, message):
    with pytest.raises(ConfigError) as err:
        make()
    assert message in str(err.value)


def test_shipped_example_round_trips_through_json():
    text = json.dumps(GLOBAL_SIX.to_dict())
    assert PortfolioSpec.from_dict(json.loads(text)) == GLOBAL_SIX
    assert len(GLOBAL_SIX.equities) == 3 and len(GLOBAL_SIX.defensive) == 3
