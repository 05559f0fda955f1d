"""pyatmo, the Netatmo client Home Assistant uses (from PyPI), against homehook's Netatmo fake.

Usage: peer.py <fake base URL> <fixtures dir>

pyatmo is pointed at the fake through its own hook: `AbstractAsyncAuth(websession,
base_url=...)` (pyatmo/auth.py), which every API call is built on. pyatmo leaves OAuth to its
caller (Home Assistant), so the token comes from the fake's /oauth2/authorize and
/oauth2/token here, the way a Netatmo app gets one. What pyatmo reads is compared with the
recorded answers the fake serves (tests/fixtures/netatmo) and with what was just written.
Prints one line: `peer: pyatmo@<version> vs netatmo fake: <calls> calls, <checks> checks, pass`.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from importlib.metadata import version
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import aiohttp
from pyatmo import AsyncAccount
from pyatmo.auth import AbstractAsyncAuth

HOME = "91763b24c43d3e344f424e8b"
LIVING = "2746182631"  # NATherm1: setroomthermpoint
ENTRADA = "2833524037"  # NRV in a home with an OTM: setstate
LIGHT = "00:11:22:33:00:11:45:fe"  # Legrand dimmer behind the NLG
SHUTTER = "12:34:56:80:00:c3:69:3d"  # Legrand Z3V shutter behind the NLG
STATION = "12:34:56:80:bb:26"  # the home's weather station
JOHN = "91827374-7e04-5298-83ad-a0cb8372dff1"
VALVE = "12:34:56:03:a5:54"  # Entrada's NRV (Valve1)


class Failed(Exception):
    """A check that did not hold."""


class FakeAuth(AbstractAsyncAuth):
    """pyatmo's auth with the token from the fake; counts the API calls pyatmo makes."""

    def __init__(self, session: aiohttp.ClientSession, base: str, token: str) -> None:
        super().__init__(session, base_url=base + "/")
        self.token = token
        self.calls = 0

    async def async_get_access_token(self) -> str:
        return self.token

    async def async_post_api_request(self, endpoint, base_url=None, params=None):
        self.calls += 1
        return await super().async_post_api_request(endpoint, base_url, params)


async def token(session: aiohttp.ClientSession, base: str) -> str:
    """The authorization code flow against the fake (it consents at once)."""
    redirect = "http://127.0.0.1:9/callback/netatmo"
    async with session.get(
        base + "/oauth2/authorize",
        params={
            "client_id": "fake-client",
            "redirect_uri": redirect,
            "response_type": "code",
            "state": "peer",
            "scope": "read_station read_thermostat write_thermostat read_magellan write_magellan",
        },
        allow_redirects=False,
    ) as resp:
        location = resp.headers["Location"]
    code = parse_qs(urlparse(location).query)["code"][0]
    async with session.post(
        base + "/oauth2/token",
        data={
            "grant_type": "authorization_code",
            "client_id": "fake-client",
            "client_secret": "fake-client-secret",
            "code": code,
            "redirect_uri": redirect,
        },
    ) as resp:
        answer = await resp.json()
    return answer["access_token"]


async def main(base: str, fixtures: Path) -> None:
    recorded_homes = json.loads((fixtures / "homesdata.json").read_text())["body"]["homes"]
    recorded_status = json.loads(
        (fixtures / "homestatus_91763b24c43d3e344f424e8b.json").read_text()
    )["body"]["home"]
    recorded_stations = json.loads((fixtures / "getstationsdata.json").read_text())["body"][
        "devices"
    ]
    checks = 0

    def check(what: str, got, want) -> None:
        nonlocal checks
        checks += 1
        if got != want:
            raise Failed(f"{what}: pyatmo read {got!r}, expected {want!r}")

    async with aiohttp.ClientSession() as session:
        auth = FakeAuth(session, base, await token(session, base))
        account = AsyncAccount(auth)

        # homesdata: the topology.
        await account.async_update_topology()
        check("homes", sorted(account.homes), sorted(h["id"] for h in recorded_homes))
        home = account.homes[HOME]
        check("home name", home.name, recorded_homes[0]["name"])
        check("rooms", sorted(home.rooms), sorted(r["id"] for r in recorded_homes[0]["rooms"]))
        check(
            "modules",
            sorted(home.modules),
            sorted(m["id"] for m in recorded_homes[0]["modules"]),
        )
        check("has an OTM", home.has_otm(), True)

        # homestatus: readings.
        await account.async_update_status(HOME)
        living = next(r for r in recorded_status["rooms"] if r["id"] == LIVING)
        check(
            "Livingroom temperature",
            home.rooms[LIVING].therm_measured_temperature,
            living["therm_measured_temperature"],
        )
        check("Livingroom reachable", home.rooms[LIVING].reachable, True)
        light = next(m for m in recorded_status["modules"] if m["id"] == LIGHT)
        check("light on", home.modules[LIGHT].on, light["on"])
        check("light brightness", home.modules[LIGHT].brightness, light["brightness"])
        check("persons", sorted(home.persons), sorted(p["id"] for p in recorded_homes[0]["persons"]))

        # Entrada's valve drops off (the fake's test switch): homestatus is a 200 with the
        # home and body.errors code 6, which pyatmo reads without failing (home.py update).
        async with session.post(f"{base}/_fake/offline/{VALVE}") as resp:
            check("offline switch", resp.status, 204)
        await account.async_update_status(HOME)
        check("Entrada unreachable", home.rooms[ENTRADA].reachable, False)
        check("Valve1 not reachable", bool(home.modules[VALVE].reachable), False)
        check("Livingroom still read", home.rooms[LIVING].reachable, True)
        async with session.delete(f"{base}/_fake/offline/{VALVE}") as resp:
            check("online switch", resp.status, 204)
        await account.async_update_status(HOME)
        check("Entrada back", home.rooms[ENTRADA].reachable, True)
        check("Valve1 back", home.modules[VALVE].reachable, True)

        # setthermmode, read back through homesdata.
        end = int(time.time()) + 3600
        check("set away", await home.async_set_thermmode("away", end_time=end), True)
        await account.async_update_topology()
        check("heating mode", account.homes[HOME].therm_mode, "away")
        check("set schedule", await home.async_set_thermmode("schedule"), True)
        await account.async_update_topology()
        check("heating mode", account.homes[HOME].therm_mode, "schedule")

        # Room set points: the NATherm1 room through setroomthermpoint, the valve room of a
        # home with an OTM through setstate (cooling set point: the home is in cooling mode).
        await home.rooms[LIVING].async_therm_manual(21.5, end)
        await home.rooms[ENTRADA].async_therm_manual(19.5)
        await account.async_update_status(HOME)
        check("Livingroom set point", home.rooms[LIVING].therm_setpoint_temperature, 21.5)
        check("Livingroom mode", home.rooms[LIVING].therm_setpoint_mode, "manual")
        check("Livingroom end", home.rooms[LIVING].therm_setpoint_end_time, end)
        check("Entrada set point", home.rooms[ENTRADA].cooling_setpoint_temperature, 19.5)
        check("Entrada mode", home.rooms[ENTRADA].cooling_setpoint_mode, "manual")
        await home.rooms[LIVING].async_therm_home()
        await account.async_update_status(HOME)
        check("Livingroom back on schedule", home.rooms[LIVING].therm_setpoint_mode, "home")

        # A light and a shutter behind the Legrand gateway (pyatmo sends their bridge).
        await home.modules[LIGHT].async_on()
        await home.modules[LIGHT].async_set_brightness(40)
        await home.modules[SHUTTER].async_set_target_position(60)
        await account.async_update_status(HOME)
        check("light on", home.modules[LIGHT].on, True)
        check("light brightness", home.modules[LIGHT].brightness, 40)
        check("shutter position", home.modules[SHUTTER].target_position, 60)
        await home.modules[LIGHT].async_off()
        await home.modules[SHUTTER].async_close()
        await account.async_update_status(HOME)
        check("light off", home.modules[LIGHT].on, False)
        check("shutter closed", home.modules[SHUTTER].target_position, 0)

        # Persons.
        await home.async_set_persons_home([JOHN])
        await account.async_update_status(HOME)
        check("John home", home.persons[JOHN].out_of_sight, False)
        await home.async_set_persons_away()
        await account.async_update_status(HOME)
        check("everybody away", {p.out_of_sight for p in home.persons.values()}, {True})

        # getstationsdata: the home's station.
        await account.async_update_weather_stations()
        station = next(d for d in recorded_stations if d["_id"] == STATION)
        check(
            "station temperature",
            home.modules[STATION].temperature,
            station["dashboard_data"]["Temperature"],
        )
        check(
            "station CO2",
            home.modules[STATION].co2,
            station["dashboard_data"]["CO2"],
        )

    print(
        f"peer: pyatmo@{version('pyatmo')} vs netatmo fake: {auth.calls} calls, "
        f"{checks} checks, pass"
    )


if __name__ == "__main__":
    try:
        asyncio.run(main(sys.argv[1], Path(sys.argv[2])))
    except Failed as failure:
        print(f"peer: pyatmo vs netatmo fake: FAIL: {failure}", file=sys.stderr)
        sys.exit(1)
