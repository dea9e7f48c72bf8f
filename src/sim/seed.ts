/**
 * Seeds for simulation runs: parsing them from the command line or the environment, so
 * that a failure's `SEED=<n>` replays with `SHOAL_SEED=<n> npm test` or
 * `shoal sim <scenario> --seed <n>`. Used by tests, scenarios and the CLI.
 */
import type { Seed } from './simulator.ts'

/** An integer becomes a bigint (7 and 7n are the same seed); anything else is text, e.g. a commit hash. */
export function parseSeed(text: string): Seed {
  const trimmed = text.trim()
  if (trimmed.length === 0) throw new RangeError('a seed must not be empty')
  return /^-?\d+$/.test(trimmed) ? BigInt(trimmed) : trimmed
}

/** The seed a test should use: SHOAL_SEED when set, otherwise the test's own. */
export function seedFromEnvironment(fallback: Seed): Seed {
  const text = process.env['SHOAL_SEED']
  return text === undefined || text.trim() === '' ? fallback : parseSeed(text)
}

export function formatSeed(seed: Seed): string {
  return String(seed)
}
