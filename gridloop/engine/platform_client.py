"""The simulator's only door into the platform besides MQTT: its REST API."""

from __future__ import annotations

import time

import httpx


class PlatformError(RuntimeError):
    """The platform answered something the simulator cannot work with."""


class PlatformClient:
    """Thin typed calls on the contract's REST paths, authenticated with one tenant's API key."""

    def __init__(self, base_url: str, api_key: str | None = None, timeout_s: float = 30.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.api_key = api_key or ""
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._http = httpx.Client(base_url=self.base_url, headers=headers, timeout=timeout_s)

    def _check(self, response: httpx.Response) -> dict | list:
        if response.status_code >= 400:
            raise PlatformError(f"{response.request.method} {response.request.url.path}: "
                                f"{response.status_code} {response.text[:300]}")
        return response.json() if response.content else {}

    def wait_healthy(self, timeout_s: float = 30.0) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            try:
                if self._http.get("/api/v1/health").status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        raise PlatformError(f"platform at {self.base_url} is not healthy after {timeout_s:.0f} s")

    def create_tenant(self, name: str, admin_key: str) -> str:
        r = self._http.post("/api/v1/tenants", json={"name": name}, headers={"Authorization": f"Bearer {admin_key}"})
        return str(self._check(r)["api_key"])

    def provision(self, devices: list[dict]) -> None:
        for lo in range(0, len(devices), 5000):
            self._check(self._http.post("/api/v1/devices", json=devices[lo:lo + 5000]))

    def create_asset(self, asset: dict) -> None:
        self._check(self._http.post("/api/v1/assets", json=asset))

    def send_command(self, device: str, name: str, args: dict) -> str:
        r = self._http.post(f"/api/v1/devices/{device}/commands", json={"name": name, "args": args})
        return str(self._check(r)["id"])

    def command(self, command_id: str) -> dict:
        return self._check(self._http.get(f"/api/v1/commands/{command_id}"))  # type: ignore[return-value]

    def metrics(self) -> dict:
        return self._check(self._http.get("/api/v1/metrics"))  # type: ignore[return-value]

    def completeness(self, start_ms: int, end_ms: int) -> dict:
        r = self._http.get("/api/v1/completeness", params={"start": start_ms, "end": end_ms})
        return self._check(r)  # type: ignore[return-value]

    def close(self) -> None:
        self._http.close()
