/**
 * Properties of the DHT codec over generated input. The seed is fixed so runs repeat;
 * a failure prints SEED=<n>, and SHOAL_SEED=<n> replays it (fast-check seeds are integers).
 */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import fc from 'fast-check'
import { kadMessage } from '../testing/wire-arbitraries.ts'
import { checkProperty, decodesOrRejects, mutatedFramesProperty } from '../testing/wire-properties.ts'
import { decodeKad, encodeKad, KAD_WIRE_ERROR_CODES, kadMessageSize } from './kad.ts'

const check = (property: fc.IProperty<unknown>, numRuns?: number) => checkProperty('dist/src/wire/kad.prop.test.js', property, numRuns)

const assertDecodesOrRejects = decodesOrRejects(decodeKad, KAD_WIRE_ERROR_CODES)

test('messages within the limits survive a round trip, and kadMessageSize is their encoded size', () => {
  check(fc.property(kadMessage, (original) => {
    const bytes = encodeKad(original)
    assert.equal(kadMessageSize(original), bytes.byteLength)
    // A lone surrogate cannot survive UTF-8; compare with what the wire can carry.
    const timeReceived = original.record && new TextDecoder().decode(new TextEncoder().encode(original.record.timeReceived))
    const expected = original.record ? { ...original, record: { ...original.record, timeReceived } } : original
    assert.deepEqual(decodeKad(bytes), { ok: true, value: expected })
  }), 200)
})

test('random bytes are read or rejected with a known code, never thrown', () => {
  check(fc.property(fc.uint8Array({ maxLength: 512 }), assertDecodesOrRejects), 5_000)
})

test('valid frames with bytes changed, cut or appended are read or rejected, never thrown', () => {
  check(mutatedFramesProperty(kadMessage, encodeKad, assertDecodesOrRejects), 300)
})
