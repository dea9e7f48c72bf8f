/**
 * What every codec's property tests share (wire/*.prop.test.ts): a fixed, replayable
 * fast-check seed, the "decodes or rejects with a known code" oracle, and the property
 * that valid frames with bytes changed, cut or appended never make a decoder throw.
 */
import assert from 'node:assert/strict'
import fc from 'fast-check'
import type { DecodeResult } from '../core/sans-io.ts'

const seed = Number.parseInt(process.env['SHOAL_SEED']?.trim() || '20240501', 10)
if (!Number.isSafeInteger(seed)) throw new RangeError(`SHOAL_SEED must be an integer for fast-check, not ${process.env['SHOAL_SEED']}`)

/** Runs `property` from the fixed seed; a failure prints SEED=<n> and how to replay `file`. */
export function checkProperty(file: string, property: fc.IProperty<unknown>, numRuns = 500): void {
  try {
    fc.assert(property, { seed, numRuns })
  } catch (error) {
    console.error(`SEED=${seed}\nreplay: SHOAL_SEED=${seed} node --test --enable-source-maps ${file}`)
    throw error
  }
}

/** An oracle: `bytes` decode, or are refused with one of `codes`; nothing is thrown. */
export function decodesOrRejects<T>(decode: (bytes: Uint8Array) => DecodeResult<T>, codes: ReadonlySet<string>): (bytes: Uint8Array) => void {
  return (bytes) => {
    const result = decode(bytes)
    if (!result.ok) assert.ok(codes.has(result.error.code), result.error.code)
  }
}

/** Valid frames of `valid`, with up to 4 bytes changed, then cut, then with bytes appended: each goes to `oracle`. */
export function mutatedFramesProperty<T>(valid: fc.Arbitrary<T>, encode: (value: T) => Uint8Array, oracle: (bytes: Uint8Array) => void): fc.IProperty<unknown> {
  const mutation = fc.record({
    original: valid,
    changes: fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 4 }),
    cut: fc.nat(),
    tail: fc.uint8Array({ maxLength: 8 }),
  })
  return fc.property(mutation, ({ original, changes, cut, tail }) => {
    const bytes = encode(original)
    if (bytes.byteLength === 0) return
    for (const [at, value] of changes) bytes[at % bytes.byteLength] = value
    oracle(bytes)
    oracle(bytes.subarray(0, cut % bytes.byteLength))
    oracle(Uint8Array.of(...bytes, ...tail))
  })
}
