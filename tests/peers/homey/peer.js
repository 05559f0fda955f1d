'use strict';

// Athom's own client (npm homey-api) against homehook's Homey fake over loopback.
//
// Usage: node peer.js <fake base URL>
// homey-api is resolved from NODE_PATH (the run script points it at $HOMEHOOK_TOOLS/node).
//
// The base-URL hook is homey-api's own: AthomCloudAPI takes `baseUrl` in its constructor
// (lib/API.js: `baseUrl` option, else the env ATHOM_CLOUD_API_BASEURL, else the spec's host).
// The Homey's URL is not overridden: homey-api reads it from /user/me (`remoteUrl`), as it
// does against the real cloud, and we ask for the `cloud` discovery strategy, the one a cloud
// service that cannot reach the owner's LAN (like homehook) has.

const assert = require('node:assert/strict');
const { AthomCloudAPI, HomeyAPI } = require('homey-api');
const version = require('homey-api/package.json').version;

const base = process.argv[2];
if (!base) {
  console.error('usage: node peer.js <fake base URL>');
  process.exit(2);
}

// Requests homey-api itself sent (not the browser's consent step, not the fake's controls).
let calls = 0;
let checks = 0;

// Counts every HTTP request homey-api makes: all of them go through its Util.fetch (node-fetch
// on Node), looked up on the class at each call.
const Util = require('homey-api/lib/Util');
const utilFetch = Util.fetch;
Util.fetch = function countedFetch(...args) {
  calls += 1;
  return utilFetch.apply(this, args);
};
const realFetch = global.fetch;

function check(what, fn) {
  try {
    fn();
  } catch (err) {
    err.message = `${what}: ${err.message}`;
    throw err;
  }
  checks += 1;
}

async function main() {
  const redirectUrl = 'http://127.0.0.1:9/callback/homey';
  const cloud = new AthomCloudAPI({
    baseUrl: base,
    clientId: 'fake-client',
    clientSecret: 'fake-client-secret',
    redirectUrl,
  });
  check('the base-URL hook took', () => assert.equal(cloud.baseUrl, base));

  // OAuth: homey-api builds the consent URL (scopes joined with commas, as it always does);
  // the fake consents at once and redirects with the code.
  const loginUrl = cloud.getLoginUrl({ state: 'peer-state', scopes: ['homey.device.control', 'homey.flow.start'] });
  check('consent URL is British and comma-joins scopes', () => {
    const u = new URL(loginUrl);
    assert.equal(u.pathname, '/oauth2/authorise');
    assert.equal(u.searchParams.get('scope'), 'homey.device.control,homey.flow.start');
  });
  const consent = await realFetch(loginUrl, { redirect: 'manual' });
  check('the fake consents with a redirect', () => assert.equal(consent.status >= 300 && consent.status < 400, true, `status ${consent.status}`));
  const back = new URL(consent.headers.get('location'));
  check('the redirect carries code and state', () => {
    assert.equal(back.searchParams.get('state'), 'peer-state');
    assert.ok(back.searchParams.get('code'));
  });
  const token = await cloud.authenticateWithAuthorizationCode({ code: back.searchParams.get('code') });
  check('token answer read', () => {
    assert.ok(token.access_token);
    assert.ok(token.refresh_token);
    assert.equal(typeof token.expires_in, 'number');
  });

  // The cloud: who am I, which Homeys.
  const user = await cloud.getAuthenticatedUser();
  const homeys = user.getHomeys();
  check('user/me lists the Homey', () => {
    assert.ok(homeys.length >= 1);
    assert.ok(homeys[0].id);
    assert.ok(homeys[0].remoteUrl.startsWith(base), homeys[0].remoteUrl);
  });
  const homey = user.getFirstHomey();

  // Delegation token → session login on the Homey's remote URL (the chain homehook does).
  const api = await homey.authenticate({ strategy: [HomeyAPI.DISCOVERY_STRATEGIES.CLOUD] });
  const baseUrl = await api.baseUrl;
  check('the Homey is reached at its remoteUrl', () => assert.equal(baseUrl, homey.remoteUrl));
  check('a session was opened', () => assert.ok(api.__token));

  // Devices and a capability.
  const devices = await api.devices.getDevices();
  const list = Object.values(devices);
  check('devices listed with capabilitiesObj', () => {
    assert.ok(list.length >= 2);
    for (const d of list) {
      assert.ok(d.id && d.name && Array.isArray(d.capabilities));
      for (const c of d.capabilities) assert.ok(d.capabilitiesObj[c], `${d.name}.${c}`);
    }
  });
  const lamp = list.find((d) => d.capabilities.includes('dim'));
  const thermostat = list.find((d) => d.capabilities.includes('target_temperature'));
  check('a dimmable light and a thermostat', () => {
    assert.ok(lamp);
    assert.ok(thermostat);
  });
  const before = await api.devices.getDevice({ id: lamp.id });
  check('a device read alone agrees with the listing', () => {
    assert.equal(before.name, lamp.name);
    assert.equal(before.capabilitiesObj.onoff.value, lamp.capabilitiesObj.onoff.value);
  });

  // Writes through homey-api's own Device methods.
  await before.setCapabilityValue({ capabilityId: 'onoff', value: !before.capabilitiesObj.onoff.value });
  await before.setCapabilityValue({ capabilityId: 'dim', value: 0.3 });
  await thermostat.setCapabilityValue({ capabilityId: 'target_temperature', value: 21.5 });
  const after = await api.devices.getDevice({ id: lamp.id, $cache: false });
  check('the lamp changed on the Homey', () => {
    assert.equal(after.capabilitiesObj.onoff.value, !before.capabilitiesObj.onoff.value);
    assert.equal(after.capabilitiesObj.dim.value, 0.3);
  });
  const warmer = await api.devices.getDevice({ id: thermostat.id, $cache: false });
  check('the thermostat changed on the Homey', () => assert.equal(warmer.capabilitiesObj.target_temperature.value, 21.5));

  // A write the Homey refuses reaches homey-api as its own error type.
  await assert.rejects(
    () => api.devices.setCapabilityValue({ deviceId: lamp.id, capabilityId: 'no_such_capability', value: 1 }),
    (err) => err.statusCode === 400 || err.statusCode === 404,
  );
  checks += 1;

  // Flows.
  const flows = Object.values(await api.flow.getFlows());
  const advanced = Object.values(await api.flow.getAdvancedFlows());
  check('flows listed', () => {
    assert.ok(flows.length >= 1 && flows[0].name);
    assert.ok(advanced.length >= 1 && advanced[0].name);
  });
  await api.flow.triggerFlow({ id: flows[0].id });
  await api.flow.triggerAdvancedFlow({ id: advanced[0].id });
  checks += 1;
  await assert.rejects(() => api.flow.triggerFlow({ id: '00000000-0000-4000-8000-000000000000' }), (err) => err.statusCode === 404);
  checks += 1;

  // A logic variable.
  const variables = Object.values(await api.logic.getVariables());
  const flag = variables.find((v) => v.type === 'boolean');
  check('a yes/no variable', () => assert.ok(flag));
  const updated = await api.logic.updateVariable({ id: flag.id, variable: { value: !flag.value } });
  check('the variable answer is the variable', () => {
    assert.equal(updated.id, flag.id);
    assert.equal(updated.value, !flag.value);
  });
  const reread = await api.logic.getVariable({ id: flag.id });
  check('the variable changed on the Homey', () => assert.equal(reread.value, !flag.value));

  // The Homey forgets the session (reboot): homey-api logs in again by itself on the 401.
  const forget = await realFetch(`${base}/fake/homey/expire-sessions`, { method: 'POST' });
  check('fake control: sessions expired', () => assert.equal(forget.status, 204));
  const again = await api.devices.getDevice({ id: lamp.id, $cache: false });
  check('a refused session is renewed through the cloud', () => assert.equal(again.id, lamp.id));

  // The cloud token expires: homey-api refreshes it on 401 invalid_token and retries.
  const expire = await realFetch(`${base}/fake/homey/expire-tokens`, { method: 'POST' });
  check('fake control: tokens expired', () => assert.equal(expire.status, 204));
  const me = await cloud.getAuthenticatedUser({ $cache: false });
  check('an expired cloud token is refreshed', () => assert.equal(me.homeys.length, homeys.length));

  api.destroy();
  console.log(`peer: homey-api@${version} vs homey fake: ${calls} calls, ${checks} checks, pass`);
}

main().catch((err) => {
  console.error(`peer: homey-api@${version} vs homey fake: FAILED after ${calls} calls, ${checks} checks`);
  console.error(err && err.stack ? err.stack : err);
  process.exit(1);
});
