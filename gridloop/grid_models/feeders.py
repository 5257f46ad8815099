"""Seeded synthetic low-voltage feeders (and multi-substation districts) as pandapower nets.

Homes are single-phase: each load carries a ``phase`` column (0=L1, 1=L2, 2=L3) drawn with a
skew towards L1, and :func:`phase_split` turns per-home powers into (n_load, 3) phase arrays.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandapower as pp

from gridloop.grid_models.zero_sequence import add_zero_sequence_defaults

LV_CABLES = ("NAYY 4x150 SE", "NAYY 4x120 SE", "NAYY 4x50 SE")
LV_CABLE_WEIGHTS = (0.5, 0.35, 0.15)
MV_CABLE = "NA2XS2Y 1x185 RM/25 12/20 kV"


def phase_probabilities(skew: float) -> np.ndarray:
    """P(L1, L2, L3) for a skew in [0, 1]: 0 is uniform, 1 puts every home on L1."""
    if not 0.0 <= skew <= 1.0:
        raise ValueError("phase skew must lie in [0, 1]")
    return np.array([1 + 2 * skew, 1 - skew, 1 - skew]) / 3.0


def _add_lv_grid(
    net: pp.pandapowerNet,
    mv_bus: int,
    n_feeders: int,
    homes_per_feeder: int,
    rng: np.random.Generator,
    *,
    phase_skew: float,
    home_p_mw: float,
    cos_phi: float,
    trafo_std_type: str,
    length_km: tuple[float, float],
) -> None:
    """Substation + ``n_feeders`` random-tree feeders with one home per LV bus."""
    lv_busbar = pp.create_bus(net, vn_kv=0.4, name="LV busbar")
    pp.create_transformer(net, mv_bus, lv_busbar, std_type=trafo_std_type)
    n_home = n_feeders * homes_per_feeder
    homes = np.asarray(pp.create_buses(net, n_home, vn_kv=0.4))
    # each home hangs off the busbar (first home of a feeder) or an earlier home of the same feeder
    k = np.tile(np.arange(homes_per_feeder), n_feeders)
    first = np.repeat(np.arange(n_feeders) * homes_per_feeder, homes_per_feeder)
    parent_k = np.floor(rng.random(n_home) * np.maximum(k, 1)).astype(np.int64)
    parents = np.where(k == 0, lv_busbar, homes[first + parent_k])
    cable = rng.choice(len(LV_CABLES), size=n_home, p=LV_CABLE_WEIGHTS)
    cable = np.where(k < 3, 0, cable)  # the trunk next to the busbar is the heavy cable
    lengths = rng.uniform(*length_km, size=n_home)
    pp.create_lines(net, parents, homes, lengths, std_type=[LV_CABLES[c] for c in cable])
    p = home_p_mw * rng.uniform(0.5, 1.5, size=n_home)
    q = p * np.tan(np.arccos(cos_phi))
    idx = pp.create_loads(net, homes, p_mw=p, q_mvar=q)
    net.load.loc[idx, "phase"] = rng.choice(3, size=n_home, p=phase_probabilities(phase_skew))


def generate_feeders(
    n_feeders: int,
    homes_per_feeder: int,
    *,
    seed: int = 0,
    phase_skew: float = 0.0,
    home_p_mw: float = 0.002,
    cos_phi: float = 0.97,
    trafo_std_type: str = "0.4 MVA 20/0.4 kV",
    length_km: tuple[float, float] = (0.015, 0.045),
) -> pp.pandapowerNet:
    """One 20/0.4 kV substation with N feeders × M single-phase homes, reproducible from ``seed``."""
    return generate_district(
        1,
        n_feeders,
        homes_per_feeder,
        seed=seed,
        phase_skew=phase_skew,
        home_p_mw=home_p_mw,
        cos_phi=cos_phi,
        trafo_std_type=trafo_std_type,
        length_km=length_km,
    )


def generate_district(
    n_substations: int,
    n_feeders: int,
    homes_per_feeder: int,
    *,
    seed: int = 0,
    phase_skew: float = 0.0,
    home_p_mw: float = 0.002,
    cos_phi: float = 0.97,
    trafo_std_type: str = "0.4 MVA 20/0.4 kV",
    length_km: tuple[float, float] = (0.015, 0.045),
    mv_length_km: tuple[float, float] = (0.3, 1.0),
) -> pp.pandapowerNet:
    """Radial 20 kV tree of substations, each with :func:`generate_feeders`-style LV grids.

    Bus count is 1 + n_substations · (2 + n_feeders · homes_per_feeder).
    """
    rng = np.random.default_rng(seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        net = pp.create_empty_network(name=f"district-{n_substations}x{n_feeders}x{homes_per_feeder}-s{seed}")
        root = pp.create_bus(net, vn_kv=20.0, name="MV root")
        pp.create_ext_grid(net, root, vm_pu=1.02)
        mv = np.asarray(pp.create_buses(net, n_substations, vn_kv=20.0))
        j = np.arange(n_substations)
        # MV tree: a few substations per cable from the root, then random earlier substations
        parent = np.where(
            j < max(1, n_substations // 8),
            root,
            mv[np.floor(rng.random(n_substations) * np.maximum(j, 1)).astype(np.int64)],
        )
        pp.create_lines(net, parent, mv, rng.uniform(*mv_length_km, size=n_substations), std_type=MV_CABLE)
        for bus in mv:  # one substation at a time (construction only)
            _add_lv_grid(
                net,
                int(bus),
                n_feeders,
                homes_per_feeder,
                rng,
                phase_skew=phase_skew,
                home_p_mw=home_p_mw,
                cos_phi=cos_phi,
                trafo_std_type=trafo_std_type,
                length_km=length_km,
            )
        net.trafo["vector_group"] = "Dyn"
        net.load["phase"] = net.load["phase"].astype(np.int64)
        add_zero_sequence_defaults(net)
    return net


def phase_split(net: pp.pandapowerNet, p_mw: np.ndarray, q_mvar: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Place each single-phase home's power on its phase: returns (n_load, 3) p and q arrays.

    Loads with ``phase == -1`` (three-phase, e.g. in the pilot grids) are split equally over L1..L3.
    """
    phase = net.load["phase"].to_numpy(dtype=np.int64)
    on = (phase[:, None] == np.arange(3)) | (phase[:, None] < 0)
    share = on / on.sum(axis=1, keepdims=True)
    return share * np.asarray(p_mw, dtype=float)[:, None], share * np.asarray(q_mvar, dtype=float)[:, None]
