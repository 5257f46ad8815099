"""Communication links between meters and the platform, one module per technology (shared base: :mod:`.base`).

Calibration of every link against the pilots: ``docs/links.md``.
"""
