/**
 * Floods against a running daemon, short (src/testing/floods.ts; the 30-second version is
 * `npm run bench:flood`): through each, the daemon lives, a well-behaved peer's fetches of a
 * file complete, its memory stays under the stated bound, and what it refused is counted.
 */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { floodVerdict, runFloods, type FloodPhase } from '../testing/floods.ts'
import { tempDir } from '../testing/temp.ts'

const countedOf = (phase: FloodPhase, metric: string, reasons: readonly string[]): number =>
  Object.entries(phase.counted).filter(([series]) => series.startsWith(`${metric}{`) && reasons.some((reason) => series.includes(`reason="${reason}"`)))
    .reduce((sum, [, count]) => sum + count, 0)

test('connection, stream, frame and HTTP floods: the daemon serves a well-behaved peer throughout and counts what it refuses', { timeout: 240_000 }, async (t) => {
  const report = await runFloods(t, await tempDir(t), {
    seconds: 4, floods: ['connections', 'streams', 'frames', 'http'], connectionsPerSecond: 400, connectionSources: 20, streamsMax: 2_000, httpConcurrency: 400, fileMib: 4,
  })
  const shown = JSON.stringify(report.phases.map(({ name, counted, fetchesMs, fetchFailures, rssPeakMb, flooders }) => ({ name, counted, fetches: fetchesMs.length, fetchFailures, rssPeakMb, flooders: flooders.map((flooder) => flooder.outcomes) })))
  assert.deepEqual(floodVerdict(report).problems, [], shown)
  const phase = (name: FloodPhase['name']): FloodPhase => report.phases.find((candidate) => candidate.name === name)!
  // 20 addresses at 20 attempts/s each: twice the per-IP rate, and handshakes past the bound.
  assert.ok(countedOf(phase('connections'), 'shoal_connections_refused_total', ['inbound-rate']) > 0, shown)
  assert.ok(countedOf(phase('connections'), 'shoal_connections_refused_total', ['handshake-failed', 'handshake-timeout', 'handshake-abandoned']) > 0, shown)
  assert.ok(countedOf(phase('streams'), 'shoal_disconnects_total', ['stream-churn']) > 0, shown)
  assert.ok(countedOf(phase('frames'), 'shoal_wire_rejected_total', ['malformed', 'frame-too-large']) > 0, shown)
  const http = phase('http').flooders[0]!
  assert.equal(Object.keys(http.outcomes).filter((outcome) => !outcome.startsWith('status ')).length, 0, `every request answered: ${JSON.stringify(http.outcomes)}`)
  assert.ok((http.outcomes['status 200'] ?? 0) > 0, shown)
  // Past api.requestsInFlightMax (256), or readsInFlightMax (32) for cat, a request is answered 503 BUSY, and each is counted.
  assert.equal(countedOf(phase('http'), 'shoal_wire_rejected_total', ['busy', 'reads-busy']), http.outcomes['status 503'] ?? 0, shown)
  assert.equal(report.targetVerify.corrupt, 0)
})
