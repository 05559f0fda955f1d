"""The Lambda functions, as SAM runs them locally, walking homehook's real flows against moto
and a fake Netatmo on 127.0.0.1 (run by infra/sam-local, which has built the stack):

1. oauth-callback: /connect stores a state in DynamoDB and redirects to the fake;
2. the fake's consent redirects back; oauth-callback exchanges the code and stores the token;
3. actions: an action calls the fake's API with that token;
4. token-refresh: the token is due (the fake issues 60-second tokens): one refresh; a scheduled
   action due a minute ago fires, once: a second (retried) invocation finds its claim;
5. `sam local start-api`: one request through the HTTP API routes.

Every server listens on 127.0.0.1; the function containers share the host's network through
infra/sam_host_network.py.
"""

import base64
import hashlib
import json
import os
import re
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path

import boto3

WORK = Path(sys.argv[1])  # target/sam
IMAGE = sys.argv[2]
FAKE_VENDOR = sys.argv[3]  # the fake-vendor binary
HERE = Path(__file__).resolve().parent
VENV_PY = sys.executable
PUBLIC_URL = "https://hooks.example.com"
REPORTS = []


def template_table():
    """The table's keys and indexes exactly as template.yaml declares them."""
    import yaml

    class Loader(yaml.SafeLoader):
        pass

    # CloudFormation's short forms (!Ref, !Sub, ...) read as plain values: only the table's
    # literal properties are used here.
    Loader.add_multi_constructor("!", lambda loader, tag, node: None)
    template = yaml.load((HERE.parent / "template.yaml").read_text(), Loader=Loader)
    props = template["Resources"]["Table"]["Properties"]
    return {k: props[k] for k in ("BillingMode", "AttributeDefinitions", "KeySchema",
                                  "GlobalSecondaryIndexes")}


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(port, seconds=20):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"nothing listens on 127.0.0.1:{port} after {seconds} s")


def key(tag):
    raw = hashlib.sha256(tag.encode()).digest()
    k = "hh_" + base64.urlsafe_b64encode(raw).decode().rstrip("=")
    return k, "sha256:" + hashlib.sha256(k.encode()).hexdigest()


def say(text):
    print(f"  {text}", flush=True)


def sam(*args, log):
    cmd = [VENV_PY, str(HERE / "sam_host_network.py"), *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300, check=False)


def invoke(function, event):
    path = WORK / f"event-{function}.json"
    path.write_text(json.dumps(event))
    r = sam("local", "invoke", function, "--event", str(path),
            "--template", str(WORK / "build" / "template.yaml"),
            "--env-vars", str(WORK / "env.json"), "--invoke-image", IMAGE,
            "--skip-pull-image", "--docker-network", "host", log=True)
    with open(WORK / "invoke.log", "a") as log:
        log.write(r.stderr)
    m = re.search(r"REPORT RequestId: \S+\s+Init Duration: ([\d.]+) ms\s+Duration: ([\d.]+) ms", r.stderr)
    if m:
        REPORTS.append((function, float(m.group(2))))
    lines = [l for l in r.stdout.strip().splitlines() if l.strip()]
    if r.returncode != 0 or not lines:
        print(r.stderr[-3000:], file=sys.stderr)
        raise SystemExit(f"sam local invoke {function} failed")
    return json.loads(lines[-1])


def http_event(method, path, query="", headers=None):
    headers = {"host": "hooks.example.com", **(headers or {})}
    params = dict(urllib.parse.parse_qsl(query))
    event = {
        "version": "2.0", "routeKey": f"{method} {path}", "rawPath": path,
        "rawQueryString": query, "headers": headers,
        "requestContext": {
            "accountId": "123456789012", "apiId": "local", "domainName": "hooks.example.com",
            "domainPrefix": "hooks",
            "http": {"method": method, "path": path, "protocol": "HTTP/1.1",
                     "sourceIp": "127.0.0.1", "userAgent": "sam-local-flows"},
            "requestId": f"req-{time.time_ns()}", "routeKey": f"{method} {path}",
            "stage": "$default", "time": "23/Nov/2026:20:00:00 +0000", "timeEpoch": 0,
        },
        "isBase64Encoded": False,
    }
    if params:
        event["queryStringParameters"] = params
    return event


def check(ok, what, detail=""):
    if not ok:
        raise SystemExit(f"sam local flow: {what} failed {detail}")
    say(f"sam local: {what}")


def main():
    moto_port = free_port()
    moto = subprocess.Popen([str(Path(VENV_PY).parent / "moto_server"), "-H", "127.0.0.1", "-p", str(moto_port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    fake = subprocess.Popen([FAKE_VENDOR, "netatmo", "60"], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)
    out = ""
    try:
        import select
        ready, _, _ = select.select([fake.stdout], [], [], 30)
        if not ready:
            raise SystemExit("the fake vendor did not start within 30 s")
        vendor = fake.stdout.readline().strip()
        wait_for(moto_port)
        endpoint = f"http://127.0.0.1:{moto_port}"
        admin, admin_hash = key("admin")
        action, action_hash = key("action")
        ddb = boto3.client("dynamodb", endpoint_url=endpoint, region_name="eu-west-1",
                           aws_access_key_id="local", aws_secret_access_key="local")
        ddb.create_table(TableName="homehook", **template_table())
        sm = boto3.client("secretsmanager", endpoint_url=endpoint, region_name="eu-west-1",
                          aws_access_key_id="local", aws_secret_access_key="local")
        sm.create_secret(Name="homehook/clients", SecretString=json.dumps({
            "netatmo": {"client_id": "fake-client", "client_secret": "fake-client-secret"},
            "admin_key_hash": admin_hash}))
        # A schedule due one minute ago (UTC), within its hour of grace: both ticks below owe it.
        due = time.gmtime(time.time() - 60)
        config = f"""
[providers.netatmo]
authorize_url = "{vendor}/oauth2/authorize"
token_url = "{vendor}/oauth2/token"
api_base = "{vendor}"

[connections.home]
provider = "netatmo"
label = "Home"

[actions.station]
connection = "home"
builtin = "station"
with = {{ device_id = "70:ee:50:00:00:01" }}
key_hash = "{action_hash}"

[schedules.morning_check]
action = "station"
cron = "{due.tm_min} {due.tm_hour} * * *"
grace_secs = 3600
"""
        env = {"HOMEHOOK_TABLE": "homehook", "HOMEHOOK_SECRET_ID": "homehook/clients",
               # No public URL: callback URLs follow the request's host, as behind API Gateway.
               "HOMEHOOK_CONFIG_TOML": config, "HOMEHOOK_PUBLIC_URL": "",
               "AWS_ENDPOINT_URL": endpoint, "AWS_REGION": "eu-west-1",
               "AWS_ACCESS_KEY_ID": "local", "AWS_SECRET_ACCESS_KEY": "local"}
        (WORK / "env.json").write_text(json.dumps(
            {fn: env for fn in ["ActionsFunction", "OAuthCallbackFunction", "TokenRefreshFunction"]}))

        # 1. connect: a state in DynamoDB, a redirect to the vendor.
        r = invoke("OAuthCallbackFunction", http_event(
            "GET", "/connect/home", headers={"authorization": f"Bearer {admin}"}))
        location = r.get("headers", {}).get("location", "")
        check(r["statusCode"] == 302 and location.startswith(f"{vendor}/oauth2/authorize"),
              "oauth-callback /connect stores a state and redirects to the vendor", r)
        states = ddb.scan(TableName="homehook")["Items"]
        check(any(i["pk"]["S"].startswith("item#") for i in states), "the state is in DynamoDB")

        # 2. consent at the fake, then the callback exchanges the code and stores the token.
        class NoRedirect(urllib.request.HTTPRedirectHandler):
            def redirect_request(self, *a, **k):
                return None
        opener = urllib.request.build_opener(NoRedirect)
        try:
            opener.open(location)
            raise SystemExit("the fake did not redirect")
        except urllib.error.HTTPError as e:
            back = e.headers["location"]
        parsed = urllib.parse.urlparse(back)
        check(f"{parsed.scheme}://{parsed.netloc}{parsed.path}" == f"{PUBLIC_URL}/callback/netatmo",
              "the vendor redirects to the callback URL on the public URL", back)
        r = invoke("OAuthCallbackFunction", http_event(
            "GET", "/callback/netatmo", query=parsed.query, headers={"accept": "text/html"}))
        check(r["statusCode"] == 200 and "Connected Home" in r["body"],
              "oauth-callback /callback exchanges the code and says Connected Home", r.get("body", "")[:300])
        token = ddb.get_item(TableName="homehook", Key={"pk": {"S": "token#home"}}, ConsistentRead=True)
        check("Item" in token and token["Item"]["version"]["N"] == "1", "the token is in DynamoDB (version 1)")

        # 3. an action calls the vendor with that token.
        r = invoke("ActionsFunction", http_event(
            "POST", "/a/station", headers={"authorization": f"Bearer {action}"}))
        check(r["statusCode"] == 200 and r["body"] == "Living room 21.4 °C, humidity 48 %, CO2 640 ppm. Garden 7.5 °C, humidity 81 %.",
              "actions /a/station answers from the vendor", r)

        # 4. the scheduled tick renews the due token (60-second tokens are always due).
        r = invoke("TokenRefreshFunction", json.loads((HERE.parent / "events" / "schedule.json").read_text()))
        fired_once = {"fired": 1, "failed": 0, "already_claimed": 0}
        check(r == {"due": 1, "refreshed": 1, "skipped": 0, "failed": 0, "failed_by_class": {},
                    "scheduled": fired_once},
              "token-refresh renews the due token and fires the scheduled action", r)
        token = ddb.get_item(TableName="homehook", Key={"pk": {"S": "token#home"}}, ConsistentRead=True)
        # Two writes: the lease that claims the renewal, then the renewed tokens (lease released).
        renewed = json.loads(token["Item"]["record"]["S"])
        check(token["Item"]["version"]["N"] == "3" and "lease" not in renewed.get("lifecycle", {}),
              "the renewed token is in DynamoDB (version 3: lease, then tokens; lease released)",
              token["Item"]["version"])

        # 4b. EventBridge delivers at least once: a second tick finds the run claimed (and renews
        # the 60-second token again).
        r = invoke("TokenRefreshFunction", json.loads((HERE.parent / "events" / "schedule.json").read_text()))
        check(r.get("scheduled") == {"fired": 0, "failed": 0, "already_claimed": 1},
              "a second token-refresh invocation does not fire the scheduled action again", r)
        claims = [i for i in ddb.scan(TableName="homehook")["Items"]
                  if i["pk"]["S"].startswith("item#schedule:morning_check:")]
        check(len(claims) == 1, "one claim for the scheduled run is in DynamoDB", claims)

        # 5. one request through the HTTP API routes of `sam local start-api`.
        api_port = free_port()
        api = subprocess.Popen(
            [VENV_PY, str(HERE / "sam_host_network.py"), "local", "start-api",
             "--template", str(WORK / "build" / "template.yaml"), "--env-vars", str(WORK / "env.json"),
             "--invoke-image", IMAGE, "--skip-pull-image", "--docker-network", "host",
             "--host", "127.0.0.1", "--port", str(api_port)],
            stdout=subprocess.DEVNULL, stderr=open(WORK / "start-api.log", "w"))
        try:
            # start-api reads the template and starts Flask first: slower on a busy machine.
            wait_for(api_port, seconds=120)
            req = urllib.request.Request(f"http://127.0.0.1:{api_port}/a/station",
                                         method="POST", headers={"authorization": f"Bearer {action}"})
            with urllib.request.urlopen(req, timeout=120) as resp:
                body = resp.read().decode()
            check(body.startswith("Living room 21.4"), "sam local start-api: POST /a/station through the routes", body)
        finally:
            api.terminate()
            api.wait(timeout=30)
    finally:
        try:
            out, _ = fake.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            fake.kill()
        finally:
            moto.terminate()
            moto.wait(timeout=10)
    seen = json.loads(out.strip().splitlines()[-1])
    check(seen["token_calls"] == 3, "the vendor saw exactly 3 token calls (code, refresh, refresh)", seen)
    durations = ", ".join(f"{fn} {ms:.0f} ms" for fn, ms in REPORTS)
    say(f"REPORT durations: {durations}")


if __name__ == "__main__":
    main()
