// The command line every client script takes: --host URL --write-key KEY [--count N] [--user ID].
export function parseArgs(argv) {
  const options = { count: 10, user: 'fan-node' };
  for (let i = 0; i < argv.length; i += 2) {
    const name = argv[i].replace(/^--/, '');
    options[name === 'write-key' ? 'writeKey' : name] = argv[i + 1];
  }
  options.count = Number(options.count);
  if (!options.host || !options.writeKey || !Number.isInteger(options.count)) {
    console.error('usage: node <client>.mjs --host URL --write-key KEY [--count N] [--user ID]');
    process.exit(2);
  }
  return options;
}

// The N events every client sends: catalog plays, each a moment apart so none is a copy of another.
export function plays({ count, user }) {
  const start = Date.now() - 60_000;
  return Array.from({ length: count }, (_, i) => ({
    userId: user,
    event: 'player.track_played',
    properties: { trackId: `t${i}`, artistId: 'a1', durationSeconds: 30 + i },
    timestamp: new Date(start + i * 1000),
  }));
}
