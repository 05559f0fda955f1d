// Reference cold start (Node): what a Node Lambda function that talks to DynamoDB and Secrets
// Manager does at init -- import AWS SDK v3's two clients, create them -- then the Runtime API
// loop answering each event. The bench times it exactly as it times homehook's bootstraps.
//
// The loop is the Runtime API's documented protocol with node:http (Lambda's own Node runtime
// adds its start-up on top: these figures flatter Node).
import http from "node:http";
import { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { SecretsManagerClient } from "@aws-sdk/client-secrets-manager";

const dynamodb = new DynamoDBClient({});
const secrets = new SecretsManagerClient({});

const [host, port] = process.env.AWS_LAMBDA_RUNTIME_API.split(":");
const base = "/2018-06-01/runtime/invocation";

function call(method, path, body) {
  return new Promise((resolve, reject) => {
    const req = http.request({ host, port, method, path }, (res) => {
      const chunks = [];
      res.on("data", (c) => chunks.push(c));
      res.on("end", () => resolve({ headers: res.headers, body: Buffer.concat(chunks).toString() }));
    });
    req.on("error", reject);
    req.end(body);
  });
}

const handler = async (_event) => ({ statusCode: 200, headers: { "content-type": "text/plain" }, body: "ok" });

for (;;) {
  const next = await call("GET", `${base}/next`);
  const id = next.headers["lambda-runtime-aws-request-id"];
  const answer = await handler(JSON.parse(next.body));
  await call("POST", `${base}/${id}/response`, JSON.stringify(answer));
}
