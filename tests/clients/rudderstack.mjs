// Sends --count track calls with RudderStack's Node SDK (gzip JSON, declared form-urlencoded by axios),
// flushes, and prints one JSON line: {"sdk", "sent", "failed", "errors"}.
import Analytics from '@rudderstack/rudder-sdk-node';

import { parseArgs, plays } from './args.mjs';

const options = parseArgs(process.argv.slice(2));
const errors = [];
const client = new Analytics(options.writeKey, {
  dataPlaneUrl: options.host,
  flushAt: 1000,
  flushInterval: 60_000,
  retryCount: 3,
  logLevel: 'error',
  errorHandler: (err) => errors.push(String(err?.response?.status ?? err?.message ?? err)),
});
const outcomes = plays(options).map(
  (message) => new Promise((resolve) => client.track(message, (err) => resolve(err ? String(err) : null))),
);
await client.flush();
const results = await Promise.all(outcomes);
const failed = results.filter((r) => r !== null);
console.log(JSON.stringify({ sdk: 'rudderstack', sent: results.length - failed.length, failed: failed.length, errors: [...new Set([...errors, ...failed])] }));
process.exit(0);
