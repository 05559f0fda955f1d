"""The Lambda functions, as SAM runs them locally, walking homehook's real flows against moto
and a fake Netatmo on 127.0.0.1 (run by infra/sam-local, which has built the stack):

0. moto enforces IAM: each function signs as an IAM user holding exactly the statements
   template.yaml grants its role (translated by samtranslator); the harness and the CLI sign as
   an admin user (the owner). The config is published with the real CLI (`homehook config push`
   to the target "sam"): "the remote CLI walk against the local emulation";
1. oauth-callback: /connect stores a state in DynamoDB and redirects to the fake;
2. the fake's consent redirects back; oauth-callback exchanges the code and stores the token;
   `homehook status` and `homehook actions` show it from the table;
3. actions: an action calls the fake's API with that token;
4. token-refresh: the token is due (the fake issues 60-second tokens): one refresh; a scheduled
   action due a minute ago fires, once: a second (retried) invocation finds its claim;
5. `sam local start-api`: one request through the HTTP API routes;
6. `homehook key revoke`: the next cold start refuses the revoked key;
7. a wrong PIN is counted (the actions function's UpdateItem);
8. `homehook doctor` on the target, printed.

Every server listens on 127.0.0.1; the function containers share the host's network through
infra/sam_host_network.py.
"""

import base64
import hashlib
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path

import boto3
from botocore.exceptions import ClientError

WORK = Path(sys.argv[1])  # target/sam
IMAGE = sys.argv[2]
FAKE_VENDOR = sys.argv[3]  # the fake-vendor binary
HOMEHOOK = sys.argv[4]  # the homehook CLI binary
HERE = Path(__file__).resolve().parent
VENV_PY = sys.executable
PUBLIC_URL = "https://hooks.example.com"
REGION = "eu-west-1"
FUNCTIONS = ["ActionsFunction", "OAuthCallbackFunction", "TokenRefreshFunction"]
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


def function_statements(parameters):
    """Each function's IAM statements exactly as template.yaml grants them: SAM's own translator
    (samtranslator, what CloudFormation's Serverless transform runs) expands each function's
    `Policies` (policy templates included) into its generated `<Function>Role`; the role's
    conditional policies are resolved with `parameters` (the stack as deployed here).

    Every Resource becomes "*": moto authorizes DynamoDB, Secrets Manager and SNS calls against
    the literal resource "*" (moto/core/responses.py: only services with their own
    _determine_resource, such as IAM, SQS and STS, pass an ARN), so a statement scoped to the
    table's ARN would deny everything. The check is therefore per action, not per resource: it
    cannot tell a Query on the table from one on the `due` index.

    The managed AWSLambdaBasicExecutionRole (logs:CreateLogGroup/CreateLogStream/PutLogEvents)
    is left out: a function never calls CloudWatch Logs itself (Lambda ships stdout)."""
    from samcli.yamlhelper import yaml_parse
    from samtranslator.translator.transform import transform

    template = yaml_parse((HERE.parent / "template.yaml").read_text())
    # The translator insists on an S3 code location; the code does not matter here.
    template["Globals"]["Function"]["CodeUri"] = "s3://unused/unused.zip"

    class ManagedPolicies:  # the translator's loader of AWS managed policy ARNs, offline
        def load(self):
            return {"AWSLambdaBasicExecutionRole":
                    "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole"}

    os.environ.setdefault("AWS_DEFAULT_REGION", REGION)  # the translator wants a region
    out = transform(template, dict(parameters), ManagedPolicies())
    values = {name: p.get("Default") for name, p in out.get("Parameters", {}).items()}
    values.update(parameters)
    conditions = out.get("Conditions", {})

    def truth(c):
        if "Fn::Not" in c:
            return not truth(c["Fn::Not"][0])
        if "Fn::And" in c:
            return all(truth(x) for x in c["Fn::And"])
        if "Fn::Or" in c:
            return any(truth(x) for x in c["Fn::Or"])
        if "Fn::Equals" in c:
            a, b = (values[x["Ref"]] if isinstance(x, dict) else x for x in c["Fn::Equals"])
            return a == b
        if "Condition" in c:
            return truth(conditions[c["Condition"]])
        raise SystemExit(f"sam local flow: a condition this harness cannot evaluate: {c}")

    gone = object()

    def resolve(node):
        if isinstance(node, dict):
            if node == {"Ref": "AWS::NoValue"}:
                return gone
            if list(node) == ["Fn::If"]:
                name, yes, no = node["Fn::If"]
                return resolve(yes if truth(conditions[name]) else no)
            kept = {k: resolve(v) for k, v in node.items()}
            return {k: v for k, v in kept.items() if v is not gone}
        if isinstance(node, list):
            return [v for v in map(resolve, node) if v is not gone]
        return node

    statements = {}
    for fn in FUNCTIONS:
        role = out["Resources"][f"{fn}Role"]["Properties"]
        found = []
        for policy in resolve(role.get("Policies", [])):
            for st in policy["PolicyDocument"]["Statement"]:
                found.append({**st, "Resource": "*"})
        statements[fn] = found
    return statements


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


class Cli:
    """The homehook CLI as its owner runs it against a deployed stack: a target, the owner's
    AWS credentials from the environment only (no profile or credentials file is read)."""

    def __init__(self, home, access_key):
        self.home = home
        self.env = {k: v for k, v in os.environ.items()
                    if not k.startswith(("AWS_", "HOMEHOOK_"))}
        self.env.update({
            "HOMEHOOK_TARGETS": str(home / "targets.toml"),
            "AWS_ACCESS_KEY_ID": access_key[0], "AWS_SECRET_ACCESS_KEY": access_key[1],
            "AWS_REGION": REGION,
            "AWS_CONFIG_FILE": str(home / "no-aws-config"),
            "AWS_SHARED_CREDENTIALS_FILE": str(home / "no-aws-credentials"),
            "AWS_EC2_METADATA_DISABLED": "true",
            "NO_COLOR": "1",
        })

    def run(self, *args, stdin=None, lines=12, quiet=False):
        started = time.monotonic()
        r = subprocess.run([HOMEHOOK, *args], env=self.env, cwd=self.home, input=stdin,
                           capture_output=True, text=True, timeout=180, check=False)
        ms = (time.monotonic() - started) * 1000
        if not quiet:
            say(f"$ homehook {' '.join(args)}   (exit {r.returncode}, {ms:.0f} ms)")
            # The SDK warns that the (deliberately) missing AWS files are missing: not news.
            out = [l for l in (r.stdout + r.stderr).rstrip().splitlines()
                   if "config file overridden via environment variable not found" not in l]
            for line in out[:lines]:
                say(f"    {line}")
            if len(out) > lines:
                say(f"    ... ({len(out) - lines} more lines)")
        return r

    def ok(self, *args, **kw):
        r = self.run(*args, **kw)
        if r.returncode != 0:
            raise SystemExit(f"sam local flow: `homehook {' '.join(args)}` failed (exit {r.returncode}):\n"
                             f"{r.stdout}{r.stderr}")
        return r


def moto_auth(endpoint, count):
    """Turns moto's IAM checks on: every request after the first `count` ones is checked
    (moto_api/_internal/responses.py, reset_auth_response: the body is the number)."""
    # Not a form (urllib's default content type): moto reads the raw body as a float.
    req = urllib.request.Request(f"{endpoint}/moto-api/reset-auth", data=str(count).encode(),
                                 method="POST", headers={"content-type": "text/plain"})
    with urllib.request.urlopen(req, timeout=10) as resp:
        return json.loads(resp.read())


def client(service, endpoint, access_key):
    return boto3.client(service, endpoint_url=endpoint, region_name=REGION,
                        aws_access_key_id=access_key[0], aws_secret_access_key=access_key[1])


def denied(call):
    """The AWS error of `call` if moto's IAM check refused it, else None."""
    try:
        call()
    except ClientError as e:
        status = e.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        if status == 403 or "AccessDenied" in str(e) or "not authorized" in str(e):
            # moto answers DynamoDB's JSON protocol with an XML <ErrorResponse>: keep its words.
            found = re.search(r"<Code>(.*?)</Code><Message>(.*?)</Message>", str(e))
            return f"{status} {found[1]}: {found[2]}" if found else f"{status} {e}"
        raise
    return None


def iam_users(endpoint, statements):
    """One IAM user per function with exactly its role's statements (inline), and an admin user
    for the harness and the CLI (the owner): access keys by name. Made before IAM is enforced."""
    iam = client("iam", endpoint, ("local", "local"))
    admin_policy = [{"Effect": "Allow", "Action": "*", "Resource": "*"}]
    keys = {}
    for name, policy in [*statements.items(), ("owner-admin", admin_policy)]:
        iam.create_user(UserName=name)
        iam.put_user_policy(UserName=name, PolicyName=f"{name}-template-role",
                            PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": policy}))
        k = iam.create_access_key(UserName=name)["AccessKey"]
        keys[name] = (k["AccessKeyId"], k["SecretAccessKey"])
    return keys


def main():
    moto_port = free_port()
    moto = subprocess.Popen([str(Path(VENV_PY).parent / "moto_server"), "-H", "127.0.0.1", "-p", str(moto_port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    fake = subprocess.Popen([FAKE_VENDOR, "netatmo", "60"], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)
    # The CLI's working directory: homehook.toml, targets.toml (kept for a look after a run).
    home = WORK / "cli"
    shutil.rmtree(home, ignore_errors=True)
    home.mkdir(parents=True)
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
        action, action_hash = key("action")  # [keys.flow]: revoked in step 3
        spare, spare_hash = key("spare")  # [keys.spare]: keeps every action openable
        # Set-up before IAM is enforced (moto counts these requests as unauthenticated).
        local = ("local", "local")
        client("dynamodb", endpoint, local).create_table(TableName="homehook", **template_table())
        client("secretsmanager", endpoint, local).create_secret(Name="homehook/clients", SecretString=json.dumps({
            "netatmo": {"client_id": "fake-client", "client_secret": "fake-client-secret"},
            "admin_key_hash": admin_hash}))

        # 0. IAM: each function signs as a user with exactly its template role's statements.
        # As deployed here: no notify topic (the functions then never call SNS).
        statements = function_statements({"NotifyTopicArn": "", "PublicUrl": ""})
        keys = iam_users(endpoint, statements)
        for fn in FUNCTIONS:
            granted = sorted({a for st in statements[fn] for a in
                              ([st["Action"]] if isinstance(st["Action"], str) else st["Action"])})
            say(f"IAM user {fn}: {', '.join(granted)} (Resource \"*\")")
        answer = moto_auth(endpoint, 0)
        check(answer.get("status") == "ok", f"moto enforces IAM from now on (reset-auth 0: {answer})")
        owner = keys["owner-admin"]
        as_actions = client("dynamodb", endpoint, keys["ActionsFunction"])
        refusal = denied(lambda: as_actions.scan(TableName="homehook", Limit=1))
        check(refusal is not None and "dynamodb:Scan" in refusal,
              "IAM enforced: ActionsFunction's user is denied dynamodb:Scan (not granted)", refusal)
        say(f"    {refusal}")
        as_actions.get_item(TableName="homehook", Key={"pk": {"S": "item#none"}}, ConsistentRead=True)
        check(True, "IAM enforced: ActionsFunction's user may dynamodb:GetItem (granted)")
        refusal = denied(lambda: client("dynamodb", endpoint, local).list_tables())
        check(refusal is not None, "IAM enforced: a key that is no IAM user's is refused", refusal)
        ddb = client("dynamodb", endpoint, owner)  # the harness's own checks: the admin user

        # A schedule due one minute ago, within its hour of grace: both ticks below owe it. Its
        # cron is read in Paris time, so the bootstrap must find the zone in the image's
        # /usr/share/zoneinfo (the functions carry no time-zone data of their own).
        from datetime import datetime, timedelta
        from zoneinfo import ZoneInfo
        due = (datetime.now(ZoneInfo("Europe/Paris")) - timedelta(seconds=60)).timetuple()
        cli = Cli(home, owner)
        pin_hash = json.loads(cli.ok("pin", "new", "--json", stdin="482193\n", quiet=True).stdout)["pin_hash"]
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
with = {{ device_id = "12:34:56:80:bb:26" }}

# The PIN path (a wrong PIN is counted with UpdateItem).
[actions.station_pin]
connection = "home"
builtin = "station"
with = {{ device_id = "12:34:56:80:bb:26" }}
methods = ["POST"]
sensitive = true
pin_hash = "{pin_hash}"

# The flow's key: revoked in the walk. The spare key keeps every action openable (a config
# where an action has no usable key is refused).
[keys.flow]
hash = "{action_hash}"
actions = ["station", "station_pin"]

[keys.spare]
hash = "{spare_hash}"
actions = ["*"]

[schedules.morning_check]
action = "station"
cron = "{due.tm_min} {due.tm_hour} * * *"
time_zone = "Europe/Paris"
grace_secs = 3600
"""
        (home / "homehook.toml").write_text(config)
        say("the remote CLI walk against the local emulation (target \"sam\" = moto, signed as the owner):")
        cli.ok("target", "add", "sam", "--table", "homehook", "--secret", "homehook/clients",
               "--url", PUBLIC_URL, "--region", REGION, "--endpoint", endpoint)
        cli.ok("--target", "sam", "--config", str(home / "homehook.toml"), "config", "push")
        published = ddb.get_item(TableName="homehook", Key={"pk": {"S": "config"}}, ConsistentRead=True)
        check(published.get("Item", {}).get("version", {}).get("N") == "1",
              "the config is published in DynamoDB (version 1)", published.get("Item", {}).keys())

        # The functions: their own IAM user each. `sam local` passes only the variables the
        # template declares: infra/sam-local's x86_64 copy declares the credentials too.
        env = {"HOMEHOOK_TABLE": "homehook", "HOMEHOOK_SECRET_ID": "homehook/clients",
               # No public URL: callback URLs follow the request's host, as behind API Gateway.
               "HOMEHOOK_PUBLIC_URL": "",
               "AWS_ENDPOINT_URL": endpoint, "AWS_REGION": REGION}
        (WORK / "env.json").write_text(json.dumps({
            fn: {**env, "AWS_ACCESS_KEY_ID": keys[fn][0], "AWS_SECRET_ACCESS_KEY": keys[fn][1]}
            for fn in FUNCTIONS}))

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

        # 2b. the owner's view of the stack.
        status = json.loads(cli.ok("--target", "sam", "status", "--json", lines=8).stdout)
        homes = [c for c in status.get("connections", []) if c.get("id") == "home"]
        check(len(homes) == 1 and homes[0]["connected"] and homes[0]["health"] == "healthy",
              "homehook status: connection home is connected (healthy)", status)
        listed = json.loads(cli.ok("--target", "sam", "actions", "--json", lines=6).stdout)
        station = [a for a in listed if a.get("name") == "station"]
        check(len(station) == 1 and station[0]["url"] == f"{PUBLIC_URL}/a/station",
              f"homehook actions: station at {PUBLIC_URL}/a/station", listed)

        # 3. an action calls the vendor with that token (the flow's key).
        r = invoke("ActionsFunction", http_event(
            "POST", "/a/station", headers={"authorization": f"Bearer {action}"}))
        check(r["statusCode"] == 200 and r["body"] == ("Palier 21.1 °C, humidity 45 %, CO2 1339 ppm. Outdoor: no reading. Rain: no reading. "
                                                    "Bedroom 19.3 °C, humidity 53 %, CO2 1076 ppm. Bathroom 19.4 °C, humidity 55 %, CO2 1930 ppm. "
                                                    "Garden: no reading."),
              "actions /a/station answers from the vendor", r)

        # 4. a tick once the 60-second token is due (a tenth of its lifetime ahead of expiry, 54 s
        # after it was issued: the time the store files it under, `due_at`). Scheduled actions
        # fire first (their time is the owner's); the one due now uses this connection, finds
        # the token due and renews it on its way: one renewal, which the tick's own pass then
        # has no reason to repeat.
        def token_item():
            return ddb.get_item(TableName="homehook", Key={"pk": {"S": "token#home"}},
                                ConsistentRead=True)["Item"]

        def tick():
            return invoke("TokenRefreshFunction",
                          json.loads((HERE.parent / "events" / "schedule.json").read_text()))

        due_at = int(token_item()["due_at"]["N"])
        time.sleep(max(0.0, due_at - time.time()) + 1)
        r = tick()
        fired_once = {"fired": 1, "failed": 0, "already_claimed": 0}
        check(r == {"due": 0, "refreshed": 0, "skipped": 0, "failed": 0, "failed_by_class": {},
                    "scheduled": fired_once},
              "token-refresh fires the scheduled action, which renews the due token on its way", r)
        token = token_item()
        # Two writes: the lease that claims the renewal, then the renewed tokens (lease released).
        renewed = json.loads(token["record"]["S"])
        check(token["version"]["N"] == "3" and "lease" not in renewed.get("lifecycle", {}),
              "the renewed token is in DynamoDB (version 3: lease, then tokens; lease released)",
              token["version"])

        # 4b. EventBridge delivers at least once: a second tick finds the run claimed, and the
        # token just renewed is not due.
        r = tick()
        check(r.get("scheduled") == {"fired": 0, "failed": 0, "already_claimed": 1} and r.get("due") == 0,
              "a second token-refresh invocation does not fire the scheduled action again", r)
        claims = [i for i in ddb.scan(TableName="homehook")["Items"]
                  if i["pk"]["S"].startswith("item#schedule:morning_check:")]
        check(len(claims) == 1, "one claim for the scheduled run is in DynamoDB", claims)

        # 4c. the tick's own pass: when the renewed token comes due, with no action on the way,
        # the tick reads it from the `due` index (a Query its IAM user must be allowed) and
        # renews it.
        due_at = int(token_item()["due_at"]["N"])
        time.sleep(max(0.0, due_at - time.time()) + 1)
        r = tick()
        check(r.get("due") == 1 and r.get("refreshed") == 1 and r.get("failed") == 0,
              "token-refresh renews the due token from the index", r)
        check(token_item()["version"]["N"] == "5", "renewed once more (version 5)", token_item()["version"])

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
            check(body.startswith("Palier 21.1"), "sam local start-api: POST /a/station through the routes", body)
        finally:
            api.terminate()
            api.wait(timeout=30)

        # 6. the owner revokes the flow's key; a new `sam local invoke` is a cold start, which
        # reads the newest published version. (After the ticks and start-api, not before: the
        # fake's tokens live 60 s and an action renews one with less than 30 s left, so a later
        # tick would renew twice — scheduled action, then the due pass — and the vendor would
        # count a fourth token call.)
        cli.ok("--target", "sam", "key", "revoke", "flow")
        r = invoke("ActionsFunction", http_event(
            "POST", "/a/station", headers={"authorization": f"Bearer {action}"}))
        check(r["statusCode"] == 401, "actions refuses the revoked key with 401", r)
        say(f"    {r.get('body', '')[:200]}")

        # 7. the PIN path: a wrong PIN is counted (UpdateItem ADD, then a Put and Gets) and
        # answered 401 wrong_pin. The spare key still opens the action under version 2.
        r = invoke("ActionsFunction", http_event(
            "POST", "/a/station_pin", headers={"authorization": f"Bearer {spare}",
                                               "x-homehook-pin": "0000"}))
        check(r["statusCode"] == 401 and json.loads(r["body"]).get("error") == "wrong_pin",
              "actions admits the spare key, counts a wrong PIN (UpdateItem) and answers 401 wrong_pin", r)
        counted = ddb.scan(TableName="homehook")["Items"]
        check(any(i["pk"]["S"].startswith("item#pin-fail#station_pin#") for i in counted),
              "the wrong PIN's counter is in DynamoDB")

        # 8. the owner's doctor on the target: printed, not judged (the stack's URL cannot
        # answer here).
        cli.run("--target", "sam", "doctor", lines=40)
        # Not exercised on Lambda here: an idempotency key freed after a 503/429 answer (the
        # actions function's only DeleteItem) needs a vendor that is down or out of budget for
        # the flow's one connection, which would disturb the token counts below.
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
