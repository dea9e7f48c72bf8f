/**
 * The codec of GossipSub (/meshsub/1.2.0, spoken also as /meshsub/1.1.0 and /meshsub/1.0.0):
 * one pubsub RPC protobuf per frame (proto/gossipsub.proto), byte-compatible with
 * @libp2p/gossipsub and go-libp2p-pubsub. net/ frames streams with it; sim/ accounts sizes
 * with gossipRpcSize, since its peer ids are synthetic names that have no wire form. It also
 * owns the two byte formulas of the pubsub spec: what a StrictSign signature covers
 * (gossipSigningBytes) and the default message id (defaultMessageId).
 *
 * Decoding never throws and obeys GOSSIP_LIMITS. What it refuses, whole, with the error's code:
 *   frame-too-large              the frame is over GOSSIP_LIMITS.frameBytesMax
 *   malformed                    not a protobuf RPC (truncated, bad varint, bad wire type, ...)
 *   too-many-subscriptions       over subscriptionsPerRpcMax subscription changes
 *   too-many-messages            over messagesPerRpcMax published messages
 *   too-many-ihave-entries       over ihavePerRpcMax IHAVE entries
 *   too-many-iwant-entries       over iwantPerRpcMax IWANT entries
 *   too-many-grafts              over graftPerRpcMax GRAFTs
 *   too-many-prunes              over prunePerRpcMax PRUNEs
 *   too-many-idontwant-entries   over idontwantPerRpcMax IDONTWANT entries
 *   too-many-message-ids         one IHAVE entry over messageIdsPerRpcMax ids, or the IHAVE, IWANT or
 *                                IDONTWANT entries together over messageIdsPerRpcMax ids (each kind)
 *   too-many-prune-peers         one PRUNE offers over prunePeersMax peers
 *   topic-too-long               a topic (anywhere) over topicBytesMax UTF-8 bytes
 *   message-id-too-long          a message id over messageIdBytesMax
 *   message-too-large            a message's data over messageDataBytesMax
 *   seqno-too-long               a seqno over seqnoBytesMax
 *   signature-too-long           a signature over signatureBytesMax
 *   key-too-long                 a key over keyBytesMax
 *   signed-peer-record-too-long  a PRUNE peer's signed record over signedPeerRecordBytesMax
 * What it reads and lets the core judge: a message without a topic (topic ''), a `from` that
 * is not a libp2p peer id (no `from`, `defect: 'bad-from'`), a subscription without its flag
 * (an unsubscription) or topic (''). What it skips: PRUNE peers whose id is not a libp2p peer
 * id. What it clamps: a PRUNE backoff over PRUNE_BACKOFF_SECONDS_MAX.
 */
import { peerIdFromMultihash, peerIdFromString } from '@libp2p/peer-id'
import * as Digest from 'multiformats/hashes/digest'
import { reader as protobufReader } from 'protons-runtime'
import {
  GOSSIP_LIMITS, type GossipControl, type GossipMessage, type GossipRpc, MESHSUB_PROTOCOL_V10, MESHSUB_PROTOCOL_V11, MESHSUB_PROTOCOL_V12,
  type MessageId, messageIdFromBytes, messageIdToBytes, type Prune,
} from '../core/gossip/messages.ts'
import { asPeerId, type DecodeResult, type PeerId, type WireCodec, wireError } from '../core/sans-io.ts'
import { NOMINAL_PEER_ID_BYTES } from './kad.ts'
import { ControlMessage as ControlFrame, type ControlPrune as PruneFrame, Message as MessageFrame, RPC as RpcFrame } from './proto/gossipsub.ts'
import { lengthDelimitedSize, utf8Bytes, varintBytes } from './protobuf-size.ts'

/** A day: far above any real backoff (go-libp2p prunes for a minute), well within a Number. */
export const PRUNE_BACKOFF_SECONDS_MAX = 86_400

export const gossipCodec: WireCodec<GossipRpc> = {
  protocol: MESHSUB_PROTOCOL_V12,
  fallbackProtocols: [MESHSUB_PROTOCOL_V11, MESHSUB_PROTOCOL_V10],
  frameBytesMax: GOSSIP_LIMITS.frameBytesMax,
  encode: encodeGossip,
  decode: decodeGossip,
}

type Refusal = ReturnType<typeof wireError>

// --- peer ids ------------------------------------------------------------------------------

// Every forwarded message names its source, so the same few ids are converted again and
// again. Cleared when full: simpler than an LRU, and a flood of new ids costs no more than no cache.
const PEER_ID_CACHE_ENTRIES_MAX = 1_024
const peerIdBytesById = new Map<PeerId, Uint8Array>()
const peerIdsByBytes = new Map<string, PeerId>()

function remember<K, V>(cache: Map<K, V>, key: K, value: V): void {
  if (cache.size >= PEER_ID_CACHE_ENTRIES_MAX) cache.clear()
  cache.set(key, value)
}

/** A libp2p peer id's multihash; anything else is a bug in the caller, and throws. */
function peerIdBytes(id: PeerId): Uint8Array<ArrayBuffer> {
  let bytes = peerIdBytesById.get(id)
  if (bytes === undefined) {
    bytes = peerIdFromString(id).toMultihash().bytes
    remember(peerIdBytesById, id, bytes)
  }
  // protons types its byte fields as ArrayBuffer-backed, but encoding only reads them.
  return bytes as Uint8Array<ArrayBuffer>
}

function decodePeerId(bytes: Uint8Array): PeerId | undefined {
  if (bytes.byteLength === 0 || bytes.byteLength > GOSSIP_LIMITS.peerIdBytesMax) return undefined
  const key = messageIdFromBytes(bytes)
  const cached = peerIdsByBytes.get(key)
  if (cached !== undefined) return cached
  let id: PeerId
  try {
    const peerId = peerIdFromMultihash(Digest.decode(bytes))
    // An identity multihash of a URL parses as a URL peer id: an HTTP gateway, not a libp2p peer.
    if (peerId.type === 'url') return undefined
    id = asPeerId(peerId.toString())
  } catch {
    return undefined
  }
  remember(peerIdsByBytes, key, id)
  // A copy, so that the cache does not pin the frame; the message is likely to be forwarded.
  remember(peerIdBytesById, id, bytes.slice())
  return id
}

// --- encoding ------------------------------------------------------------------------------

/**
 * The spec's wire form. Peer ids must be libp2p peer ids (anything else throws); a control
 * message with nothing in it is left out. IWANT and IDONTWANT ids go in one entry each, as
 * @libp2p/gossipsub sends them. Sizes are not checked: the driver drops a frame over
 * frameBytesMax and counts it.
 */
export function encodeGossip(rpc: GossipRpc): Uint8Array {
  return RpcFrame.encode({
    subscriptions: rpc.subscriptions.map(({ subscribe, topic }) => ({ subscribe, topicid: topic })),
    publish: rpc.messages.map(messageFrame),
    control: rpc.control !== undefined && !controlIsEmpty(rpc.control) ? controlFrame(rpc.control) : undefined,
  })
}

/**
 * `data` is always written, even empty, as every implementation's publish does: a signature
 * covers the field's presence, and a message does not record it.
 */
function messageFrame(message: GossipMessage): MessageFrame {
  return {
    from: message.from === undefined ? undefined : peerIdBytes(message.from),
    data: arrayBufferBacked(message.data),
    seqno: message.seqno && arrayBufferBacked(message.seqno),
    topic: message.topic,
    signature: message.signature && arrayBufferBacked(message.signature),
    key: message.key && arrayBufferBacked(message.key),
  }
}

function controlIsEmpty(control: GossipControl): boolean {
  return control.ihave.length === 0 && control.iwant.length === 0 && control.graft.length === 0 && control.prune.length === 0 && control.idontwant.length === 0
}

function controlFrame(control: GossipControl): ControlFrame {
  return {
    ihave: control.ihave.map(({ topic, messageIds }) => ({ topicID: topic, messageIDs: messageIds.map(messageIdBytes) })),
    iwant: control.iwant.length === 0 ? [] : [{ messageIDs: control.iwant.map(messageIdBytes) }],
    graft: control.graft.map((topic) => ({ topicID: topic })),
    prune: control.prune.map(pruneFrame),
    idontwant: control.idontwant.length === 0 ? [] : [{ messageIDs: control.idontwant.map(messageIdBytes) }],
  }
}

function pruneFrame(prune: Prune): PruneFrame {
  return {
    topicID: prune.topic,
    peers: prune.peers.map(({ peer, signedPeerRecord }) => ({
      peerID: peerIdBytes(peer),
      signedPeerRecord: signedPeerRecord && arrayBufferBacked(signedPeerRecord),
    })),
    backoff: prune.backoffSeconds === undefined ? undefined : BigInt(wholeSeconds(prune.backoffSeconds)),
  }
}

// Rounded up: a pruned peer must not come back early.
function wholeSeconds(seconds: number): number {
  return Math.max(0, Math.ceil(seconds))
}

function messageIdBytes(id: MessageId): Uint8Array<ArrayBuffer> {
  return messageIdToBytes(id) as Uint8Array<ArrayBuffer>
}

function arrayBufferBacked(bytes: Uint8Array): Uint8Array<ArrayBuffer> {
  return bytes as Uint8Array<ArrayBuffer>
}

// --- decoding ------------------------------------------------------------------------------

// protons checks these while it reads, so a frame listing a million subscriptions is refused
// before they are materialised. The ids of each kind, across entries, are counted even before
// (countMessageIds), so the ids of IWANT and IDONTWANT need no limit here.
const DECODE_LIMITS = {
  subscriptions: GOSSIP_LIMITS.subscriptionsPerRpcMax,
  publish: GOSSIP_LIMITS.messagesPerRpcMax,
  control: {
    ihave: GOSSIP_LIMITS.ihavePerRpcMax,
    ihave$: { messageIDs: GOSSIP_LIMITS.messageIdsPerRpcMax },
    iwant: GOSSIP_LIMITS.iwantPerRpcMax,
    graft: GOSSIP_LIMITS.graftPerRpcMax,
    prune: GOSSIP_LIMITS.prunePerRpcMax,
    prune$: { peers: GOSSIP_LIMITS.prunePeersMax },
    idontwant: GOSSIP_LIMITS.idontwantPerRpcMax,
  },
}

// Keyed by the field protons names in its MaxLengthError.
const LIST_LIMIT_CODES: Record<string, string> = {
  subscriptions: 'too-many-subscriptions',
  publish: 'too-many-messages',
  ihave: 'too-many-ihave-entries',
  iwant: 'too-many-iwant-entries',
  graft: 'too-many-grafts',
  prune: 'too-many-prunes',
  idontwant: 'too-many-idontwant-entries',
  messageIDs: 'too-many-message-ids',
  peers: 'too-many-prune-peers',
}

/** Every code decodeGossip refuses a frame with. */
export const GOSSIP_WIRE_ERROR_CODES: ReadonlySet<string> = new Set([
  'frame-too-large', 'malformed', 'too-many-subscriptions', 'too-many-messages', 'too-many-ihave-entries', 'too-many-iwant-entries',
  'too-many-grafts', 'too-many-prunes', 'too-many-idontwant-entries', 'too-many-message-ids', 'too-many-prune-peers', 'topic-too-long',
  'message-id-too-long', 'message-too-large', 'seqno-too-long', 'signature-too-long', 'key-too-long', 'signed-peer-record-too-long',
])

export function decodeGossip(bytes: Uint8Array): DecodeResult<GossipRpc> {
  if (bytes.byteLength > GOSSIP_LIMITS.frameBytesMax) return wireError('frame-too-large', `${bytes.byteLength} bytes`)
  let frame: RpcFrame
  try {
    const idsOver = countMessageIds(bytes)
    if (idsOver !== undefined) return wireError('too-many-message-ids', idsOver)
    frame = RpcFrame.decode(bytes, { limits: DECODE_LIMITS })
  } catch (error) {
    // protons throws on malformed protobuf (so does countMessageIds) and, as MaxLengthError
    // naming the field, on a list over its limit.
    const detail = error instanceof Error ? error.message : String(error)
    const field = error instanceof Error && error.name === 'MaxLengthError' ? /"(\w+)"/.exec(detail)?.[1] : undefined
    return wireError((field !== undefined && LIST_LIMIT_CODES[field]) || 'malformed', detail)
  }
  const rpc: GossipRpc = { subscriptions: [], messages: [] }
  for (const entry of frame.subscriptions) {
    const topic = entry.topicid ?? ''
    if (topicTooLong(topic)) return refuseTopic(topic)
    rpc.subscriptions.push({ subscribe: entry.subscribe ?? false, topic })
  }
  for (const entry of frame.publish) {
    const message = decodeMessage(entry)
    if (!message.ok) return message
    rpc.messages.push(message.value)
  }
  if (frame.control !== undefined) {
    const control = decodeControl(frame.control)
    if (!control.ok) return control
    if (!controlIsEmpty(control.value)) rpc.control = control.value
  }
  return { ok: true, value: rpc }
}

const CONTROL_TAG = 3 << 3 | 2
// The control message's entries that hold ids: IHAVE (field 1, ids in its field 2), IWANT
// (field 2) and IDONTWANT (field 5), both with ids in their field 1. All are length-delimited.
const ID_ENTRIES = [
  { kind: 'ihave', tag: 1 << 3 | 2, idTag: 2 << 3 | 2 },
  { kind: 'iwant', tag: 2 << 3 | 2, idTag: 1 << 3 | 2 },
  { kind: 'idontwant', tag: 5 << 3 | 2, idTag: 1 << 3 | 2 },
] as const

/**
 * Counts the ids of each kind across all entries without materialising any: protons' limits
 * apply per entry, and 1,024 entries of 5,000 ids would pass them. Returns which kind is over
 * messageIdsPerRpcMax, if any; throws on malformed protobuf, as protons would.
 */
function countMessageIds(bytes: Uint8Array): string | undefined {
  const reader = protobufReader(bytes)
  const counts = [0, 0, 0]
  while (reader.pos < reader.len) {
    const tag = reader.uint32()
    if (tag !== CONTROL_TAG) {
      reader.skipType(tag & 7)
      continue
    }
    const controlEnd = submessageEnd(reader)
    while (reader.pos < controlEnd) {
      const entryTag = reader.uint32()
      const kind = ID_ENTRIES.findIndex((entry) => entry.tag === entryTag)
      if (kind === -1) {
        reader.skipType(entryTag & 7)
        continue
      }
      const { idTag } = ID_ENTRIES[kind]!
      const entryEnd = submessageEnd(reader)
      let count = counts[kind]!
      while (reader.pos < entryEnd) {
        const fieldTag = reader.uint32()
        if (fieldTag === idTag) count++
        reader.skipType(fieldTag & 7)
      }
      if (count > GOSSIP_LIMITS.messageIdsPerRpcMax) return `${ID_ENTRIES[kind]!.kind}: over ${GOSSIP_LIMITS.messageIdsPerRpcMax} ids`
      counts[kind] = count
    }
  }
  return undefined
}

function submessageEnd(reader: ReturnType<typeof protobufReader>): number {
  const length = reader.uint32()
  if (reader.pos + length > reader.len) throw new RangeError(`a submessage of ${length} bytes at ${reader.pos} runs past the frame`)
  return reader.pos + length
}

function decodeMessage(entry: MessageFrame): DecodeResult<GossipMessage> {
  if (topicTooLong(entry.topic)) return refuseTopic(entry.topic)
  const refusal = refuseLong('message-too-large', entry.data, GOSSIP_LIMITS.messageDataBytesMax)
    ?? refuseLong('seqno-too-long', entry.seqno, GOSSIP_LIMITS.seqnoBytesMax)
    ?? refuseLong('signature-too-long', entry.signature, GOSSIP_LIMITS.signatureBytesMax)
    ?? refuseLong('key-too-long', entry.key, GOSSIP_LIMITS.keyBytesMax)
  if (refusal !== undefined) return refusal
  // Copies: the message cache keeps messages long after the frame, and a view would pin its whole buffer.
  const message: GossipMessage = { topic: entry.topic, data: entry.data?.slice() ?? new Uint8Array(0) }
  if (entry.from !== undefined) {
    const from = decodePeerId(entry.from)
    if (from === undefined) message.defect = 'bad-from'
    else message.from = from
  }
  if (entry.seqno !== undefined) message.seqno = entry.seqno.slice()
  if (entry.signature !== undefined) message.signature = entry.signature.slice()
  if (entry.key !== undefined) message.key = entry.key.slice()
  return { ok: true, value: message }
}

function decodeControl(frame: ControlFrame): DecodeResult<GossipControl> {
  const control: GossipControl = { ihave: [], iwant: [], graft: [], prune: [], idontwant: [] }
  let ihaveIdCount = 0
  for (const entry of frame.ihave) {
    const topic = entry.topicID ?? ''
    if (topicTooLong(topic)) return refuseTopic(topic)
    const messageIds: MessageId[] = []
    const refusal = appendMessageIds(entry.messageIDs, messageIds)
    if (refusal !== undefined) return refusal
    ihaveIdCount += messageIds.length
    if (ihaveIdCount > GOSSIP_LIMITS.messageIdsPerRpcMax) return wireError('too-many-message-ids', `ihave: ${ihaveIdCount} ids`)
    control.ihave.push({ topic, messageIds })
  }
  for (const entry of frame.iwant) {
    const refusal = appendMessageIds(entry.messageIDs, control.iwant)
    if (refusal !== undefined) return refusal
  }
  for (const entry of frame.graft) {
    const topic = entry.topicID ?? ''
    if (topicTooLong(topic)) return refuseTopic(topic)
    control.graft.push(topic)
  }
  for (const entry of frame.prune) {
    const prune = decodePrune(entry)
    if (!prune.ok) return prune
    control.prune.push(prune.value)
  }
  for (const entry of frame.idontwant) {
    const refusal = appendMessageIds(entry.messageIDs, control.idontwant)
    if (refusal !== undefined) return refusal
  }
  return { ok: true, value: control }
}

function decodePrune(entry: PruneFrame): DecodeResult<Prune> {
  const topic = entry.topicID ?? ''
  if (topicTooLong(topic)) return refuseTopic(topic)
  const prune: Prune = { topic, peers: [] }
  for (const { peerID, signedPeerRecord } of entry.peers) {
    const refusal = refuseLong('signed-peer-record-too-long', signedPeerRecord, GOSSIP_LIMITS.signedPeerRecordBytesMax)
    if (refusal !== undefined) return refusal
    // Peer exchange is advice: a peer the core cannot name is of no use, but no offence either.
    const peer = peerID === undefined ? undefined : decodePeerId(peerID)
    if (peer === undefined) continue
    prune.peers.push(signedPeerRecord === undefined ? { peer } : { peer, signedPeerRecord: signedPeerRecord.slice() })
  }
  if (entry.backoff !== undefined) {
    prune.backoffSeconds = Number(entry.backoff > PRUNE_BACKOFF_SECONDS_MAX ? PRUNE_BACKOFF_SECONDS_MAX : entry.backoff)
  }
  return { ok: true, value: prune }
}

// The count across entries was checked by countMessageIds; this guards it as well, for free.
function appendMessageIds(entries: readonly Uint8Array[], into: MessageId[]): Refusal | undefined {
  if (into.length + entries.length > GOSSIP_LIMITS.messageIdsPerRpcMax) return wireError('too-many-message-ids', `${into.length + entries.length} ids`)
  for (const bytes of entries) {
    if (bytes.byteLength > GOSSIP_LIMITS.messageIdBytesMax) return wireError('message-id-too-long', `${bytes.byteLength} bytes`)
    into.push(messageIdFromBytes(bytes))
  }
  return undefined
}

function refuseLong(code: string, bytes: Uint8Array | undefined, bytesMax: number): Refusal | undefined {
  return bytes !== undefined && bytes.byteLength > bytesMax ? wireError(code, `${bytes.byteLength} bytes`) : undefined
}

// A UTF-16 unit is at most three UTF-8 bytes, so short topics need no counting.
function topicTooLong(topic: string): boolean {
  return topic.length * 3 > GOSSIP_LIMITS.topicBytesMax && utf8Bytes(topic) > GOSSIP_LIMITS.topicBytesMax
}

function refuseTopic(topic: string): Refusal {
  return wireError('topic-too-long', `${utf8Bytes(topic)} bytes`)
}

// --- the spec's byte formulas ----------------------------------------------------------------

const SIGNING_PREFIX = new TextEncoder().encode('libp2p-pubsub:')

/**
 * What a StrictSign signature covers (pubsub/README.md, "Message Signing"): "libp2p-pubsub:"
 * then the Message protobuf with only from, data, seqno and topic, as the signer encoded it.
 * A message whose `from` was unreadable (defect 'bad-from') gives bytes no signature covers.
 */
export function gossipSigningBytes(message: GossipMessage): Uint8Array {
  const body = MessageFrame.encode({
    from: message.from === undefined ? undefined : peerIdBytes(message.from),
    data: arrayBufferBacked(message.data),
    seqno: message.seqno && arrayBufferBacked(message.seqno),
    topic: message.topic,
  })
  const bytes = new Uint8Array(SIGNING_PREFIX.byteLength + body.byteLength)
  bytes.set(SIGNING_PREFIX)
  bytes.set(body, SIGNING_PREFIX.byteLength)
  return bytes
}

/**
 * The spec's default message id (pubsub/README.md, "The Message"; go-libp2p-pubsub's
 * DefaultMsgIdFn): the source's peer id bytes followed by the seqno bytes. Undefined without
 * both. `from` must be a libp2p peer id (the simulator's names throw): the simulator gives its
 * core an id function of its own.
 */
export function defaultMessageId(message: GossipMessage): MessageId | undefined {
  if (message.from === undefined || message.seqno === undefined) return undefined
  // A MessageId is one char per byte, so joining the strings joins the bytes.
  return (messageIdFromBytes(peerIdBytes(message.from)) + messageIdFromBytes(message.seqno)) as MessageId
}

/**
 * js-libp2p's message id (@libp2p/gossipsub's msgIdFnStrictSign): the source's public key
 * in its protobuf form, then the seqno. For Ed25519 and secp256k1 peer ids, whose identity
 * multihash holds that protobuf, it is the spec's id less the multihash's 2-byte header.
 * Nodes that must agree on ids with js-libp2p peers (IHAVE, IWANT, IDONTWANT) use it.
 */
export function publicKeyMessageId(message: GossipMessage): MessageId | undefined {
  if (message.from === undefined || message.seqno === undefined) return undefined
  let key = message.key
  if (key === undefined) {
    const multihash = peerIdBytes(message.from)
    // An identity multihash: code 0x00, then the length of the inlined key (under 128, one byte).
    if (multihash[0] !== 0x00 || multihash[1] !== multihash.byteLength - 2) return undefined
    key = multihash.subarray(2)
  }
  return (messageIdFromBytes(key) + messageIdFromBytes(message.seqno)) as MessageId
}

// --- sizes for the simulator ---------------------------------------------------------------

const PEER_ID_FIELD_BYTES = lengthDelimitedSize(NOMINAL_PEER_ID_BYTES)
// A subscription's flag: its tag and a one-byte bool.
const SUBSCRIBE_FIELD_BYTES = 2

/**
 * The exact byteLength of encodeGossip(rpc) if every peer id were NOMINAL_PEER_ID_BYTES long
 * (an Ed25519 peer id's length), computed without encoding or allocating: the simulator
 * charges every RPC this, tens of millions of times a run.
 */
export function gossipRpcSize(rpc: GossipRpc): number {
  let size = 0
  for (const { topic } of rpc.subscriptions) size += lengthDelimitedSize(SUBSCRIBE_FIELD_BYTES + stringFieldSize(topic))
  for (const message of rpc.messages) size += lengthDelimitedSize(messageSize(message))
  if (rpc.control !== undefined && !controlIsEmpty(rpc.control)) size += lengthDelimitedSize(controlSize(rpc.control))
  return size
}

function messageSize(message: GossipMessage): number {
  return (message.from === undefined ? 0 : PEER_ID_FIELD_BYTES)
    + lengthDelimitedSize(message.data.byteLength)
    + optionalBytesFieldSize(message.seqno)
    + (message.topic === '' ? 0 : stringFieldSize(message.topic))
    + optionalBytesFieldSize(message.signature)
    + optionalBytesFieldSize(message.key)
}

function controlSize(control: GossipControl): number {
  let size = 0
  for (const { topic, messageIds } of control.ihave) size += lengthDelimitedSize(stringFieldSize(topic) + messageIdsSize(messageIds))
  if (control.iwant.length > 0) size += lengthDelimitedSize(messageIdsSize(control.iwant))
  for (const topic of control.graft) size += lengthDelimitedSize(stringFieldSize(topic))
  for (const prune of control.prune) size += lengthDelimitedSize(pruneSize(prune))
  if (control.idontwant.length > 0) size += lengthDelimitedSize(messageIdsSize(control.idontwant))
  return size
}

function pruneSize(prune: Prune): number {
  let size = stringFieldSize(prune.topic)
  for (const { signedPeerRecord } of prune.peers) size += lengthDelimitedSize(PEER_ID_FIELD_BYTES + optionalBytesFieldSize(signedPeerRecord))
  if (prune.backoffSeconds !== undefined) size += 1 + varintBytes(wholeSeconds(prune.backoffSeconds))
  return size
}

function messageIdsSize(ids: readonly MessageId[]): number {
  let size = 0
  // A MessageId has one char per byte.
  for (const id of ids) size += lengthDelimitedSize(id.length)
  return size
}

// The optional fields are written whenever they are present, even empty.
function optionalBytesFieldSize(bytes: Uint8Array | undefined): number {
  return bytes === undefined ? 0 : lengthDelimitedSize(bytes.byteLength)
}

function stringFieldSize(text: string): number {
  return lengthDelimitedSize(utf8Bytes(text))
}
