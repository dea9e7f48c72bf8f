#!/usr/bin/env node
/**
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
