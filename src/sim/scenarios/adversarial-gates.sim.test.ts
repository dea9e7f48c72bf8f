/**
 * The adversarial gates (adversarial-gates.ts), one test each: a short seeded run of an
 * attack held to its thresholds. A failure names the seed, every threshold missed and the
 * figures; SHOAL_SEED=<n> replays it, `shoal sim <scenario> --seed <n>` runs the full size.
 */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { seedFromEnvironment } from '../seed.ts'
import { ADVERSARIAL_GATES } from './adversarial-gates.ts'

const seed = seedFromEnvironment(1n)

for (const gate of ADVERSARIAL_GATES) {
  test(`gate ${gate.name}: ${gate.description}`, () => {
    const outcome = gate.run(seed)
    assert.ok(outcome.passed, `gate ${gate.name} failed, SEED=${String(seed)}: ${outcome.failures.join('; ')}\nfigures: ${JSON.stringify(outcome.figures)}\nknobs: ${JSON.stringify(gate.knobs)}\nreplay: ${outcome.replay}`)
  })
}
