"""OpenAPI links: what a response hands on to the next call (the id of what was created, the key it was made
with), so that clients and stateful API fuzzers (schemathesis) can follow create -> read -> change -> delete."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import FastAPI

AUTH = {"header.authorization": "$request.header.authorization"}  # the chain goes on with the caller's key
NEW_KEY = {"header.authorization": "Bearer {$response.body#/api_key}"}  # ...or with the key just created
DEVICE_OPS = (("GetDevice", "get", "/api/v1/devices/{device}"),
              ("PatchDevice", "patch", "/api/v1/devices/{device}"),
              ("DeleteDevice", "delete", "/api/v1/devices/{device}"),
              ("DeviceReadings", "get", "/api/v1/devices/{device}/readings"),
              ("DeviceEvents", "get", "/api/v1/devices/{device}/events"),
              ("DeviceAggregates", "get", "/api/v1/devices/{device}/aggregates"),
              ("SendCommand", "post", "/api/v1/devices/{device}/commands"))
ASSET_OPS = (("GetAsset", "get", "/api/v1/assets/{asset}"),
             ("AssetAggregates", "get", "/api/v1/assets/{asset}/aggregates"))

# (method, path, status) of a response -> its links: name -> (method, path of the target, parameters)
LINKS: dict[tuple[str, str, str], list[tuple[str, str, str, dict[str, str]]]] = {
    ("post", "/api/v1/tenants", "201"): [
        ("CreateDevicesOfTheTenant", "post", "/api/v1/devices", NEW_KEY),
        ("CreateAssetOfTheTenant", "post", "/api/v1/assets", NEW_KEY),
        ("ListDevicesOfTheTenant", "get", "/api/v1/devices", NEW_KEY),
    ],
    ("post", "/api/v1/devices", "201"): [  # a single device's id is in the request (the answer is a count)
        (name, method, path, {"path.device": "$request.body#/id", **AUTH}) for name, method, path in DEVICE_OPS],
    ("get", "/api/v1/devices/{device}", "200"): [
        (name, method, path, {"path.device": "$response.body#/id", **AUTH}) for name, method, path in DEVICE_OPS
        if name != "GetDevice"],
    ("patch", "/api/v1/devices/{device}", "200"): [
        ("GetPatchedDevice", "get", "/api/v1/devices/{device}", {"path.device": "$response.body#/id", **AUTH})],
    ("get", "/api/v1/devices", "200"): [
        ("GetFirstListedDevice", "get", "/api/v1/devices/{device}", {"path.device": "$response.body#/0/id", **AUTH})],
    ("post", "/api/v1/assets", "201"): [
        (name, method, path, {"path.asset": "$response.body#/id", **AUTH}) for name, method, path in ASSET_OPS],
    ("post", "/api/v1/devices/{device}/commands", "202"): [
        ("GetCommandStatus", "get", "/api/v1/commands/{command_id}",
         {"path.command_id": "$response.body#/id", **AUTH})],
}


def add_links(schema: dict[str, Any]) -> dict[str, Any]:
    """Put LINKS into a generated OpenAPI document (by the targets' operationIds); returns it."""
    paths = schema["paths"]
    for (method, path, status), links in LINKS.items():
        response = paths[path][method]["responses"][status]
        response["links"] = {name: {"operationId": paths[target][verb]["operationId"], "parameters": params}
                             for name, verb, target, params in links}
    return schema


def with_links(app: FastAPI) -> None:
    """Serve the app's OpenAPI document with LINKS in it."""
    generate: Callable[[], dict[str, Any]] = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = add_links(generate())
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
