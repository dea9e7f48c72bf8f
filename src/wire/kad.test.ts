import assert from 'node:assert/strict'
import { test } from 'node:test'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey, peerIdFromString } from '@libp2p/peer-id'
import { multiaddr } from '@multiformats/multiaddr'
import { identity } from 'multiformats/hashes/identity'
import { KAD_LIMITS, type KadConnection, type KadMessage, type KadMessageType, type KadPeer } from '../core/kad/messages.ts'
import { asPeerId, type PeerId } from '../core/sans-io.ts'
import {
  ADDRESSES_PER_PEER_HARD_MAX, decodeKad, encodeKad, KAD_PROTOCOL_DEFAULT, KAD_PROTOCOL_PUBLIC, kadCodec, kadMessageSize, TIME_RECEIVED_LENGTH_MAX,
} from './kad.ts'
import { Message as KadFrame, type Record as KadFrameRecord } from './proto/kad.ts'
// Only the types: the reference's generated codec is not among the package's exports, so it
// is loaded at run time by its path beside the package's entry point.
import type * as Reference from '../../node_modules/@libp2p/kad-dht/dist/src/message/dht.js'

const reference = await import(new URL('./message/dht.js', import.meta.resolve('@libp2p/kad-dht')).href) as typeof Reference

async function ed25519PeerId(): Promise<PeerId> {
  return asPeerId(peerIdFromPrivateKey(await generateKeyPair('Ed25519')).toString())
}

const peerIds = await Promise.all(Array.from({ length: 60 }, ed25519PeerId))
const secp256k1PeerId = asPeerId(peerIdFromPrivateKey(await generateKeyPair('secp256k1')).toString())
const rsaPeerId = asPeerId('QmYyQSo1c1Ym7orWxLYvCrM2EmxFTANf8wXmmE7DWjhx5N')

function peerIdAt(index: number): PeerId {
  const id = peerIds[index]
  assert.ok(id !== undefined)
  return id
}

function peerIdBytes(id: PeerId): Uint8Array<ArrayBuffer> {
  return new Uint8Array(peerIdFromString(id).toMultihash().bytes)
}

function ip4(index: number): string {
  return `/ip4/10.${index >> 8 & 255}.${index & 255}.1/tcp/${4001 + index}`
}

function peer(index: number, addressCount = 1, connection: KadConnection = 'not-connected'): KadPeer {
  return { id: peerIdAt(index), addresses: Array.from({ length: addressCount }, (_, address) => ip4(index * 16 + address)), connection }
}

function message(type: KadMessageType, fields: Partial<KadMessage> = {}): KadMessage {
  return { type, key: new Uint8Array(0), record: undefined, closerPeers: [], providerPeers: [], ...fields }
}

const bytesOf = (text: string): Uint8Array => new TextEncoder().encode(text)
const record = { key: bytesOf('/ipns/key'), value: bytesOf('a signed IPNS record'), timeReceived: '2024-05-01T12:00:00.000Z' }
const cidKey = Uint8Array.of(0x12, 0x20, ...new Uint8Array(32).fill(7))

/** One of each request and response the DHT sends, on real peer ids and multiaddrs. */
const messages: KadMessage[] = [
  message('PING'),
  message('FIND_NODE', { key: peerIdBytes(peerIdAt(1)) }),
  message('FIND_NODE', { key: peerIdBytes(peerIdAt(1)), closerPeers: [peer(2, 2, 'connected'), peer(3, 0, 'can-connect'), peer(4, 1, 'cannot-connect')] }),
  message('GET_VALUE', { key: record.key }),
  message('GET_VALUE', { key: record.key, record, closerPeers: [peer(5)] }),
  message('PUT_VALUE', { key: record.key, record }),
  message('PUT_VALUE', { key: record.key, record: { key: record.key, value: new Uint8Array(0), timeReceived: '' } }),
  message('ADD_PROVIDER', { key: cidKey, providerPeers: [peer(6, 3)] }),
  message('GET_PROVIDERS', { key: cidKey }),
  message('GET_PROVIDERS', {
    key: cidKey,
    providerPeers: [peer(7, 2, 'connected'), { id: secp256k1PeerId, addresses: ['/ip6/::1/tcp/4001', '/dns4/example.com/tcp/443/wss'], connection: 'not-connected' }],
    closerPeers: [{ id: rsaPeerId, addresses: ['/ip4/1.2.3.4/udp/4001/quic-v1'], connection: 'connected' }, peer(8)],
  }),
]

test('the codec carries the protocol it is given, and the frame bound of KAD_LIMITS', () => {
  for (const protocol of [KAD_PROTOCOL_DEFAULT, KAD_PROTOCOL_PUBLIC]) {
    const codec = kadCodec(protocol)
    assert.equal(codec.protocol, protocol)
    assert.equal(codec.frameBytesMax, KAD_LIMITS.frameBytesMax)
    assert.deepEqual(codec.decode(codec.encode(messages[2]!)), { ok: true, value: messages[2] })
  }
})

test('every message type survives a round trip', () => {
  for (const original of messages) assert.deepEqual(decodeKad(encodeKad(original)), { ok: true, value: original })
})

// --- interoperability with @libp2p/kad-dht's own protobuf -------------------------------

const REFERENCE_CONNECTIONS: Record<KadConnection, Reference.ConnectionType> = {
  'not-connected': reference.ConnectionType.NOT_CONNECTED,
  'connected': reference.ConnectionType.CONNECTED,
  'can-connect': reference.ConnectionType.CAN_CONNECT,
  'cannot-connect': reference.ConnectionType.CANNOT_CONNECT,
}

// Leaves out what proto3 leaves out, so that both sides must write the same bytes.
function toReference(original: KadMessage): Reference.Message {
  const referencePeer = ({ id, addresses, connection }: KadPeer): Reference.PeerInfo => ({
    id: peerIdBytes(id),
    multiaddrs: addresses.map((address) => multiaddr(address).bytes),
    ...(connection === 'not-connected' ? {} : { connection: REFERENCE_CONNECTIONS[connection] }),
  })
  const nonEmpty = <T extends { byteLength: number } | string>(value: T): T | undefined => (typeof value === 'string' ? value.length : value.byteLength) > 0 ? value : undefined
  return {
    type: reference.MessageType[original.type],
    key: nonEmpty(original.key),
    record: original.record && reference.Record.encode({
      key: nonEmpty(original.record.key),
      value: nonEmpty(original.record.value),
      timeReceived: nonEmpty(original.record.timeReceived),
    }),
    closer: original.closerPeers.map(referencePeer),
    providers: original.providerPeers.map(referencePeer),
  }
}

function fromReference(decoded: Reference.Message): KadMessage {
  const kadPeer = ({ id, multiaddrs, connection }: Reference.PeerInfo): KadPeer => ({
    id: knownPeerId(id),
    addresses: multiaddrs.map((bytes) => multiaddr(bytes).toString()),
    connection: (Object.keys(REFERENCE_CONNECTIONS) as KadConnection[]).find((name) => REFERENCE_CONNECTIONS[name] === connection) ?? 'not-connected',
  })
  const decodedRecord = decoded.record && reference.Record.decode(decoded.record)
  return {
    type: decoded.type as KadMessageType,
    key: decoded.key ?? new Uint8Array(0),
    record: decodedRecord && {
      key: decodedRecord.key ?? new Uint8Array(0),
      value: decodedRecord.value ?? new Uint8Array(0),
      timeReceived: decodedRecord.timeReceived ?? '',
    },
    closerPeers: decoded.closer.map(kadPeer),
    providerPeers: decoded.providers.map(kadPeer),
  }
}

// Found by comparing bytes, so that this side does not share the codec's conversion.
function knownPeerId(bytes: Uint8Array): PeerId {
  const match = [...peerIds, secp256k1PeerId, rsaPeerId].find((id) => Buffer.from(peerIdBytes(id)).equals(bytes))
  assert.ok(match !== undefined, 'an id the test did not make')
  return match
}

test('the reference implementation writes the same bytes for every message', () => {
  for (const original of messages) {
    assert.deepEqual(encodeKad(original), reference.Message.encode(toReference(original)), original.type)
  }
})

test('what the reference implementation writes, we read; and what we write, it reads', () => {
  for (const original of messages) {
    assert.deepEqual(decodeKad(reference.Message.encode(toReference(original))), { ok: true, value: original })
    assert.deepEqual(fromReference(reference.Message.decode(encodeKad(original))), original)
  }
})

test('what the reference writes beyond the spec is read: explicit defaults, cluster level, record author and signature', () => {
  const written = reference.Message.encode({
    type: reference.MessageType.GET_VALUE,
    clusterLevel: 3,
    key: new Uint8Array(0),
    record: reference.Record.encode({ key: record.key, value: record.value, author: Uint8Array.of(1, 2), signature: Uint8Array.of(3, 4), timeReceived: '' }),
    closer: [{ id: peerIdBytes(peerIdAt(9)), multiaddrs: [], connection: reference.ConnectionType.NOT_CONNECTED }],
    providers: [],
  })
  assert.deepEqual(decodeKad(written), {
    ok: true,
    value: message('GET_VALUE', { record: { ...record, timeReceived: '' }, closerPeers: [peer(9, 0)] }),
  })
})

// --- kadMessageSize ------------------------------------------------------------------------

function assertSizeExact(original: KadMessage): void {
  assert.equal(kadMessageSize(original), encodeKad(original).byteLength, `${original.type}, key ${original.key.byteLength}, value ${original.record?.value.byteLength}`)
}

test('kadMessageSize is the encoded size, for every message type with and without record and peers', () => {
  const types: KadMessageType[] = ['PUT_VALUE', 'GET_VALUE', 'ADD_PROVIDER', 'GET_PROVIDERS', 'FIND_NODE', 'PING']
  const connections: KadConnection[] = ['not-connected', 'connected', 'can-connect', 'cannot-connect']
  for (const type of types) {
    for (const withRecord of [false, true]) {
      for (const peerCount of [0, 1, 20]) {
        const peers = Array.from({ length: peerCount }, (_, index) => peer(index, index % 10, connections[index % 4]))
        assertSizeExact(message(type, { key: cidKey, record: withRecord ? record : undefined, closerPeers: peers }))
        assertSizeExact(message(type, { record: withRecord ? record : undefined, providerPeers: peers, closerPeers: peers.slice(0, 3) }))
      }
    }
  }
})

test('kadMessageSize is the encoded size where lengths cross varint boundaries', () => {
  for (const length of [0, 1, 126, 127, 128, 129, 256]) {
    assertSizeExact(message('GET_VALUE', { key: new Uint8Array(length) }))
    assertSizeExact(message('PUT_VALUE', { record: { key: new Uint8Array(length), value: new Uint8Array(0), timeReceived: '' } }))
  }
  // The record's own length crosses 127/128 and 16383/16384.
  for (let length = 118; length <= 132; length++) {
    assertSizeExact(message('PUT_VALUE', { key: record.key, record: { key: new Uint8Array(0), value: new Uint8Array(length), timeReceived: '' } }))
  }
  for (let length = 16_370; length <= KAD_LIMITS.valueBytesMax; length++) {
    assertSizeExact(message('PUT_VALUE', { record: { key: new Uint8Array(0), value: new Uint8Array(length), timeReceived: '' } }))
  }
  // A peer entry's length crosses 127/128 at nine addresses.
  for (let addressCount = 0; addressCount <= 12; addressCount++) assertSizeExact(message('FIND_NODE', { closerPeers: [peer(1, addressCount, 'connected')] }))
  for (const timeReceived of ['', 'a', 'é', '€', '😀', 'x'.repeat(130), '\ud800', '\ud800x', '\udc00\ud800']) {
    assertSizeExact(message('PUT_VALUE', { record: { ...record, timeReceived } }))
  }
})

test('kadMessageSize accepts the simulator\'s synthetic peer ids and empty address lists', () => {
  const synthetic = message('FIND_NODE', { key: cidKey, closerPeers: [{ id: asPeerId('p123'), addresses: [], connection: 'not-connected' }] })
  assert.equal(kadMessageSize(synthetic), 1 + 1 + (2 + cidKey.byteLength) + (2 + 40))
})

// --- malformed and hostile input ---------------------------------------------------------

function rejectionCode(bytes: Uint8Array): string | undefined {
  const result = decodeKad(bytes)
  return result.ok ? undefined : result.error.code
}

function decoded(bytes: Uint8Array): KadMessage {
  const result = decodeKad(bytes)
  assert.ok(result.ok, result.ok ? '' : `${result.error.code}: ${result.error.detail}`)
  return result.value
}

function wirePeer(id: Uint8Array<ArrayBuffer>, addrs: Uint8Array<ArrayBuffer>[] = [], connection = 0): KadFrame.Peer {
  return { id, addrs, connection }
}

const validPeers = (count: number): KadFrame.Peer[] => Array.from({ length: count }, (_, index) => wirePeer(peerIdBytes(peerIdAt(index))))

test('truncated frames are rejected as malformed or, cut between fields, read as the shorter message', () => {
  const valid = encodeKad(messages[9]!)
  for (let length = 0; length < valid.byteLength; length++) {
    const result = decodeKad(valid.subarray(0, length))
    assert.ok(result.ok || result.error.code === 'malformed', `truncated at ${length}: ${result.ok ? '' : result.error.code}`)
  }
  assert.equal(rejectionCode(valid.subarray(0, valid.byteLength - 1)), 'malformed')
})

test('garbage and trailing bytes are rejected as malformed', () => {
  const valid = encodeKad(messages[4]!)
  assert.equal(rejectionCode(Uint8Array.of(...valid, 0x0a)), 'malformed')
  assert.equal(rejectionCode(Uint8Array.of(...valid, 0x12, 0x05, 0x01)), 'malformed')
  assert.equal(rejectionCode(new Uint8Array(11).fill(0xff)), 'malformed')
  assert.equal(rejectionCode(Uint8Array.of(0x0f)), 'malformed')
  // Nested start-group tags on an unknown field: protons skips them by recursion.
  assert.equal(rejectionCode(new Uint8Array(KAD_LIMITS.frameBytesMax).fill(0x23)), 'malformed')
})

test('an empty frame is a PUT_VALUE with nothing in it, as in proto3', () => {
  assert.deepEqual(decoded(new Uint8Array(0)), message('PUT_VALUE'))
})

test('frames, keys, values and times over their bounds are rejected with their own codes', () => {
  assert.equal(rejectionCode(new Uint8Array(KAD_LIMITS.frameBytesMax + 1)), 'frame-too-large')
  const key = (length: number) => new Uint8Array(length)
  assert.ok(decodeKad(KadFrame.encode({ type: 1, key: key(KAD_LIMITS.keyBytesMax) })).ok)
  assert.equal(rejectionCode(KadFrame.encode({ type: 1, key: key(KAD_LIMITS.keyBytesMax + 1) })), 'key-too-large')
  const wireRecord = (fields: Partial<KadFrameRecord>) => KadFrame.encode({ record: { key: key(1), value: key(1), timeReceived: '', ...fields } })
  assert.ok(decodeKad(wireRecord({ key: key(KAD_LIMITS.keyBytesMax), value: key(KAD_LIMITS.valueBytesMax), timeReceived: 'x'.repeat(TIME_RECEIVED_LENGTH_MAX) })).ok)
  assert.equal(rejectionCode(wireRecord({ key: key(KAD_LIMITS.keyBytesMax + 1) })), 'record-key-too-large')
  assert.equal(rejectionCode(wireRecord({ value: key(KAD_LIMITS.valueBytesMax + 1) })), 'value-too-large')
  assert.equal(rejectionCode(wireRecord({ timeReceived: 'x'.repeat(TIME_RECEIVED_LENGTH_MAX + 1) })), 'time-received-too-long')
})

test('a message type outside the spec is rejected; an unknown connection type reads as not-connected', () => {
  assert.equal(rejectionCode(KadFrame.encode({ type: 6 })), 'bad-message-type')
  assert.equal(rejectionCode(KadFrame.encode({ type: -1 })), 'bad-message-type')
  const unknownConnection = decoded(KadFrame.encode({ type: 4, closerPeers: [wirePeer(peerIdBytes(peerIdAt(0)), [], 9)] }))
  assert.deepEqual(unknownConnection.closerPeers, [peer(0, 0)])
})

test('a list over the hard bound is rejected while it is read', () => {
  assert.equal(rejectionCode(KadFrame.encode({ type: 4, closerPeers: Array.from({ length: 300 }, () => wirePeer(Uint8Array.of(0))) })), 'too-many-peers')
  assert.equal(rejectionCode(KadFrame.encode({ type: 3, providerPeers: Array.from({ length: KAD_LIMITS.peersPerListHardMax + 1 }, () => wirePeer(Uint8Array.of(0))) })), 'too-many-peers')
  const manyAddresses = Array.from({ length: ADDRESSES_PER_PEER_HARD_MAX + 1 }, () => multiaddr(ip4(1)).bytes)
  assert.equal(rejectionCode(KadFrame.encode({ type: 4, closerPeers: [wirePeer(peerIdBytes(peerIdAt(0)), manyAddresses)] })), 'too-many-addresses')
})

test('a long list is truncated to peersPerListMax and the rest counted as dropped', () => {
  const result = decoded(KadFrame.encode({ type: 4, closerPeers: validPeers(50) }))
  assert.deepEqual(result.closerPeers, Array.from({ length: KAD_LIMITS.peersPerListMax }, (_, index) => peer(index, 0)))
  assert.equal(result.peersDropped, 30)
  const atHardBound = decoded(KadFrame.encode({ type: 3, providerPeers: Array.from({ length: KAD_LIMITS.peersPerListHardMax }, () => wirePeer(Uint8Array.of(0))) }))
  assert.equal(atHardBound.providerPeers.length, 0)
  assert.equal(atHardBound.peersDropped, KAD_LIMITS.peersPerListHardMax)
})

test('peers whose id is not a libp2p peer id are dropped and counted; valid peers take their place', () => {
  const garbage = [
    Uint8Array.of(1, 2, 3),
    new Uint8Array(0),
    Uint8Array.of(0x00, 0x04, 1, 2, 3, 4),
    new Uint8Array(identity.digest(new Uint8Array(KAD_LIMITS.peerIdBytesMax)).bytes),
    new Uint8Array(identity.digest(bytesOf('https://example.com')).bytes),
  ]
  const closerPeers = [...validPeers(2), ...garbage.map((id) => wirePeer(id)), ...validPeers(20).slice(2)]
  const result = decoded(KadFrame.encode({ type: 4, closerPeers, providerPeers: [wirePeer(Uint8Array.of(9)), ...validPeers(1)] }))
  assert.deepEqual(result.closerPeers, Array.from({ length: 20 }, (_, index) => peer(index, 0)))
  assert.deepEqual(result.providerPeers, [peer(0, 0)])
  assert.equal(result.peersDropped, garbage.length + 1)
})

test('addresses that are not multiaddrs, oversize or past addressesPerPeerMax are dropped without a trace', () => {
  const valid = (index: number) => multiaddr(ip4(index)).bytes
  const oversize = multiaddr(`/dns4/${'a'.repeat(KAD_LIMITS.addressBytesMax)}/tcp/1`).bytes
  const addrs = [Uint8Array.of(0xff, 0xff), valid(0), new Uint8Array(0), Uint8Array.of(0x04, 1, 2), oversize, Uint8Array.of(0x01, 0x02, 0x03), ...Array.from({ length: 10 }, (_, index) => valid(index + 1))]
  const result = decoded(KadFrame.encode({ type: 4, closerPeers: [wirePeer(peerIdBytes(peerIdAt(0)), addrs)] }))
  assert.deepEqual(result.closerPeers, [{ id: peerIdAt(0), addresses: Array.from({ length: KAD_LIMITS.addressesPerPeerMax }, (_, index) => ip4(index)), connection: 'not-connected' }])
  assert.equal(result.peersDropped, undefined)
})

test('decoded keys and records do not share the frame\'s buffer', () => {
  const frame = encodeKad(messages[4]!)
  const result = decoded(frame)
  frame.fill(0)
  assert.deepEqual(result, messages[4])
})
