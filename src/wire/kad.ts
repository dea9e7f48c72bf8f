/**
 * The codec of the DHT (/shoal/kad/1.0.0, or /ipfs/kad/1.0.0 on the public network): one
 * protobuf Message of the libp2p kad-dht spec per frame (proto/kad.proto). net/ frames
 * streams with it; sim/ accounts message sizes with kadMessageSize, since its peer ids are
 * synthetic names that have no wire form.
 *
 * Decoding never throws and obeys KAD_LIMITS. What it refuses, with the error's code:
 *   frame-too-large         the frame is over KAD_LIMITS.frameBytesMax
 *   malformed               not a protobuf Message (truncated, bad varint, bad wire type, ...)
 *   too-many-peers          a peer list is over KAD_LIMITS.peersPerListHardMax
 *   too-many-addresses      one peer is over ADDRESSES_PER_PEER_HARD_MAX addresses
 *   bad-message-type        the type is not one of the spec's six
 *   key-too-large           the key is over KAD_LIMITS.keyBytesMax
 *   record-key-too-large    the record's key is over KAD_LIMITS.keyBytesMax
 *   value-too-large         the record's value is over KAD_LIMITS.valueBytesMax
 *   time-received-too-long  the record's timeReceived is over TIME_RECEIVED_LENGTH_MAX characters
 * What it trims and keeps going: peers past KAD_LIMITS.peersPerListMax and peers whose id is
 * not a libp2p peer id (counted in peersDropped); addresses that are not multiaddrs, are over
 * KAD_LIMITS.addressBytesMax or past KAD_LIMITS.addressesPerPeerMax (silently); an unknown
 * connection type (read as 'not-connected'). Whether a PUT_VALUE's record key matches its key
 * is the core's to check: it is protocol, not framing.
 */
import { peerIdFromMultihash, peerIdFromString } from '@libp2p/peer-id'
import { multiaddr } from '@multiformats/multiaddr'
import * as Digest from 'multiformats/hashes/digest'
import { KAD_LIMITS, type KadConnection, type KadMessage, type KadMessageType, type KadPeer } from '../core/kad/messages.ts'
import { asPeerId, type DecodeResult, type PeerId, type WireCodec, wireError } from '../core/sans-io.ts'
import { Message as KadFrame } from './proto/kad.ts'
import { lengthDelimitedSize, utf8Bytes, varintBytes } from './protobuf-size.ts'

export const KAD_PROTOCOL_DEFAULT = '/shoal/kad/1.0.0'
export const KAD_PROTOCOL_PUBLIC = '/ipfs/kad/1.0.0'

/**
 * Addresses read for one peer before the message is refused. Well above addressesPerPeerMax
 * (the number kept) because public nodes advertise a dozen or more transports, and refusing
 * their messages would cost more than skipping the surplus.
 */
export const ADDRESSES_PER_PEER_HARD_MAX = 64
export const TIME_RECEIVED_LENGTH_MAX = 64

/** kadMessageSize's stand-ins: an Ed25519 identity-multihash peer id and /ip4/a.b.c.d/tcp/port. */
export const NOMINAL_PEER_ID_BYTES = 38
export const NOMINAL_ADDRESS_BYTES = 8

// Indexed by their values on the wire.
const MESSAGE_TYPES: readonly KadMessageType[] = ['PUT_VALUE', 'GET_VALUE', 'ADD_PROVIDER', 'GET_PROVIDERS', 'FIND_NODE', 'PING']
const CONNECTIONS: readonly KadConnection[] = ['not-connected', 'connected', 'can-connect', 'cannot-connect']

// protons checks these while it reads, so a frame listing thousands of peers is refused
// before they are materialised.
const PEER_LIMITS = { addrs: ADDRESSES_PER_PEER_HARD_MAX }
const DECODE_LIMITS = {
  closerPeers: KAD_LIMITS.peersPerListHardMax,
  closerPeers$: PEER_LIMITS,
  providerPeers: KAD_LIMITS.peersPerListHardMax,
  providerPeers$: PEER_LIMITS,
}

export function kadCodec(protocol: string): WireCodec<KadMessage> {
  return { protocol, frameBytesMax: KAD_LIMITS.frameBytesMax, encode: encodeKad, decode: decodeKad }
}

/**
 * The spec's wire form, proto3 defaults omitted. Peer ids must be libp2p peer ids and
 * addresses multiaddrs (anything else is a bug in the caller, and throws); the size is not
 * checked here: the driver drops a frame over frameBytesMax and counts it.
 */
export function encodeKad(message: KadMessage): Uint8Array {
  return KadFrame.encode({
    type: MESSAGE_TYPES.indexOf(message.type),
    key: arrayBufferBacked(message.key),
    record: message.record && {
      key: arrayBufferBacked(message.record.key),
      value: arrayBufferBacked(message.record.value),
      timeReceived: message.record.timeReceived,
    },
    closerPeers: message.closerPeers.map(encodePeer),
    providerPeers: message.providerPeers.map(encodePeer),
  })
}

function encodePeer(peer: KadPeer): KadFrame.Peer {
  return {
    id: arrayBufferBacked(peerIdFromString(peer.id).toMultihash().bytes),
    addrs: peer.addresses.map((address) => arrayBufferBacked(multiaddr(address).bytes)),
    connection: CONNECTIONS.indexOf(peer.connection),
  }
}

// protons types its byte fields as ArrayBuffer-backed, but encoding only reads them.
function arrayBufferBacked(bytes: Uint8Array): Uint8Array<ArrayBuffer> {
  return bytes as Uint8Array<ArrayBuffer>
}

/** Every code decodeKad refuses a frame with; the module's comment says when. */
export const KAD_WIRE_ERROR_CODES: ReadonlySet<string> = new Set([
  'frame-too-large', 'malformed', 'too-many-peers', 'too-many-addresses', 'bad-message-type',
  'key-too-large', 'record-key-too-large', 'value-too-large', 'time-received-too-long',
])

export function decodeKad(bytes: Uint8Array): DecodeResult<KadMessage> {
  if (bytes.byteLength > KAD_LIMITS.frameBytesMax) return wireError('frame-too-large', `${bytes.byteLength} bytes`)
  let frame: KadFrame
  try {
    frame = KadFrame.decode(bytes, { limits: DECODE_LIMITS })
  } catch (error) {
    // protons throws on malformed protobuf and, as MaxLengthError naming the field, on a list over its limit.
    const detail = error instanceof Error ? error.message : String(error)
    if (error instanceof Error && error.name === 'MaxLengthError') return wireError(detail.includes('"addrs"') ? 'too-many-addresses' : 'too-many-peers', detail)
    return wireError('malformed', detail)
  }
  const type = MESSAGE_TYPES[frame.type]
  if (type === undefined) return wireError('bad-message-type', String(frame.type))
  if (frame.key.byteLength > KAD_LIMITS.keyBytesMax) return wireError('key-too-large', `${frame.key.byteLength} bytes`)
  const record = frame.record
  if (record !== undefined) {
    if (record.key.byteLength > KAD_LIMITS.keyBytesMax) return wireError('record-key-too-large', `${record.key.byteLength} bytes`)
    if (record.value.byteLength > KAD_LIMITS.valueBytesMax) return wireError('value-too-large', `${record.value.byteLength} bytes`)
    if (record.timeReceived.length > TIME_RECEIVED_LENGTH_MAX) return wireError('time-received-too-long', `${record.timeReceived.length} characters`)
  }
  const closerPeers = decodePeers(frame.closerPeers)
  const providerPeers = decodePeers(frame.providerPeers)
  const message: KadMessage = {
    type,
    // Copies: the core keeps keys and records long after the frame, and a view would pin its whole buffer.
    key: frame.key.slice(),
    record: record && { key: record.key.slice(), value: record.value.slice(), timeReceived: record.timeReceived },
    closerPeers,
    providerPeers,
  }
  const peersDropped = frame.closerPeers.length - closerPeers.length + frame.providerPeers.length - providerPeers.length
  if (peersDropped > 0) message.peersDropped = peersDropped
  return { ok: true, value: message }
}

function decodePeers(entries: readonly KadFrame.Peer[]): KadPeer[] {
  const peers: KadPeer[] = []
  // Invalid entries do not take a place: the first peersPerListMax valid peers are kept.
  for (const entry of entries) {
    if (peers.length === KAD_LIMITS.peersPerListMax) break
    const id = decodePeerId(entry.id)
    if (id === undefined) continue
    peers.push({ id, addresses: decodeAddresses(entry.addrs), connection: CONNECTIONS[entry.connection] ?? 'not-connected' })
  }
  return peers
}

function decodePeerId(bytes: Uint8Array): PeerId | undefined {
  if (bytes.byteLength > KAD_LIMITS.peerIdBytesMax) return undefined
  try {
    const peerId = peerIdFromMultihash(Digest.decode(bytes))
    // An identity multihash of a URL parses as a URL peer id: an HTTP gateway, not a libp2p peer.
    return peerId.type === 'url' ? undefined : asPeerId(peerId.toString())
  } catch {
    return undefined
  }
}

function decodeAddresses(entries: readonly Uint8Array[]): string[] {
  const addresses: string[] = []
  for (const bytes of entries) {
    if (addresses.length === KAD_LIMITS.addressesPerPeerMax) break
    if (bytes.byteLength === 0 || bytes.byteLength > KAD_LIMITS.addressBytesMax) continue
    try {
      addresses.push(multiaddr(bytes).toString())
    } catch {
      // Peers advertise transports this build does not know; the others may still be dialled.
    }
  }
  return addresses
}

/**
 * The exact byteLength of encodeKad(message) if every peer id were NOMINAL_PEER_ID_BYTES and
 * every address NOMINAL_ADDRESS_BYTES long, computed without encoding. The simulator's
 * messages are charged this, so their sizes match the real network's.
 */
export function kadMessageSize(message: KadMessage): number {
  const type = MESSAGE_TYPES.indexOf(message.type)
  let size = type === 0 ? 0 : 1 + varintBytes(type)
  size += bytesFieldSize(message.key.byteLength)
  if (message.record !== undefined) {
    const { key, value, timeReceived } = message.record
    size += lengthDelimitedSize(bytesFieldSize(key.byteLength) + bytesFieldSize(value.byteLength) + bytesFieldSize(utf8Bytes(timeReceived)))
  }
  for (const peer of [...message.closerPeers, ...message.providerPeers]) {
    const connection = CONNECTIONS.indexOf(peer.connection)
    const peerSize = bytesFieldSize(NOMINAL_PEER_ID_BYTES)
      + peer.addresses.length * lengthDelimitedSize(NOMINAL_ADDRESS_BYTES)
      + (connection === 0 ? 0 : 1 + varintBytes(connection))
    size += lengthDelimitedSize(peerSize)
  }
  return size
}

// Every field number in kad.proto is below 16, so each tag is one byte.
// proto3 omits an empty bytes or string field.
function bytesFieldSize(length: number): number {
  return length === 0 ? 0 : lengthDelimitedSize(length)
}

