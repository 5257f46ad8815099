"""Re-usable power-grid-model call: output buffers and the load-update view are bound once.

``PowerGridModel.update`` / ``calculate_power_flow`` rebuild dataset views on every call, which
costs ~0.5 ms of Python per step and dominates on small grids.  This binds them once and then
calls the core directly.  It relies on power-grid-model's private ``_core`` API (checked against
1.12); :func:`make_fast_call` returns None when that API is missing so callers fall back.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from power_grid_model import CalculationMethod, CalculationType, ComponentType, PowerGridModel

try:
    from power_grid_model._core.data_handling import (
        get_output_type,
        prepare_output_view,
        prepare_update_view,
    )
    from power_grid_model._core.error_handling import assert_no_error
    from power_grid_model._core.power_grid_core import ConstDatasetPtr
    from power_grid_model._core.power_grid_core import get_power_grid_core as get_pgc
except ImportError:  # pragma: no cover - other power-grid-model versions
    get_pgc = None


class FastPowerFlow:
    """Power flow on ``model`` writing into fixed output arrays (``self.output``) on every :meth:`run`."""

    def __init__(
        self,
        model: PowerGridModel,
        *,
        symmetric: bool,
        outputs: dict[ComponentType, list[str]],
        update: dict[ComponentType, dict[str, np.ndarray]],
        error_tolerance: float,
        max_iterations: int,
        calculation_method: CalculationMethod | str,
    ) -> None:
        self._model = model
        self._options = model._options(
            calculation_type=CalculationType.power_flow,
            symmetric=symmetric,
            error_tolerance=error_tolerance,
            max_iterations=max_iterations,
            calculation_method=calculation_method,
            threading=-1,
        )
        self.output: dict[ComponentType, Any] = model._construct_output(
            output_component_types=outputs,
            calculation_type=CalculationType.power_flow,
            symmetric=symmetric,
            is_batch=False,
            batch_size=1,
        )
        output_type = get_output_type(calculation_type=CalculationType.power_flow, symmetric=symmetric)
        self._out_view = prepare_output_view(self.output, output_type)
        # the view keeps pointers to these arrays: callers mutate them in place between runs
        self._update_arrays = update
        self._update_view = prepare_update_view(update)
        self._no_update = ConstDatasetPtr()

    def push_update(self) -> None:
        """Copy the current contents of the bound update arrays into the model."""
        get_pgc().update_model(self._model._model, self._update_view.get_dataset_ptr())
        assert_no_error()

    def run(self) -> dict[ComponentType, Any]:
        """Solve and return the (reused) output arrays."""
        get_pgc().calculate(
            self._model._model,
            self._options.opt,
            output_data=self._out_view.get_dataset_ptr(),
            update_data=self._no_update,
        )
        assert_no_error()
        return self.output


def make_fast_call(model: PowerGridModel, **kwargs: Any) -> FastPowerFlow | None:
    """FastPowerFlow, or None if this power-grid-model version lacks the private API used."""
    if get_pgc is None:
        return None
    try:
        return FastPowerFlow(model, **kwargs)
    except (AttributeError, TypeError):
        return None
