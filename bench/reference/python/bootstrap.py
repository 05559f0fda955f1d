"""Reference cold start (Python): what a Python Lambda function that talks to DynamoDB and
Secrets Manager does at init -- import boto3, create both clients -- then the Runtime API loop
answering each event. The bench times it exactly as it times homehook's bootstraps.

The loop is the Runtime API's documented protocol in a few lines (awslambdaric, the runtime
Lambda's Python images use, adds its own start-up on top: these figures flatter Python).
"""

import json
import os
import urllib.request

import boto3

dynamodb = boto3.client("dynamodb")
secrets = boto3.client("secretsmanager")

API = f"http://{os.environ['AWS_LAMBDA_RUNTIME_API']}/2018-06-01/runtime/invocation"


def handler(event):
    return {"statusCode": 200, "headers": {"content-type": "text/plain"}, "body": "ok"}


while True:
    with urllib.request.urlopen(f"{API}/next") as r:
        request_id = r.headers["Lambda-Runtime-Aws-Request-Id"]
        event = json.load(r)
    body = json.dumps(handler(event)).encode()
    urllib.request.urlopen(
        urllib.request.Request(f"{API}/{request_id}/response", data=body, method="POST")
    ).read()
