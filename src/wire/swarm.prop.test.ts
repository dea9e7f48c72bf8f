/**
 * Properties of the swarm codec over generated input. The seed is fixed so runs repeat;
 * a failure prints SEED=<n>, and SHOAL_SEED=<n> replays it (fast-check seeds are integers).
 */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import fc from 'fast-check'
import { CID } from 'multiformats/cid'
import * as Digest from 'multiformats/hashes/digest'
import { sha256 } from 'multiformats/hashes/sha2'
import { DAG_PB_CODE, RAW_CODE } from '../core/content/cid.ts'
import { asContentKey, type BlockRef, REJECT_REASONS, SWARM_LIMITS, type SwarmMessage } from '../core/swarm/messages.ts'
import { checkProperty, decodesOrRejects, mutatedFramesProperty } from '../testing/wire-properties.ts'
import { SwarmFrame } from './proto/swarm.ts'
import { decodeSwarm, encodeSwarm, SWARM_WIRE_ERROR_CODES, swarmMessageSize } from './swarm.ts'

const check = (property: fc.IProperty<unknown>, numRuns?: number) => checkProperty('dist/src/wire/swarm.prop.test.js', property, numRuns)

const assertDecodesOrRejects = decodesOrRejects(decodeSwarm, SWARM_WIRE_ERROR_CODES)

type CidVersion = 0 | 1
const CID_BYTES: Record<CidVersion, number> = { 0: 34, 1: 36 }

// sha2-256 CIDs of random digests: CIDv0, or CIDv1 of either codec a UnixFS DAG uses. One
// version per message, so that swarmMessageSize can be given every CID's length.
function cidText(version: CidVersion): fc.Arbitrary<string> {
  const digest = fc.uint8Array({ minLength: 32, maxLength: 32 }).map((bytes) => Digest.create(sha256.code, bytes))
  if (version === 0) return digest.map((multihash) => CID.createV0(multihash).toString())
  return fc.tuple(fc.constantFrom(DAG_PB_CODE, RAW_CODE), digest).map(([code, multihash]) => CID.createV1(code, multihash).toString())
}

// Mostly small, as real DAGs are, and sometimes anywhere below the bound.
const leaf = fc.oneof(fc.nat({ max: 300 }), fc.nat({ max: SWARM_LIMITS.leafCountMax - 1 }))

const bitfieldBits = fc.oneof(fc.nat({ max: 64 }), fc.nat({ max: 4_000 })).chain((leafCount) => {
  const length = Math.ceil(leafCount / 8)
  const spareBitCount = length * 8 - leafCount
  return fc.uint8Array({ minLength: length, maxLength: length }).map((bits) => {
    if (spareBitCount > 0) bits[length - 1]! &= 0xff << spareBitCount
    return { leafCount, bits }
  })
})

// Within SWARM_LIMITS, so that everything encoded decodes back unchanged.
function swarmMessage(version: CidVersion): fc.Arbitrary<SwarmMessage> {
  const root = cidText(version).map(asContentKey)
  const block: fc.Arbitrary<BlockRef> = fc.oneof(leaf, cidText(version))
  const options = { noNullPrototype: true }
  const messages: fc.Arbitrary<SwarmMessage>[] = [
    fc.record({ root, bitfield: bitfieldBits }, options).map(({ root, bitfield }) => ({ type: 'bitfield', root, ...bitfield })),
    fc.record({ type: fc.constantFrom('absent', 'interested', 'not-interested', 'choke', 'unchoke'), root }, options),
    fc.record({ type: fc.constant('have'), root, leaves: fc.array(leaf, { minLength: 1, maxLength: 40 }) }, options),
    fc.record({ type: fc.constantFrom('request', 'cancel'), root, block }, options),
    fc.record({ type: fc.constant('block'), root, block, data: fc.uint8Array({ maxLength: 300 }) }, options),
    fc.record({ type: fc.constant('reject'), root, block, reason: fc.constantFrom(...REJECT_REASONS) }, options),
  ]
  return fc.oneof(...messages)
}

const versionedMessage = fc.constantFrom<CidVersion>(0, 1).chain((version) => swarmMessage(version).map((message) => ({ version, message })))
const anyMessage = versionedMessage.map(({ message }) => message)

test('messages within the limits survive a round trip, and swarmMessageSize is their encoded size', () => {
  check(fc.property(versionedMessage, ({ version, message }) => {
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
  check(mutatedFramesProperty(anyMessage, encodeSwarm, assertDecodesOrRejects), 500)
})
