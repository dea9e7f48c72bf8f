/**
 * Properties of the GossipSub codec over generated input. The seed is fixed so runs repeat;
 * a failure prints SEED=<n>, and SHOAL_SEED=<n> replays it (fast-check seeds are integers).
 */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import fc from 'fast-check'
import { type GossipControl, type GossipMessage, type GossipRpc, messageIdFromBytes } from '../core/gossip/messages.ts'
import { asPeerId } from '../core/sans-io.ts'
import { checkProperty, decodesOrRejects, mutatedFramesProperty } from '../testing/wire-properties.ts'
import { decodeGossip, encodeGossip, gossipRpcSize, PRUNE_BACKOFF_SECONDS_MAX } from './gossip.ts'

const check = (property: fc.IProperty<unknown>, numRuns?: number) => checkProperty('dist/src/wire/gossip.prop.test.js', property, numRuns)

const REJECTION_CODES = new Set([
  'frame-too-large', 'malformed', 'too-many-subscriptions', 'too-many-messages', 'too-many-ihave-entries', 'too-many-iwant-entries',
  'too-many-grafts', 'too-many-prunes', 'too-many-idontwant-entries', 'too-many-message-ids', 'too-many-prune-peers', 'topic-too-long',
  'message-id-too-long', 'message-too-large', 'seqno-too-long', 'signature-too-long', 'key-too-long', 'signed-peer-record-too-long',
])

const assertDecodesOrRejects = decodesOrRejects(decodeGossip, REJECTION_CODES)

// Ed25519 only, so that gossipRpcSize's nominal peer id is every id's real length.
const peerIds = await Promise.all(Array.from({ length: 8 }, async () => asPeerId(peerIdFromPrivateKey(await generateKeyPair('Ed25519')).toString())))

const peerId = fc.constantFrom(...peerIds)
// Well-formed text only: a lone surrogate cannot survive UTF-8 (gossip.test.ts sizes those).
const topic = fc.string({ unit: 'grapheme', maxLength: 12 })
const messageId = fc.uint8Array({ maxLength: 64 }).map(messageIdFromBytes)
const optionalBytes = (maxLength: number) => fc.option(fc.uint8Array({ maxLength }), { nil: undefined })
const record = <T>(model: { [K in keyof T]: fc.Arbitrary<T[K]> }) => fc.record(model, { noNullPrototype: true, requiredKeys: [] })

// Within GOSSIP_LIMITS, so that everything encoded decodes back unchanged. Optional fields
// are left out rather than set to undefined, as the decoder leaves them.
const message: fc.Arbitrary<GossipMessage> = fc.tuple(
  fc.record({ topic, data: fc.uint8Array({ maxLength: 300 }) }, { noNullPrototype: true }),
  record({ from: peerId, seqno: fc.uint8Array({ maxLength: 64 }), signature: fc.uint8Array({ maxLength: 128 }), key: fc.uint8Array({ maxLength: 64 }) }),
).map(([required, optional]) => ({ ...required, ...optional }))

const control: fc.Arbitrary<GossipControl> = fc.record({
  ihave: fc.array(fc.record({ topic, messageIds: fc.array(messageId, { maxLength: 8 }) }, { noNullPrototype: true }), { maxLength: 4 }),
  iwant: fc.array(messageId, { maxLength: 20 }),
  graft: fc.array(topic, { maxLength: 4 }),
  prune: fc.array(fc.tuple(
    fc.record({ topic, peers: fc.array(fc.tuple(fc.record({ peer: peerId }, { noNullPrototype: true }), record({ signedPeerRecord: fc.uint8Array({ maxLength: 200 }) })).map(([peer, optional]) => ({ ...peer, ...optional })), { maxLength: 6 }) }, { noNullPrototype: true }),
    record({ backoffSeconds: fc.integer({ min: 0, max: PRUNE_BACKOFF_SECONDS_MAX }) }),
  ).map(([required, optional]) => ({ ...required, ...optional })), { maxLength: 3 }),
  idontwant: fc.array(messageId, { maxLength: 20 }),
}, { noNullPrototype: true })

const gossipRpc: fc.Arbitrary<GossipRpc> = fc.tuple(
  fc.record({
    subscriptions: fc.array(fc.record({ topic, subscribe: fc.boolean() }, { noNullPrototype: true }), { maxLength: 6 }),
    messages: fc.array(message, { maxLength: 4 }),
  }, { noNullPrototype: true }),
  record({ control }),
).map(([required, optional]) => ({ ...required, ...optional }))

function isEmpty(control: GossipControl): boolean {
  return control.ihave.length + control.iwant.length + control.graft.length + control.prune.length + control.idontwant.length === 0
}

test('RPCs within the limits survive a round trip, and gossipRpcSize is their encoded size', () => {
  check(fc.property(gossipRpc, (original) => {
    const bytes = encodeGossip(original)
    assert.equal(gossipRpcSize(original), bytes.byteLength)
    // A control message with nothing in it is not sent.
    const { control: sent, ...rest } = original
    const expected = sent === undefined || isEmpty(sent) ? rest : original
    assert.deepEqual(decodeGossip(bytes), { ok: true, value: expected })
  }), 300)
})

test('random bytes are read or rejected with a known code, never thrown', () => {
  check(fc.property(fc.uint8Array({ maxLength: 512 }), assertDecodesOrRejects), 5_000)
})

test('valid frames with bytes changed, cut or appended are read or rejected, never thrown', () => {
  check(mutatedFramesProperty(gossipRpc, encodeGossip, assertDecodesOrRejects), 500)
})
