/**
 * Generators of valid wire messages, for the codecs' property tests (wire/*.prop.test.ts)
 * and the fuzzer's corpus (fuzz-targets.ts): each within its codec's limits, so that
 * whatever is encoded decodes back unchanged.
 */
import { generateKeyPairFromSeed } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import fc from 'fast-check'
import { CID } from 'multiformats/cid'
import * as Digest from 'multiformats/hashes/digest'
import { sha256 } from 'multiformats/hashes/sha2'
import { DAG_PB_CODE, RAW_CODE } from '../core/content/cid.ts'
import { type GossipControl, type GossipMessage, type GossipRpc, messageIdFromBytes } from '../core/gossip/messages.ts'
import type { KadConnection, KadMessage, KadMessageType, KadPeer } from '../core/kad/messages.ts'
import type { MembershipMessage } from '../core/membership/membership.ts'
import { asContentKey, type BlockRef, REJECT_REASONS, SWARM_LIMITS, type SwarmMessage } from '../core/swarm/messages.ts'
import { asPeerId } from '../core/sans-io.ts'
import { PRUNE_BACKOFF_SECONDS_MAX } from '../wire/gossip.ts'

// Ed25519 only, so that gossipRpcSize's nominal peer id is every id's real length; from
// fixed seeds, so that a fuzzer's seed replays its corpus.
export const peerIds = await Promise.all(Array.from({ length: 8 }, async (_, index) => {
  const key = await generateKeyPairFromSeed('Ed25519', new Uint8Array(32).fill(index + 1))
  return asPeerId(peerIdFromPrivateKey(key).toString())
}))
const peerIdArbitrary = fc.constantFrom(...peerIds)

// --- kad ---------------------------------------------------------------------------

export const address = fc.tuple(fc.integer({ min: 0, max: 0xffffffff }), fc.integer({ min: 0, max: 0xffff }))
  .map(([ip, port]) => `/ip4/${ip >>> 24}.${ip >>> 16 & 255}.${ip >>> 8 & 255}.${ip & 255}/tcp/${port}`)

const kadPeer: fc.Arbitrary<KadPeer> = fc.record({
  id: peerIdArbitrary,
  addresses: fc.array(address, { maxLength: 8 }),
  connection: fc.constantFrom<KadConnection>('not-connected', 'connected', 'can-connect', 'cannot-connect'),
}, { noNullPrototype: true })

// Within KAD_LIMITS, so that everything encoded decodes back unchanged.
export const kadMessage: fc.Arbitrary<KadMessage> = fc.record({
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

// --- gossip ------------------------------------------------------------------------

// Well-formed text only: a lone surrogate cannot survive UTF-8 (gossip.test.ts sizes those).
const topic = fc.string({ unit: 'grapheme', maxLength: 12 })
const messageId = fc.uint8Array({ maxLength: 64 }).map(messageIdFromBytes)
const record = <T>(model: { [K in keyof T]: fc.Arbitrary<T[K]> }) => fc.record(model, { noNullPrototype: true, requiredKeys: [] })

// Within GOSSIP_LIMITS, so that everything encoded decodes back unchanged. Optional fields
// are left out rather than set to undefined, as the decoder leaves them.
const message: fc.Arbitrary<GossipMessage> = fc.tuple(
  fc.record({ topic, data: fc.uint8Array({ maxLength: 300 }) }, { noNullPrototype: true }),
  record({ from: peerIdArbitrary, seqno: fc.uint8Array({ maxLength: 64 }), signature: fc.uint8Array({ maxLength: 128 }), key: fc.uint8Array({ maxLength: 64 }) }),
).map(([required, optional]) => ({ ...required, ...optional }))

const control: fc.Arbitrary<GossipControl> = fc.record({
  ihave: fc.array(fc.record({ topic, messageIds: fc.array(messageId, { maxLength: 8 }) }, { noNullPrototype: true }), { maxLength: 4 }),
  iwant: fc.array(messageId, { maxLength: 20 }),
  graft: fc.array(topic, { maxLength: 4 }),
  prune: fc.array(fc.tuple(
    fc.record({ topic, peers: fc.array(fc.tuple(fc.record({ peer: peerIdArbitrary }, { noNullPrototype: true }), record({ signedPeerRecord: fc.uint8Array({ maxLength: 200 }) })).map(([peer, optional]) => ({ ...peer, ...optional })), { maxLength: 6 }) }, { noNullPrototype: true }),
    record({ backoffSeconds: fc.integer({ min: 0, max: PRUNE_BACKOFF_SECONDS_MAX }) }),
  ).map(([required, optional]) => ({ ...required, ...optional })), { maxLength: 3 }),
  idontwant: fc.array(messageId, { maxLength: 20 }),
}, { noNullPrototype: true })

export const gossipRpc: fc.Arbitrary<GossipRpc> = fc.tuple(
  fc.record({
    subscriptions: fc.array(fc.record({ topic, subscribe: fc.boolean() }, { noNullPrototype: true }), { maxLength: 6 }),
    messages: fc.array(message, { maxLength: 4 }),
  }, { noNullPrototype: true }),
  record({ control }),
).map(([required, optional]) => ({ ...required, ...optional }))

// --- swarm -------------------------------------------------------------------------

export type CidVersion = 0 | 1
export const CID_BYTES: Record<CidVersion, number> = { 0: 34, 1: 36 }

// sha2-256 CIDs of random digests: CIDv0, or CIDv1 of either codec a UnixFS DAG uses. One
// version per message, so that swarmMessageSize can be given every CID's length.
export function cidText(version: CidVersion): fc.Arbitrary<string> {
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
function swarmMessageOf(version: CidVersion): fc.Arbitrary<SwarmMessage> {
  const root = cidText(version).map(asContentKey)
  const block: fc.Arbitrary<BlockRef> = fc.oneof(leaf, cidText(version))
  const options = { noNullPrototype: true }
  const messages: fc.Arbitrary<SwarmMessage>[] = [
    fc.record({ root, bitfield: bitfieldBits }, options).map(({ root, bitfield }) => ({ type: 'bitfield', root, ...bitfield })),
    root.map((root) => ({ type: 'bitfield', root, leafCount: 0, bits: new Uint8Array(0), dagHeld: true })),
    fc.record({ type: fc.constantFrom('absent', 'interested', 'not-interested', 'choke', 'unchoke'), root }, options),
    fc.record({ type: fc.constant('have'), root, leaves: fc.array(leaf, { minLength: 1, maxLength: 40 }) }, options),
    fc.record({ type: fc.constantFrom('request', 'cancel'), root, block }, options),
    fc.record({ type: fc.constant('block'), root, block, data: fc.uint8Array({ maxLength: 300 }) }, options),
    fc.record({ type: fc.constant('reject'), root, block, reason: fc.constantFrom(...REJECT_REASONS) }, options),
  ]
  return fc.oneof(...messages)
}

export const versionedSwarmMessage = fc.constantFrom<CidVersion>(0, 1).chain((version) => swarmMessageOf(version).map((message) => ({ version, message })))
export const swarmMessage = versionedSwarmMessage.map(({ message }) => message)

// --- membership --------------------------------------------------------------------

export const membershipMessage: fc.Arbitrary<MembershipMessage> = fc.oneof(
  fc.record({ type: fc.constantFrom('ping' as const, 'pong' as const), nonce: fc.nat() }, { noNullPrototype: true }),
  fc.record({ type: fc.constant('exchange-request' as const), count: fc.nat({ max: 24 }) }, { noNullPrototype: true }),
  fc.record({
    type: fc.constant('exchange-response' as const),
    peers: fc.array(fc.record({ peer: peerIdArbitrary, addresses: fc.array(address, { maxLength: 4 }) }, { noNullPrototype: true }), { maxLength: 8 }),
  }, { noNullPrototype: true }),
)
