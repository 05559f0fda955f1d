"""somfy-protect-api, from PyPI, against homehook's Somfy Protect fake (tests/peers/somfy_protect).

Usage: peer.py <fake base URL>. Prints one JSON line: the client's version and the checks made.
Every check compares what the client read with the fake's recorded state (tests/fixtures/
somfy_protect, tests/src/fakes/somfy.rs).
"""

import contextlib
import importlib.metadata
import json
import sys

import somfy_protect_api.api.somfy_protect_api as client_module
from somfy_protect_api.api.somfy_protect_api import SomfyProtectApi

BASE = sys.argv[1]
# The fake's state (tests/src/fakes/somfy.rs): the recorded site and sirens.
SITE = "Szr5IxqYraaPqh2FFGNms2BQUT0R0hNT"
SITE_LABEL = "Maison"
SIREN = "MCzYWIDNuWNn5qfdUK5U2HiM0iDXQzMA"
SIREN_LABEL = "Innensirene"
OUTDOOR_SIREN = "BStcq4XsKYBOdwspLS9TG8B9cZzEmCFO"

checks = 0


def check(what, got, want):
    """One comparison; a mismatch ends the run with both sides."""
    global checks
    if got != want:
        sys.exit(f"peer: {what}: the client read {got!r}, the fake holds {want!r}")
    checks += 1


# The base-URL hook: the client's module constants, read at call time.
client_module.BASE_URL = BASE
client_module.SOMFY_PROTECT_TOKEN = f"{BASE}/oauth/oauth/v2/token/jwt"

api = SomfyProtectApi("owner@example.com", "correct horse")
# The client carries the mobile app's id (the fake's too) and secret; the fake's secret is
# its own.
api.client_secret = "fake-client-secret"
api._oauth.auto_refresh_kwargs = {"client_id": api.client_id, "client_secret": api.client_secret}

# The library prints every PUT body to stdout: keep stdout for the result line.
with contextlib.redirect_stdout(sys.stderr):
    token = api.request_token()
    check("token type", token.get("token_type"), "bearer")
    check("access token is a JWT", token.get("access_token", "").count("."), 2)
    check("scope is a list", isinstance(token.get("scope"), list), True)

    sites = api.get_sites()
    check("site count", len(sites), 1)
    check("site id", sites[0].id, SITE)
    check("site label", sites[0].label, SITE_LABEL)
    check("security level", sites[0].security_level, "disarmed")

    devices = api.get_devices(SITE)
    ids = [d.id for d in devices]
    check("devices", SIREN in ids and OUTDOOR_SIREN in ids, True)
    siren = next(d for d in devices if d.id == SIREN)
    check("siren label", siren.label, SIREN_LABEL)
    check("siren kind", siren.device_definition.get("device_definition_id"), "mss_siren")

    job = api.update_security_level(SITE, "armed")
    check("job created_at is integer milliseconds", isinstance(job.get("created_at"), int), True)
    check("armed", api.get_site(SITE).security_level, "armed")
    api.update_security_level(SITE, "partial")
    check("partial", api.get_site(SITE).security_level, "partial")
    api.update_security_level(SITE, "disarmed")
    check("disarmed", api.get_site(SITE).security_level, "disarmed")

    # A siren setting, the way the library does it: read the device, change one key, send the
    # whole settings back with the label.
    device = api.get_device(SITE, SIREN)
    light = device.settings["global"]["light_enabled"]
    settings = device.settings
    settings["global"]["sound_enabled"] = False
    api.update_device(SITE, SIREN, device.label, settings)
    after = api.get_device(SITE, SIREN)
    check("siren sound off", after.settings["global"]["sound_enabled"], False)
    check("siren light kept", after.settings["global"]["light_enabled"], light)
    check("siren label kept", after.label, SIREN_LABEL)

print(
    json.dumps(
        {"version": importlib.metadata.version("somfy-protect-api"), "checks": checks}
    )
)
