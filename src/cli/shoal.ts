#!/usr/bin/env -S node --max-semi-space-size=2
/**
 * The young generation is capped at 2 MiB per semi-space (V8's default grows to 16): an
 * idle daemon's resident memory drops by about 25 MB, and nothing Shoal does allocates
 * enough short-lived small objects to miss it. `npm start` passes the same flag.
 *
 * The `shoal` executable's entry: refuses a Node.js too old for its dependencies with one
 * line (rather than a stack trace from deep inside libp2p's), then runs main.ts.
 */
const NODE_MAJOR_MIN = 22
const major = Number(process.versions.node.split('.')[0])
if (major < NODE_MAJOR_MIN) {
  console.error(`shoal: needs Node.js ${NODE_MAJOR_MIN} or newer, this is ${process.version}; run it with npm start, npx shoal, or a newer node`)
  process.exit(1)
}
await import('./main.ts')
