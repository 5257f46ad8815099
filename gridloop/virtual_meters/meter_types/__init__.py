"""The pilots' meter types beyond the residential three-phase bank, one module per family, vectorised over meters.

:mod:`.bank` (shared base, samples with meter clocks, resolutions), :mod:`.substation` (three-phase
substation meters), :mod:`.single_phase` (single-phase meters), :mod:`.home_1hz` (1 Hz home meters),
:mod:`.blink` (optical pulse readers). Their envelopes are encoded by :mod:`gridloop.virtual_meters.envelopes`.
"""
