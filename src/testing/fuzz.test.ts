import assert from 'node:assert/strict'
import { test } from 'node:test'
import { fuzz, INPUT_KINDS } from './fuzz.ts'
import { fuzzTargets } from './fuzz-targets.ts'

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
