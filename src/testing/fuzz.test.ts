import assert from 'node:assert/strict'
import { test } from 'node:test'
import { join } from 'node:path'
import { apiFuzzDaemon, fuzzApi } from './api-fuzz.ts'
import { fuzz, INPUT_KINDS } from './fuzz.ts'
import { fuzzTargets } from './fuzz-targets.ts'
import { onCleanup, tempDir } from './temp.ts'

/** The million per target: npm run fuzz. */
const QUICK_INPUTS = 2_500

for (const target of fuzzTargets()) {
  test(`fuzz ${target.name}: ${QUICK_INPUTS} inputs of ${INPUT_KINDS.join(', ')} are accepted or refused with a known reason, never thrown`, () => {
    for (const [index, input] of target.corpus.entries()) assert.equal(target.parse(input), undefined, `corpus entry ${index} is valid`)
    const report = fuzz(target, { inputs: QUICK_INPUTS, seed: process.env['SHOAL_SEED'] ?? 'quick' })
    assert.deepEqual(report.defects, [], `replay: SHOAL_SEED=${process.env['SHOAL_SEED'] ?? 'quick'}`)
    assert.equal(report.inputs, QUICK_INPUTS)
    assert.ok(Object.keys(report.rejections).length > 0 && report.accepted > 0, `both outcomes seen: ${JSON.stringify(report)}`)
  })
}

/** The larger run: npm run fuzz (--api-requests). */
const QUICK_API_REQUESTS = 480

test(`fuzz the HTTP API: ${QUICK_API_REQUESTS} requests with parameters missing, valid, changed, random, long or repeated get a success or a named error`, { timeout: 120_000 }, async (t) => {
  const daemon = await apiFuzzDaemon(join(await tempDir(t), 'repo'))
  onCleanup(t, () => daemon.close())
  const report = await fuzzApi(daemon.url, daemon.samples, QUICK_API_REQUESTS, process.env['SHOAL_SEED'] ?? 'quick')
  assert.deepEqual(report.defects, [], JSON.stringify(report.statuses))
  assert.equal(report.requests, QUICK_API_REQUESTS)
  assert.ok((report.statuses[200] ?? 0) > 0 && (report.codes['INVALID_ARGUMENT'] ?? 0) > 0, `successes and refusals both seen: ${JSON.stringify(report)}`)
})
