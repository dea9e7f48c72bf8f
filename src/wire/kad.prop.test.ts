/**
 * Properties of the DHT codec over generated input. The seed is fixed so runs repeat;
 * a failure prints SEED=<n>, and SHOAL_SEED=<n> replays it (fast-check seeds are integers).
 */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import fc from 'fast-check'
import type { KadConnection, KadMessage, KadMessageType, KadPeer } from '../core/kad/messages.ts'
import { asPeerId } from '../core/sans-io.ts'
import { checkProperty, decodesOrRejects, mutatedFramesProperty } from '../testing/wire-properties.ts'
import { decodeKad, encodeKad, kadMessageSize } from './kad.ts'

const check = (property: fc.IProperty<unknown>, numRuns?: number) => checkProperty('dist/src/wire/kad.prop.test.js', property, numRuns)

const REJECTION_CODES = new Set([
  'frame-too-large', 'malformed', 'too-many-peers', 'too-many-addresses', 'bad-message-type',
  'key-too-large', 'record-key-too-large', 'value-too-large', 'time-received-too-long',
])

const assertDecodesOrRejects = decodesOrRejects(decodeKad, REJECTION_CODES)

const peerIds = await Promise.all(Array.from({ length: 8 }, async () => asPeerId(peerIdFromPrivateKey(await generateKeyPair('Ed25519')).toString())))

const address = fc.tuple(fc.integer({ min: 0, max: 0xffffffff }), fc.integer({ min: 0, max: 0xffff }))
  .map(([ip, port]) => `/ip4/${ip >>> 24}.${ip >>> 16 & 255}.${ip >>> 8 & 255}.${ip & 255}/tcp/${port}`)

const kadPeer: fc.Arbitrary<KadPeer> = fc.record({
  id: fc.constantFrom(...peerIds),
  addresses: fc.array(address, { maxLength: 8 }),
  connection: fc.constantFrom<KadConnection>('not-connected', 'connected', 'can-connect', 'cannot-connect'),
}, { noNullPrototype: true })

// Within KAD_LIMITS, so that everything encoded decodes back unchanged.
const kadMessage: fc.Arbitrary<KadMessage> = fc.record({
  type: fc.constantFrom<KadMessageType>('PUT_VALUE', 'GET_VALUE', 'ADD_PROVIDER', 'GET_PROVIDERS', 'FIND_NODE', 'PING'),
  key: fc.uint8Array({ maxLength: 256 }),
  record: fc.option(fc.record({
    key: fc.uint8Array({ maxLength: 256 }),
    value: fc.uint8Array({ maxLength: 600 }),
    timeReceived: fc.string({ maxLength: 64, unit: 'binary' }),
  }, { noNullPrototype: true }), { nil: undefined }),
  closerPeers: fc.array(kadPeer, { maxLength: 20 }),
  providerPeers: fc.array(kadPeer, { maxLength: 20 }),
}, { noNullPrototype: true })

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
