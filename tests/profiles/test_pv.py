"""Optional rooftop PV: netted out of P, zero at night, plausible yields, exact across resolutions."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from gridloop.profiles import ITALIAN_FAMILY, HouseholdFleet, HouseholdParams

PV = HouseholdParams(pv_share=0.5, pv_kwp=4.0)
TZ = "Europe/Stockholm"


def test_pv_is_netted_out_and_zero_at_night():
    start = pd.Timestamp("2026-06-16T00:00", tz=TZ)
    with_pv = HouseholdFleet(100, start, step_s=900, seed=3, params=PV)
    without = HouseholdFleet(100, start, step_s=900, seed=3, params=HouseholdParams())
    pv = np.empty((96, 100))
    p_net = np.empty((96, 100))
    p_load = np.empty((96, 100))
    for i in range(96):
        p_net[i] = with_pv.step()[0]
        pv[i] = with_pv.last_pv_w()
        p_load[i] = without.step()[0]
    np.testing.assert_allclose(p_net + pv, p_load, atol=1e-9)
    owners = with_pv.pv_kwp > 0
    assert (pv[:, ~owners] == 0).all()
    assert pv[:8].max() == 0.0 and pv[-4:].max() == 0.0  # 00:00-02:00 and 23:00-24:00
    assert (p_net.min(axis=0)[owners] < 0).mean() > 0.8  # exporting around noon in June
    p3, _ = with_pv.last_phase()
    np.testing.assert_allclose(p3.sum(axis=1), p_net[-1], atol=1e-9)


@pytest.mark.parametrize(
    ("params", "tz", "low", "high"),
    [(PV, TZ, 700, 1200), (replace(ITALIAN_FAMILY, pv_share=0.5), "Europe/Rome", 1100, 1700)],
    ids=["stockholm", "rome"],
)
def test_pv_yield_is_plausible(params, tz, low, high):
    yields = []
    for d in pd.date_range("2026-01-10", periods=12, freq="30D", tz=tz):
        fleet = HouseholdFleet(20, d, step_s=3600, seed=4, params=params)
        e = np.zeros(20)
        for _ in range(24):
            fleet.step()
            e += fleet.last_pv_w()
        kwp = fleet.pv_kwp
        yields.append(e[kwp > 0].sum() / kwp[kwp > 0].sum() / 1000.0)  # kWh/kWp per day
    annual = np.mean(yields) * 365
    assert low <= annual <= high, annual


def test_pv_energy_exact_between_1s_and_15min():
    start = pd.Timestamp("2026-05-20T11:00", tz=TZ)
    f1 = HouseholdFleet(10, start, step_s=1, seed=8, params=PV)
    f900 = HouseholdFleet(10, start, step_s=900, seed=8, params=PV)
    e1 = np.zeros(10)
    for _ in range(1800):
        f1.step()
        e1 += f1.last_energy_j()
    e900 = np.zeros(10)
    for _ in range(2):
        f900.step()
        e900 += f900.last_energy_j()
    assert np.array_equal(e1, e900)
