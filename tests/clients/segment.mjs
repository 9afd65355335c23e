// Sends --count track calls with Segment's Node SDK (JSON, writeKey in the body), closes and flushes, and
// prints one JSON line: {"sdk", "sent", "failed", "errors", "requests"}.
import { Analytics } from '@segment/analytics-node';

import { parseArgs, plays } from './args.mjs';

const options = parseArgs(process.argv.slice(2));
const client = new Analytics({ writeKey: options.writeKey, host: options.host, flushAt: 1000, maxRetries: 3 });
let requests = 0;
client.on('http_request', () => {
  requests += 1;
});
const outcomes = plays(options).map(
  (message) => new Promise((resolve) => client.track(message, (err) => resolve(err ? String(err.reason ?? err) : null))),
);
await client.closeAndFlush({ timeout: 30_000 });
const results = await Promise.all(outcomes);
const failed = results.filter((r) => r !== null);
console.log(JSON.stringify({ sdk: 'segment', sent: results.length - failed.length, failed: failed.length, errors: [...new Set(failed)], requests }));
process.exit(0);
