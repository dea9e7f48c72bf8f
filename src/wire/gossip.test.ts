import assert from 'node:assert/strict'
import { test } from 'node:test'
import { generateKeyPair, publicKeyToProtobuf } from '@libp2p/crypto/keys'
import { RPC as Reference } from '@libp2p/gossipsub/message'
import { PublishConfigType } from '@libp2p/gossipsub/types'
import { peerIdFromPrivateKey, peerIdFromString } from '@libp2p/peer-id'
import { identity } from 'multiformats/hashes/identity'
import {
  GOSSIP_LIMITS, type GossipControl, type GossipMessage, type GossipRpc, MESHSUB_PROTOCOL_V10, MESHSUB_PROTOCOL_V11, MESHSUB_PROTOCOL_V12,
  type MessageId, messageIdFromBytes, messageIdToBytes,
} from '../core/gossip/messages.ts'
import { asPeerId, type PeerId } from '../core/sans-io.ts'
import {
  decodeGossip, defaultMessageId, encodeGossip, gossipCodec, gossipRpcSize, gossipSigningBytes, PRUNE_BACKOFF_SECONDS_MAX, publicKeyMessageId,
} from './gossip.ts'
import { type ControlMessage as ControlFrame, type Message as MessageFrame, RPC as RpcFrame } from './proto/gossipsub.ts'
// Only the types: the reference's signing and message id helpers are not among the package's
// exports, so they are loaded at run time by their paths beside the package's entry point.
import type * as ReferenceSigning from '../../node_modules/@libp2p/gossipsub/dist/src/utils/buildRawMessage.js'
import type * as ReferenceMessageIds from '../../node_modules/@libp2p/gossipsub/dist/src/utils/msgIdFn.js'

const referenceFile = (path: string): string => new URL(path, import.meta.resolve('@libp2p/gossipsub')).href
const referenceSigning = await import(referenceFile('./utils/buildRawMessage.js')) as typeof ReferenceSigning
const referenceMessageIds = await import(referenceFile('./utils/msgIdFn.js')) as typeof ReferenceMessageIds

const keys = await Promise.all(Array.from({ length: 8 }, () => generateKeyPair('Ed25519')))
const peerIds = keys.map((key) => asPeerId(peerIdFromPrivateKey(key).toString()))
const secp256k1PeerId = asPeerId(peerIdFromPrivateKey(await generateKeyPair('secp256k1')).toString())
const rsaPeerId = asPeerId('QmYyQSo1c1Ym7orWxLYvCrM2EmxFTANf8wXmmE7DWjhx5N')

function peerIdAt(index: number): PeerId {
  const id = peerIds[index]
  assert.ok(id !== undefined)
  return id
}

function peerIdBytes(id: PeerId): Uint8Array {
  return peerIdFromString(id).toMultihash().bytes
}

const bytesOf = (text: string): Uint8Array => new TextEncoder().encode(text)
const id = (text: string): MessageId => messageIdFromBytes(bytesOf(text))
const seqno = (value: number): Uint8Array => Uint8Array.of(0, 0, 0, 0, value >>> 24, value >>> 16 & 255, value >>> 8 & 255, value & 255)

function control(fields: Partial<GossipControl>): GossipControl {
  return { ihave: [], iwant: [], graft: [], prune: [], idontwant: [], ...fields }
}

function rpc(fields: Partial<GossipRpc>): GossipRpc {
  return { subscriptions: [], messages: [], ...fields }
}

const signedMessage: GossipMessage = {
  topic: 'blocks', data: bytesOf('hello'), from: peerIdAt(0), seqno: seqno(1), signature: new Uint8Array(64).fill(7), key: new Uint8Array(36).fill(9),
}

/** Every kind of content an RPC carries, on real peer ids; Ed25519 unless named otherwise. */
const rpcs: Record<string, GossipRpc> = {
  'empty': rpc({}),
  'subscriptions': rpc({ subscriptions: [{ topic: 'blocks', subscribe: true }, { topic: 'tx', subscribe: false }, { topic: '', subscribe: true }] }),
  'a signed message': rpc({ messages: [signedMessage] }),
  'unsigned messages': rpc({ messages: [{ topic: 'blocks', data: bytesOf('anonymous') }, { topic: '', data: new Uint8Array(0) }] }),
  'messages with empty fields': rpc({ messages: [{ topic: 'é€😀', data: new Uint8Array(0), from: peerIdAt(1), seqno: new Uint8Array(0), signature: new Uint8Array(0), key: new Uint8Array(0) }] }),
  'ihave': rpc({ control: control({ ihave: [{ topic: 'blocks', messageIds: [id('m1'), id('m2')] }, { topic: 'tx', messageIds: [] }, { topic: '', messageIds: [id('')] }] }) }),
  'iwant': rpc({ control: control({ iwant: [id('m1'), id('m2'), messageIdFromBytes(Uint8Array.of(0, 255, 128))] }) }),
  'graft': rpc({ control: control({ graft: ['blocks', 'tx'] }) }),
  'prune with peer exchange and backoff': rpc({
    control: control({ prune: [{ topic: 'blocks', peers: [{ peer: peerIdAt(2), signedPeerRecord: bytesOf('an envelope') }, { peer: peerIdAt(3) }], backoffSeconds: 60 }] }),
  }),
  'prune as v1.0 sends it': rpc({ control: control({ prune: [{ topic: 'blocks', peers: [] }] }) }),
  'prune with zero and maximal backoff': rpc({
    control: control({ prune: [{ topic: 'a', peers: [], backoffSeconds: 0 }, { topic: 'b', peers: [], backoffSeconds: PRUNE_BACKOFF_SECONDS_MAX }] }),
  }),
  'idontwant': rpc({ control: control({ idontwant: [id('m1'), id('m3')] }) }),
  'everything at once': rpc({
    subscriptions: [{ topic: 'blocks', subscribe: true }],
    messages: [signedMessage, { ...signedMessage, seqno: seqno(2), data: new Uint8Array(300).fill(1) }],
    control: control({
      ihave: [{ topic: 'blocks', messageIds: [id('m1')] }], iwant: [id('m2')], graft: ['blocks'],
      prune: [{ topic: 'tx', peers: [{ peer: peerIdAt(4) }], backoffSeconds: 10 }], idontwant: [id('m3')],
    }),
  }),
}

const otherKeyTypes = rpc({
  messages: [{ ...signedMessage, from: secp256k1PeerId }, { ...signedMessage, from: rsaPeerId }],
  control: control({ prune: [{ topic: 'blocks', peers: [{ peer: secp256k1PeerId }, { peer: rsaPeerId, signedPeerRecord: Uint8Array.of(1) }] }] }),
})

function decoded(bytes: Uint8Array): GossipRpc {
  const result = decodeGossip(bytes)
  assert.ok(result.ok, result.ok ? '' : `${result.error.code}: ${result.error.detail}`)
  return result.value
}

function rejectionCode(bytes: Uint8Array): string | undefined {
  const result = decodeGossip(bytes)
  return result.ok ? undefined : result.error.code
}

test('the codec speaks /meshsub/1.2.0, falls back to 1.1.0 and 1.0.0, and bounds frames by GOSSIP_LIMITS', () => {
  assert.equal(gossipCodec.protocol, MESHSUB_PROTOCOL_V12)
  assert.deepEqual(gossipCodec.fallbackProtocols, [MESHSUB_PROTOCOL_V11, MESHSUB_PROTOCOL_V10])
  assert.equal(gossipCodec.frameBytesMax, GOSSIP_LIMITS.frameBytesMax)
  const original = rpcs['everything at once']!
  assert.deepEqual(gossipCodec.decode(gossipCodec.encode(original)), { ok: true, value: original })
})

test('every kind of content survives a round trip, on every key type', () => {
  for (const [name, original] of Object.entries(rpcs)) assert.deepEqual(decodeGossip(encodeGossip(original)), { ok: true, value: original }, name)
  assert.deepEqual(decoded(encodeGossip(otherKeyTypes)), otherKeyTypes)
})

test('a control message with nothing in it is not sent, and reads as none', () => {
  assert.deepEqual(encodeGossip(rpc({ control: control({}) })), new Uint8Array(0))
  assert.deepEqual(decoded(RpcFrame.encode({ control: { ihave: [], iwant: [], graft: [], prune: [], idontwant: [] } })), rpc({}))
  assert.deepEqual(decoded(RpcFrame.encode({ control: { ihave: [], iwant: [{ messageIDs: [] }], graft: [], prune: [], idontwant: [] } })), rpc({}))
})

test('peer ids beyond the caches\' capacity are converted as well as the first', async () => {
  const many = await Promise.all(Array.from({ length: 1_100 }, async () => asPeerId(peerIdFromPrivateKey(await generateKeyPair('Ed25519')).toString())))
  for (let round = 0; round < 2; round++) {
    for (let start = 0; start < many.length; start += 100) {
      const original = rpc({ messages: many.slice(start, start + 100).map((from) => ({ topic: 't', data: new Uint8Array(0), from })) })
      assert.deepEqual(decoded(encodeGossip(original)), original)
    }
  }
})

// --- interoperability with @libp2p/gossipsub's own protobuf --------------------------------

// What @libp2p/gossipsub's router hands its RPC.encode for the same content.
function toReference(original: GossipRpc): Reference {
  const ids = (list: readonly MessageId[]) => list.map(messageIdToBytes)
  const reference: Reference = {
    subscriptions: original.subscriptions.map(({ subscribe, topic }) => ({ subscribe, topic })),
    messages: original.messages.map((message) => ({
      ...optional('from', message.from === undefined ? undefined : peerIdBytes(message.from)),
      data: message.data,
      ...optional('seqno', message.seqno),
      topic: message.topic,
      ...optional('signature', message.signature),
      ...optional('key', message.key),
    })),
  }
  const { control } = original
  if (control !== undefined && control.ihave.length + control.iwant.length + control.graft.length + control.prune.length + control.idontwant.length > 0) {
    reference.control = {
      ihave: control.ihave.map(({ topic, messageIds }) => ({ topicID: topic, messageIDs: ids(messageIds) })),
      iwant: control.iwant.length === 0 ? [] : [{ messageIDs: ids(control.iwant) }],
      graft: control.graft.map((topic) => ({ topicID: topic })),
      prune: control.prune.map(({ topic, peers, backoffSeconds }) => ({
        topicID: topic,
        peers: peers.map(({ peer, signedPeerRecord }) => ({ peerID: peerIdBytes(peer), ...optional('signedPeerRecord', signedPeerRecord) })),
        ...optional('backoff', backoffSeconds),
      })),
      idontwant: control.idontwant.length === 0 ? [] : [{ messageIDs: ids(control.idontwant) }],
    }
  }
  return reference
}

// Leaves an absent field out, as the reference's decoder does.
function optional<K extends string, V>(name: K, value: V | undefined): Partial<Record<K, V>> {
  return value === undefined ? {} : { [name]: value } as Record<K, V>
}

test('the reference implementation writes the same bytes for the same content', () => {
  for (const [name, original] of Object.entries(rpcs)) assert.deepEqual(encodeGossip(original), Reference.encode(toReference(original)), name)
  assert.deepEqual(encodeGossip(otherKeyTypes), Reference.encode(toReference(otherKeyTypes)))
})

test('what the reference implementation writes, we read; and what we write, it reads', () => {
  for (const [name, original] of [...Object.entries(rpcs), ['other key types', otherKeyTypes] as const]) {
    assert.deepEqual(decodeGossip(Reference.encode(toReference(original))), { ok: true, value: original }, name)
    assert.deepEqual(Reference.decode(encodeGossip(original)), toReference(original), name)
  }
})

test('several IWANT and IDONTWANT entries, as go-libp2p may send, are read as one list each, in order', () => {
  const written = Reference.encode({
    subscriptions: [],
    messages: [],
    control: {
      ihave: [{ messageIDs: [bytesOf('h')] }],
      iwant: [{ messageIDs: [bytesOf('a'), bytesOf('b')] }, { messageIDs: [] }, { messageIDs: [bytesOf('c')] }],
      graft: [{}],
      prune: [{ peers: [] }],
      idontwant: [{ messageIDs: [bytesOf('x')] }, { messageIDs: [bytesOf('y')] }],
    },
  })
  assert.deepEqual(decoded(written), rpc({
    // Entries without a topic read as topic '', for the core to reject.
    control: control({ ihave: [{ topic: '', messageIds: [id('h')] }], iwant: [id('a'), id('b'), id('c')], graft: [''], prune: [{ topic: '', peers: [] }], idontwant: [id('x'), id('y')] }),
  }))
})

// --- signing and message ids ---------------------------------------------------------------

async function referenceSignedMessage(data: Uint8Array): Promise<Awaited<ReturnType<typeof ReferenceSigning.buildRawMessage>>> {
  const privateKey = keys[5]!
  const publishConfig = { type: PublishConfigType.Signing, author: peerIdFromPrivateKey(privateKey), key: publicKeyToProtobuf(privateKey.publicKey), privateKey } as const
  return await referenceSigning.buildRawMessage(publishConfig, 'blocks', data, data)
}

test('a message signed by @libp2p/gossipsub verifies against gossipSigningBytes, empty data included', async () => {
  for (const data of [bytesOf('a block announcement'), new Uint8Array(0)]) {
    const { raw } = await referenceSignedMessage(data)
    const [message] = decoded(Reference.encode({ subscriptions: [], messages: [raw] })).messages
    assert.ok(message?.signature !== undefined && message.from === peerIdAt(5))
    assert.ok(await keys[5]!.publicKey.verify(gossipSigningBytes(message), message.signature))
    assert.ok(!await keys[5]!.publicKey.verify(gossipSigningBytes({ ...message, topic: 'other' }), message.signature))
  }
})

test('gossipSigningBytes is the pubsub prefix and the Message with only from, data, seqno and topic', () => {
  const expected = new Uint8Array([...bytesOf('libp2p-pubsub:'), ...Reference.Message.encode({ from: peerIdBytes(peerIdAt(0)), data: signedMessage.data, seqno: signedMessage.seqno, topic: 'blocks' })])
  assert.deepEqual(gossipSigningBytes(signedMessage), expected)
})

test('a message we sign is valid to @libp2p/gossipsub under StrictSign', async () => {
  const unsigned: GossipMessage = { topic: 'blocks', data: bytesOf('from shoal'), from: peerIdAt(6), seqno: seqno(42) }
  const message = { ...unsigned, signature: await keys[6]!.sign(gossipSigningBytes(unsigned)) }
  const [raw] = Reference.decode(encodeGossip(rpc({ messages: [message] }))).messages
  assert.ok(raw !== undefined)
  const validation = await referenceSigning.validateToRawMessage('StrictSign', raw)
  assert.equal(validation.valid, true, validation.valid ? '' : validation.error)
  const tampered = await referenceSigning.validateToRawMessage('StrictSign', { ...raw, data: bytesOf('from someone else') })
  assert.equal(tampered.valid, false)
})

test('defaultMessageId is the source\'s peer id bytes then the seqno; @libp2p/gossipsub drops the identity multihash\'s header', async () => {
  const { raw, msg } = await referenceSignedMessage(bytesOf('x'))
  const [message] = decoded(Reference.encode({ subscriptions: [], messages: [raw] })).messages
  assert.ok(message !== undefined)
  const messageId = defaultMessageId(message)
  assert.ok(messageId !== undefined)
  assert.deepEqual(messageIdToBytes(messageId), new Uint8Array([...raw.from!, ...raw.seqno!]))
  // go-libp2p-pubsub's DefaultMsgIdFn is from + seqno, as here. @libp2p/gossipsub's
  // msgIdFnStrictSign uses the public key's protobuf instead: for an Ed25519 peer id, the
  // identity multihash without its two-byte header (code 0x00, length 0x24).
  const referenceId = referenceMessageIds.msgIdFnStrictSign(msg)
  assert.deepEqual(raw.from!.subarray(0, 2), Uint8Array.of(0x00, 0x24))
  assert.deepEqual(messageIdToBytes(messageId).subarray(2), referenceId)
  assert.deepEqual(messageIdToBytes(publicKeyMessageId(message)!), referenceId, 'publicKeyMessageId is js-libp2p\'s')
})

test('defaultMessageId is undefined without a source or a seqno', () => {
  assert.equal(defaultMessageId({ topic: 't', data: new Uint8Array(0), seqno: seqno(1) }), undefined)
  assert.equal(defaultMessageId({ topic: 't', data: new Uint8Array(0), from: peerIdAt(0) }), undefined)
  assert.equal(messageIdToBytes(defaultMessageId({ topic: 't', data: new Uint8Array(0), from: peerIdAt(0), seqno: new Uint8Array(0) })!).byteLength, 38)
})

// --- gossipRpcSize -------------------------------------------------------------------------

function assertSizeExact(original: GossipRpc, label: string): void {
  assert.equal(gossipRpcSize(original), encodeGossip(original).byteLength, label)
}

test('gossipRpcSize is the encoded size of every example', () => {
  for (const [name, original] of Object.entries(rpcs)) assertSizeExact(original, name)
})

test('gossipRpcSize is the encoded size where lengths cross varint boundaries', () => {
  for (const length of [0, 1, 126, 127, 128, 129, 16_250, 16_383, 16_384, 16_500, 2_097_152]) {
    assertSizeExact(rpc({ messages: [{ ...signedMessage, data: new Uint8Array(length) }] }), `data ${length}`)
    assertSizeExact(rpc({ messages: [{ topic: 't', data: new Uint8Array(0), key: new Uint8Array(Math.min(length, 2_000)) }] }), `key ${length}`)
  }
  for (const idCount of [0, 1, 50, 63, 64, 65, 2_000, 5_000]) {
    const ids = Array.from({ length: idCount }, (_, index) => id(`m${index}`))
    assertSizeExact(rpc({ control: control({ ihave: [{ topic: 'blocks', messageIds: ids }], iwant: ids, idontwant: ids }) }), `${idCount} ids`)
  }
  for (const peerCount of [0, 1, 2, 3, 4, 64]) {
    const peers = Array.from({ length: peerCount }, (_, index) => ({ peer: peerIdAt(index % peerIds.length), signedPeerRecord: new Uint8Array(index * 10) }))
    assertSizeExact(rpc({ control: control({ prune: [{ topic: 'blocks', peers, backoffSeconds: 60 }] }) }), `${peerCount} peers`)
  }
  for (const backoffSeconds of [0, 127, 128, 16_383, 16_384, 59.5, PRUNE_BACKOFF_SECONDS_MAX, 2 ** 40]) {
    assertSizeExact(rpc({ control: control({ prune: [{ topic: 'blocks', peers: [], backoffSeconds }] }) }), `backoff ${backoffSeconds}`)
  }
  for (const topic of ['', 'a', 'é', '€', '😀', 'x'.repeat(130), '\ud800', '\ud800x', '\udc00\ud800']) {
    assertSizeExact(rpc({
      subscriptions: [{ topic, subscribe: true }], messages: [{ topic, data: new Uint8Array(0) }],
      control: control({ ihave: [{ topic, messageIds: [] }], graft: [topic], prune: [{ topic, peers: [] }] }),
    }), `topic ${JSON.stringify(topic)}`)
  }
})

test('gossipRpcSize counts the simulator\'s synthetic peer ids as Ed25519 peer ids', () => {
  const withIds = (from: PeerId, peer: PeerId) => rpc({
    messages: [{ ...signedMessage, from }], control: control({ prune: [{ topic: 'blocks', peers: [{ peer }, { peer }] }] }),
  })
  assert.equal(gossipRpcSize(withIds(asPeerId('p123'), asPeerId('p7'))), encodeGossip(withIds(peerIdAt(0), peerIdAt(1))).byteLength)
})

test('a backoff with a fraction of a second is sent rounded up', () => {
  const sent = rpc({ control: control({ prune: [{ topic: 'blocks', peers: [], backoffSeconds: 59.2 }] }) })
  assert.equal(decoded(encodeGossip(sent)).control?.prune[0]?.backoffSeconds, 60)
})

// --- malformed and hostile input ---------------------------------------------------------

const wireMessage = (fields: Partial<MessageFrame> = {}): MessageFrame => ({ topic: 'blocks', data: new Uint8Array(1), ...fields })
const wireControl = (fields: Partial<ControlFrame>): ControlFrame => ({ ihave: [], iwant: [], graft: [], prune: [], idontwant: [], ...fields })
const wireIds = (count: number): Uint8Array<ArrayBuffer>[] => Array.from({ length: count }, () => new Uint8Array(1))
const repeat = <T>(count: number, make: () => T): T[] => Array.from({ length: count }, make)

test('truncated frames are rejected as malformed or, cut between fields, read as the shorter RPC', () => {
  const valid = encodeGossip(rpcs['everything at once']!)
  for (let length = 0; length < valid.byteLength; length++) {
    const result = decodeGossip(valid.subarray(0, length))
    assert.ok(result.ok || result.error.code === 'malformed', `truncated at ${length}: ${result.ok ? '' : result.error.code}`)
  }
  assert.equal(rejectionCode(valid.subarray(0, valid.byteLength - 1)), 'malformed')
})

test('garbage and trailing bytes are rejected as malformed', () => {
  const valid = encodeGossip(rpcs['a signed message']!)
  assert.equal(rejectionCode(Uint8Array.of(...valid, 0x0a)), 'malformed')
  assert.equal(rejectionCode(Uint8Array.of(...valid, 0x1a, 0x05, 0x01)), 'malformed')
  assert.equal(rejectionCode(Uint8Array.of(...valid, 0x1a, 0x02, 0x12, 0x09)), 'malformed')
  assert.equal(rejectionCode(new Uint8Array(11).fill(0xff)), 'malformed')
  assert.equal(rejectionCode(Uint8Array.of(0x0f)), 'malformed')
  // Nested start-group tags on an unknown field: protons skips them by recursion.
  assert.equal(rejectionCode(new Uint8Array(GOSSIP_LIMITS.frameBytesMax).fill(0x23)), 'malformed')
})

test('random bytes are read or rejected, never thrown', () => {
  let state = 0x9e3779b9
  const next = () => (state = Math.imul(state ^ state >>> 15, 0x2c1b3c6d) + 0x6d2b79f5 >>> 0) & 255
  for (let round = 0; round < 2_000; round++) {
    const bytes = Uint8Array.from({ length: next() }, next)
    assert.doesNotThrow(() => decodeGossip(bytes))
  }
})

test('an empty frame is an empty RPC; fields from future versions are skipped', () => {
  assert.deepEqual(decoded(new Uint8Array(0)), rpc({}))
  // RPC field 9 (a varint, then bytes) and control field 6, as extensions of later versions add.
  const graft = RpcFrame.encode({ control: wireControl({ graft: [{ topicID: 'a' }] }) })
  const future = Uint8Array.of(0x48, 0x01, 0x4a, 0x01, 0x00, 0x1a, graft[1]! + 4, 0x32, 0x02, 0x08, 0x01, ...graft.subarray(2))
  assert.deepEqual(decoded(future), rpc({ control: control({ graft: ['a'] }) }))
})

test('frames over the bound are rejected before they are read', () => {
  assert.equal(rejectionCode(new Uint8Array(GOSSIP_LIMITS.frameBytesMax + 1)), 'frame-too-large')
})

test('lists over their bound are rejected with their own codes; lists at their bound are read', () => {
  const cases: [string, keyof typeof GOSSIP_LIMITS, (count: number) => Partial<RpcFrame>][] = [
    ['too-many-subscriptions', 'subscriptionsPerRpcMax', (count) => ({ subscriptions: repeat(count, () => ({ subscribe: true, topicid: 'a' })) })],
    ['too-many-messages', 'messagesPerRpcMax', (count) => ({ publish: repeat(count, () => wireMessage()) })],
    ['too-many-ihave-entries', 'ihavePerRpcMax', (count) => ({ control: wireControl({ ihave: repeat(count, () => ({ topicID: 'a', messageIDs: [] })) }) })],
    ['too-many-iwant-entries', 'iwantPerRpcMax', (count) => ({ control: wireControl({ iwant: repeat(count, () => ({ messageIDs: [] })) }) })],
    ['too-many-grafts', 'graftPerRpcMax', (count) => ({ control: wireControl({ graft: repeat(count, () => ({ topicID: 'a' })) }) })],
    ['too-many-prunes', 'prunePerRpcMax', (count) => ({ control: wireControl({ prune: repeat(count, () => ({ topicID: 'a', peers: [] })) }) })],
    ['too-many-idontwant-entries', 'idontwantPerRpcMax', (count) => ({ control: wireControl({ idontwant: repeat(count, () => ({ messageIDs: [] })) }) })],
    ['too-many-message-ids', 'messageIdsPerRpcMax', (count) => ({ control: wireControl({ ihave: [{ topicID: 'a', messageIDs: wireIds(count) }] }) })],
    ['too-many-message-ids', 'messageIdsPerRpcMax', (count) => ({ control: wireControl({ iwant: [{ messageIDs: wireIds(count) }] }) })],
    ['too-many-message-ids', 'messageIdsPerRpcMax', (count) => ({ control: wireControl({ idontwant: [{ messageIDs: wireIds(count) }] }) })],
    ['too-many-prune-peers', 'prunePeersMax', (count) => ({ control: wireControl({ prune: [{ topicID: 'a', peers: repeat(count, () => ({ peerID: Uint8Array.of(1) })) }] }) })],
  ]
  for (const [code, limit, frame] of cases) {
    const bound = GOSSIP_LIMITS[limit]
    assert.ok(decodeGossip(RpcFrame.encode(frame(bound))).ok, `${limit} at its bound`)
    assert.equal(rejectionCode(RpcFrame.encode(frame(bound + 1))), code, `${limit} over its bound`)
  }
})

test('ids are bounded across all the entries of a kind, before any is read', () => {
  const max = GOSSIP_LIMITS.messageIdsPerRpcMax
  // Entries within their own bounds, together over the RPC's: 5 × 1,001 IHAVE ids, 2 × 2,501 IWANT ids.
  const ihave = (perEntry: number) => repeat(5, () => ({ topicID: 'a', messageIDs: wireIds(perEntry) }))
  assert.ok(decodeGossip(RpcFrame.encode({ control: wireControl({ ihave: ihave(max / 5) }) })).ok)
  assert.deepEqual(decodeGossip(RpcFrame.encode({ control: wireControl({ ihave: ihave(max / 5 + 1) }) })), { ok: false, error: { code: 'too-many-message-ids', detail: `ihave: over ${max} ids` } })
  for (const kind of ['iwant', 'idontwant'] as const) {
    assert.ok(decodeGossip(RpcFrame.encode({ control: wireControl({ [kind]: [{ messageIDs: wireIds(max / 2) }, { messageIDs: wireIds(max / 2) }] }) })).ok, kind)
    const over = RpcFrame.encode({ control: wireControl({ [kind]: [{ messageIDs: wireIds(max / 2) }, { messageIDs: wireIds(max / 2 + 1) }] }) })
    // The detail names the kind only when the ids were counted before protons read them.
    assert.deepEqual(decodeGossip(over), { ok: false, error: { code: 'too-many-message-ids', detail: `${kind}: over ${max} ids` } })
  }
  // Each kind has its own budget: the full amount of each, in one RPC, is read.
  const full = wireControl({ ihave: ihave(max / 5), iwant: [{ messageIDs: wireIds(max) }], idontwant: [{ messageIDs: wireIds(max) }] })
  assert.ok(decodeGossip(RpcFrame.encode({ control: full })).ok)
  // A second control field is read by protons in place of the first; its ids still count.
  const twice = Uint8Array.of(...RpcFrame.encode({ control: wireControl({ iwant: [{ messageIDs: wireIds(max) }] }) }), ...RpcFrame.encode({ control: wireControl({ iwant: [{ messageIDs: wireIds(1) }] }) }))
  assert.equal(rejectionCode(twice), 'too-many-message-ids')
})

test('topics, ids, data, seqnos, signatures, keys and peer records over their bounds are rejected with their own codes', () => {
  const { topicBytesMax, messageIdBytesMax, messageDataBytesMax, seqnoBytesMax, signatureBytesMax, keyBytesMax, signedPeerRecordBytesMax } = GOSSIP_LIMITS
  const topicFrames = (topicid: string): Partial<RpcFrame>[] => [
    { subscriptions: [{ subscribe: true, topicid }] },
    { publish: [wireMessage({ topic: topicid })] },
    { control: wireControl({ ihave: [{ topicID: topicid, messageIDs: [] }] }) },
    { control: wireControl({ graft: [{ topicID: topicid }] }) },
    { control: wireControl({ prune: [{ topicID: topicid, peers: [] }] }) },
  ]
  for (const [topic, tooLong] of [['x'.repeat(topicBytesMax), false], ['x'.repeat(topicBytesMax + 1), true], ['é'.repeat(topicBytesMax / 2), false], ['é'.repeat(topicBytesMax / 2 + 1), true], ['€'.repeat(86), true]] as const) {
    for (const frame of topicFrames(topic)) assert.equal(rejectionCode(RpcFrame.encode(frame)), tooLong ? 'topic-too-long' : undefined, `${topic.length} × ${topic[0]}`)
  }
  const bytes = (length: number) => new Uint8Array(length)
  const idFrames = (messageID: Uint8Array<ArrayBuffer>): Partial<RpcFrame>[] => [
    { control: wireControl({ ihave: [{ topicID: 'a', messageIDs: [messageID] }] }) },
    { control: wireControl({ iwant: [{ messageIDs: [messageID] }] }) },
    { control: wireControl({ idontwant: [{ messageIDs: [messageID] }] }) },
  ]
  for (const frame of idFrames(bytes(messageIdBytesMax))) assert.ok(decodeGossip(RpcFrame.encode(frame)).ok)
  for (const frame of idFrames(bytes(messageIdBytesMax + 1))) assert.equal(rejectionCode(RpcFrame.encode(frame)), 'message-id-too-long')
  const fields: [string, keyof MessageFrame, number][] = [
    ['message-too-large', 'data', messageDataBytesMax], ['seqno-too-long', 'seqno', seqnoBytesMax],
    ['signature-too-long', 'signature', signatureBytesMax], ['key-too-long', 'key', keyBytesMax],
  ]
  for (const [code, field, bytesMax] of fields) {
    assert.ok(decodeGossip(RpcFrame.encode({ publish: [wireMessage({ [field]: bytes(bytesMax) })] })).ok, field)
    assert.equal(rejectionCode(RpcFrame.encode({ publish: [wireMessage({ [field]: bytes(bytesMax + 1) })] })), code, field)
  }
  const record = (length: number) => RpcFrame.encode({ control: wireControl({ prune: [{ topicID: 'a', peers: [{ peerID: Uint8Array.of(1), signedPeerRecord: bytes(length) }] }] }) })
  assert.ok(decodeGossip(record(signedPeerRecordBytesMax)).ok)
  assert.equal(rejectionCode(record(signedPeerRecordBytesMax + 1)), 'signed-peer-record-too-long')
})

const badPeerIds: Uint8Array<ArrayBuffer>[] = [
  new Uint8Array(0),
  Uint8Array.of(1, 2, 3),
  Uint8Array.of(0x00, 0x04, 1, 2, 3, 4),
  new Uint8Array(identity.digest(new Uint8Array(GOSSIP_LIMITS.peerIdBytesMax)).bytes),
  new Uint8Array(identity.digest(bytesOf('https://example.com')).bytes),
]

test('a message whose source is not a peer id is read with the defect bad-from and no source', () => {
  for (const from of badPeerIds) {
    const [message] = decoded(RpcFrame.encode({ publish: [wireMessage({ from, seqno: new Uint8Array(8) })] })).messages
    assert.deepEqual(message, { topic: 'blocks', data: new Uint8Array(1), seqno: new Uint8Array(8), defect: 'bad-from' })
  }
})

test('a message without topic or data is read with topic \'\' and empty data', () => {
  assert.deepEqual(decoded(RpcFrame.encode({ publish: [{ topic: '' }] })).messages, [{ topic: '', data: new Uint8Array(0) }])
})

test('a subscription without its flag is an unsubscription, and without its topic has topic \'\'', () => {
  assert.deepEqual(decoded(RpcFrame.encode({ subscriptions: [{ topicid: 'a' }, { subscribe: true }] })).subscriptions, [{ topic: 'a', subscribe: false }, { topic: '', subscribe: true }])
})

test('PRUNE peers whose id is not a peer id are skipped, the others kept in order', () => {
  const peers = [{ peerID: new Uint8Array(peerIdBytes(peerIdAt(1))) }, ...badPeerIds.map((peerID) => ({ peerID })), {}, { peerID: new Uint8Array(peerIdBytes(peerIdAt(2))), signedPeerRecord: Uint8Array.of(5) }]
  assert.deepEqual(decoded(RpcFrame.encode({ control: wireControl({ prune: [{ topicID: 'a', peers }] }) })).control?.prune, [
    { topic: 'a', peers: [{ peer: peerIdAt(1) }, { peer: peerIdAt(2), signedPeerRecord: Uint8Array.of(5) }] },
  ])
})

test('a backoff beyond a day is read as a day; a backoff of 2⁶⁴ − 1 too', () => {
  const backoff = (value: bigint) => decoded(RpcFrame.encode({ control: wireControl({ prune: [{ topicID: 'a', peers: [], backoff: value }] }) })).control?.prune[0]?.backoffSeconds
  assert.equal(backoff(60n), 60)
  assert.equal(backoff(BigInt(PRUNE_BACKOFF_SECONDS_MAX + 1)), PRUNE_BACKOFF_SECONDS_MAX)
  assert.equal(backoff(2n ** 64n - 1n), PRUNE_BACKOFF_SECONDS_MAX)
})

test('decoded data, seqnos, signatures, keys and peer records do not share the frame\'s buffer', () => {
  const original = rpcs['everything at once']!
  const frame = encodeGossip(original)
  const result = decoded(frame)
  frame.fill(0)
  assert.deepEqual(result, original)
})
