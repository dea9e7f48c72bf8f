/**
 * Properties of the swarm codec over generated input. The seed is fixed so runs repeat;
 * a failure prints SEED=<n>, and SHOAL_SEED=<n> replays it (fast-check seeds are integers).
 */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import fc from 'fast-check'
import { CID } from 'multiformats/cid'
import { CID_BYTES, cidText, swarmMessage, versionedSwarmMessage } from '../testing/wire-arbitraries.ts'
import { checkProperty, decodesOrRejects, mutatedFramesProperty } from '../testing/wire-properties.ts'
import { SwarmFrame } from './proto/swarm.ts'
import { decodeSwarm, encodeSwarm, SWARM_WIRE_ERROR_CODES, swarmMessageSize } from './swarm.ts'

const check = (property: fc.IProperty<unknown>, numRuns?: number) => checkProperty('dist/src/wire/swarm.prop.test.js', property, numRuns)

const assertDecodesOrRejects = decodesOrRejects(decodeSwarm, SWARM_WIRE_ERROR_CODES)

test('messages within the limits survive a round trip, and swarmMessageSize is their encoded size', () => {
  check(fc.property(versionedSwarmMessage, ({ version, message }) => {
    const bytes = encodeSwarm(message)
    assert.equal(swarmMessageSize(message, CID_BYTES[version]), bytes.byteLength)
    assert.deepEqual(decodeSwarm(bytes), { ok: true, value: message })
  }), 300)
})

// Every field of any value: real CIDs and garbage, in range and out, as a peer could write them.
const anyFrame = fc.record({
  type: fc.integer({ min: 0, max: 13 }),
  root: fc.oneof({ arbitrary: cidText(1).map((text) => CID.parse(text).bytes as Uint8Array<ArrayBuffer>), weight: 4 }, fc.uint8Array({ maxLength: 40 })),
  leaf: fc.oneof(fc.nat({ max: 300 }), fc.nat({ max: 2 ** 32 - 1 })),
  node: fc.oneof(cidText(0).map((text) => CID.parse(text).bytes as Uint8Array<ArrayBuffer>), fc.uint8Array({ maxLength: 40 })),
  data: fc.uint8Array({ maxLength: 64 }),
  leafCount: fc.oneof(fc.nat({ max: 20 }), fc.nat()),
  bits: fc.uint8Array({ maxLength: 4 }),
  leaves: fc.array(fc.oneof(fc.nat({ max: 300 }), fc.nat({ max: 2 ** 32 - 1 })), { maxLength: 6 }),
  reason: fc.nat({ max: 6 }),
}, { requiredKeys: [] })

test('frames of any field values are read or refused with a known code; what is read is read again the same', () => {
  check(fc.property(anyFrame, (fields) => {
    const result = decodeSwarm(SwarmFrame.encode(fields))
    if (!result.ok) {
      assert.ok(SWARM_WIRE_ERROR_CODES.has(result.error.code), result.error.code)
      return
    }
    assert.deepEqual(decodeSwarm(encodeSwarm(result.value)), result)
  }), 1_000)
})

test('random bytes are read or rejected with a known code, never thrown', () => {
  check(fc.property(fc.uint8Array({ maxLength: 512 }), assertDecodesOrRejects), 5_000)
})

test('valid frames with bytes changed, cut or appended are read or rejected, never thrown', () => {
  check(mutatedFramesProperty(swarmMessage, encodeSwarm, assertDecodesOrRejects), 500)
})
