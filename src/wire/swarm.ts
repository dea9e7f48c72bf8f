/**
 * The codec of the swarm protocol (/shoal/swarm/1.0.0): one SwarmFrame protobuf per frame
 * (proto/swarm.proto). net/ frames streams with it; sim/ accounts sizes with
 * swarmMessageSize, since its roots and inner-node refs are synthetic names and its blocks
 * have a length but no bytes.
 *
 * A root (the core's ContentKey) and an inner node's BlockRef travel as binary CIDs and are
 * read back as the CID's canonical text, CID.toString(): base32 for a CIDv1, base58btc for a
 * CIDv0. A leaf's BlockRef travels as its index.
 *
 * Decoding never throws and obeys SWARM_LIMITS. What it refuses, whole, with the error's code:
 *   frame-too-large        the frame is over SWARM_FRAME_BYTES_MAX
 *   malformed              not a protobuf SwarmFrame (truncated, bad varint, field number 0, a
 *                          known field of another wire type than swarm.proto's, a packed `leaves`, ...)
 *   too-many-leaves        over SWARM_LIMITS.haveLeavesMax leaves, counted before any is read
 *   unknown-type           no type, or a type this version does not know
 *   missing-root           no root CID
 *   cid-too-large          the root's or an inner node's CID is over SWARM_LIMITS.cidBytesMax
 *   invalid-cid            the root's or an inner node's CID does not parse
 *   leaf-count-too-large   a bitfield's leafCount is over SWARM_LIMITS.leafCountMax
 *   bitfield-length        a bitfield's bits are not ceil(leafCount / 8) bytes long
 *   bitfield-spare-bits    a bitfield sets a bit past its leafCount
 *   empty-have             a have of no leaves
 *   leaf-out-of-range      a leaf index (a have's or a block ref's) at or over SWARM_LIMITS.leafCountMax
 *   missing-block-ref      a request, cancel, block or reject names no block
 *   ambiguous-block-ref    a request, cancel, block or reject names both a leaf and an inner node
 *   block-too-large        a block's data is over SWARM_LIMITS.blockBytesMax
 *   unknown-reject-reason  a reject without a reason, or with a reason this version does not know
 * What it ignores: unknown fields, and fields that the frame's type does not carry. What it
 * leaves to the core: whether a leaf index is below the session's leaf count, which the
 * frame does not carry, and whether a block's bytes match its ref.
 */
import { CID } from 'multiformats/cid'
import { reader as protobufReader } from 'protons-runtime'
import * as varint from 'uint8-varint'
import { concat } from 'uint8arrays/concat'
import { type DecodeResult, type WireCodec, wireError } from '../core/sans-io.ts'
import {
  asContentKey, type BlockData, type BlockRef, type ContentKey, type RejectReason, SWARM_FRAME_BYTES_MAX, SWARM_LIMITS, SWARM_PROTOCOL,
  type SwarmMessage, type SwarmMessageType,
} from '../core/swarm/messages.ts'
import { SwarmFrame } from './proto/swarm.ts'
import { lengthDelimitedSize, varintBytes } from './protobuf-size.ts'

/** swarmMessageSize's stand-in for every CID: a CIDv1 with a sha2-256 multihash. */
export const NOMINAL_CID_BYTES = 36

const ERROR_CODES = [
  'frame-too-large', 'malformed', 'too-many-leaves', 'unknown-type', 'missing-root', 'cid-too-large', 'invalid-cid',
  'leaf-count-too-large', 'bitfield-length', 'bitfield-spare-bits', 'empty-have', 'leaf-out-of-range',
  'missing-block-ref', 'ambiguous-block-ref', 'block-too-large', 'unknown-reject-reason',
] as const

export type SwarmWireErrorCode = typeof ERROR_CODES[number]

/** Every code decodeSwarm refuses a frame with; the module's comment says when. */
export const SWARM_WIRE_ERROR_CODES: ReadonlySet<string> = new Set(ERROR_CODES)

// Both indexed by their values on the wire less one (swarm.proto's enums), so that 0, a
// missing field, is no value.
const MESSAGE_TYPES: readonly SwarmMessageType[] = [
  'bitfield', 'absent', 'have', 'interested', 'not-interested', 'choke', 'unchoke', 'request', 'cancel', 'block', 'reject',
]
// Not core's REJECT_REASONS: reordering that list must not change the wire.
const WIRE_REJECT_REASONS: readonly RejectReason[] = ['absent', 'choked', 'overloaded', 'too-large']

export const swarmCodec: WireCodec<SwarmMessage> = {
  protocol: SWARM_PROTOCOL,
  frameBytesMax: SWARM_FRAME_BYTES_MAX,
  encode: encodeSwarm,
  encodeParts: encodeSwarmParts,
  decode: decodeSwarm,
}

type Refusal = ReturnType<typeof wireError>

function refuse(code: SwarmWireErrorCode, detail?: string): Refusal {
  return wireError(code, detail)
}

// No cache of CIDs, unlike gossip's of peer ids: a block takes a few frames (request, block,
// have), and hashing 1 MiB costs some thirty times parsing their CIDs.

// --- encoding ------------------------------------------------------------------------------

/**
 * The wire form, proto3 defaults omitted. Roots and inner-node refs must be CID text, block
 * data a Uint8Array, and leaf indices and counts uint32s: anything else is a bug in the
 * caller (the simulator's synthetic names and lengths are for swarmMessageSize), and throws.
 * Bounds are not checked: the driver drops a frame over frameBytesMax and counts it, and the
 * core never sends a block over the limit (it rejects the request with 'too-large').
 */
export function encodeSwarm(message: SwarmMessage): Uint8Array {
  const parts = encodeSwarmParts(message)
  return parts.length === 1 ? parts[0]! : concat(parts)
}

/** Protobuf field 5 (data), length-delimited: its key byte. */
const DATA_FIELD_KEY = (5 << 3) | 2

/**
 * encodeSwarm in parts: a block's data, its last field, is the last part, not copied; what
 * comes before it is the fields protons writes and the data field's key and length.
 */
export function encodeSwarmParts(message: SwarmMessage): Uint8Array[] {
  if (message.type !== 'block') return [encodeFields(message)]
  const data = blockBytes(message.data)
  // proto3 leaves empty bytes out, as protons does.
  if (data.byteLength === 0) return [encodeFields(message)]
  const fields = encodeFields({ ...message, data: new Uint8Array(0) })
  const head = new Uint8Array(fields.byteLength + 1 + varint.encodingLength(data.byteLength))
  head.set(fields)
  head[fields.byteLength] = DATA_FIELD_KEY
  varint.encode(data.byteLength, head, fields.byteLength + 1)
  return [head, data]
}

function encodeFields(message: SwarmMessage): Uint8Array {
  const frame: Partial<SwarmFrame> = { type: wireValue(MESSAGE_TYPES, message.type), root: cidBytes(message.root) }
  switch (message.type) {
    case 'bitfield':
      frame.leafCount = uint32(message.leafCount, 'leafCount')
      frame.bits = arrayBufferBacked(message.bits)
      if (message.dagHeld === true) {
        if (message.leafCount !== 0) throw new RangeError(`dagHeld goes with leafCount 0, not ${message.leafCount}`)
        frame.dagHeld = true
      }
      break
    case 'have':
      for (const leaf of message.leaves) uint32(leaf, 'a leaf')
      frame.leaves = message.leaves
      break
    case 'absent':
    case 'interested':
    case 'not-interested':
    case 'choke':
    case 'unchoke':
      break
    case 'request':
    case 'cancel':
      setBlockRef(frame, message.block)
      break
    case 'block':
      setBlockRef(frame, message.block)
      frame.data = blockBytes(message.data)
      break
    case 'reject':
      setBlockRef(frame, message.block)
      frame.reason = wireValue(WIRE_REJECT_REASONS, message.reason)
      break
  }
  return SwarmFrame.encode(frame)
}

function setBlockRef(frame: Partial<SwarmFrame>, block: BlockRef): void {
  if (typeof block === 'number') frame.leaf = uint32(block, 'a leaf')
  else frame.node = cidBytes(block)
}

function cidBytes(text: string): Uint8Array<ArrayBuffer> {
  let cid: CID
  try {
    cid = CID.parse(text)
  } catch (error) {
    throw new TypeError(`'${text}' is not a CID: ${error instanceof Error ? error.message : String(error)}`, { cause: error })
  }
  return arrayBufferBacked(cid.bytes)
}

function blockBytes(data: BlockData): Uint8Array<ArrayBuffer> {
  if (!(data instanceof Uint8Array)) throw new TypeError(`a block's data must be a Uint8Array to be encoded, not ${data?.constructor?.name ?? typeof data}`)
  return arrayBufferBacked(data)
}

// protons would write the low 32 bits of anything else, a different leaf than the caller meant.
function uint32(value: number, name: string): number {
  if (!Number.isInteger(value) || value < 0 || value > 0xffff_ffff) throw new RangeError(`${name} must be a uint32, not ${value}`)
  return value
}

function wireValue<T>(values: readonly T[], value: T): number {
  const index = values.indexOf(value)
  if (index === -1) throw new RangeError(`'${String(value)}' has no wire value`)
  return index + 1
}

// protons types its byte fields as ArrayBuffer-backed, but encoding only reads them.
function arrayBufferBacked(bytes: Uint8Array): Uint8Array<ArrayBuffer> {
  return bytes as Uint8Array<ArrayBuffer>
}

// --- decoding ------------------------------------------------------------------------------

export function decodeSwarm(bytes: Uint8Array): DecodeResult<SwarmMessage> {
  if (bytes.byteLength > SWARM_FRAME_BYTES_MAX) return refuse('frame-too-large', `${bytes.byteLength} bytes`)
  let frame: SwarmFrame
  try {
    const refusal = scanFields(bytes)
    if (refusal !== undefined) return refusal
    frame = SwarmFrame.decode(bytes)
  } catch (error) {
    // protons' reader, in scanFields as in protons, throws on truncated fields, overlong
    // varints, wire types 6 and 7, and groups nested past the stack.
    return refuse('malformed', error instanceof Error ? error.message : String(error))
  }
  const type = MESSAGE_TYPES[frame.type - 1]
  if (type === undefined) return refuse('unknown-type', String(frame.type))
  if (frame.root.byteLength === 0) return refuse('missing-root')
  const rootText = decodeCid(frame.root, 'root')
  if (!rootText.ok) return rootText
  const root = asContentKey(rootText.value)
  switch (type) {
    case 'bitfield': return decodeBitfield(frame, root)
    case 'have': return decodeHave(frame, root)
    case 'absent':
    case 'interested':
    case 'not-interested':
    case 'choke':
    case 'unchoke':
      return { ok: true, value: { type, root } }
    case 'request':
    case 'cancel': {
      const block = decodeBlockRef(frame)
      return block.ok ? { ok: true, value: { type, root, block: block.value } } : block
    }
    case 'block': return decodeBlock(frame, root)
    case 'reject': {
      const block = decodeBlockRef(frame)
      if (!block.ok) return block
      const reason = WIRE_REJECT_REASONS[frame.reason - 1]
      if (reason === undefined) return refuse('unknown-reject-reason', String(frame.reason))
      return { ok: true, value: { type, root, block: block.value, reason } }
    }
  }
}

// By field number: swarm.proto's wire types (0 varint, 2 length-delimited); field 0 is none.
const FIELD_WIRE_TYPES: readonly (number | undefined)[] = [undefined, 0, 2, 0, 2, 2, 0, 2, 0, 0, 0]
const LEAVES_FIELD = 8

/**
 * What protons does not check, before it reads anything: that each known field has the wire
 * type swarm.proto gives it (protons would read a packed `leaves`, as other encoders write
 * proto3's repeated numbers by default, as one leaf and garbage), and that a frame does not
 * list more leaves than a have may (protons would materialise the 2 MiB frame's million).
 * Throws on malformed protobuf, as protons would.
 */
function scanFields(bytes: Uint8Array): Refusal | undefined {
  const reader = protobufReader(bytes)
  let leafCount = 0
  while (reader.pos < reader.len) {
    const tag = reader.uint32()
    const field = tag >>> 3
    const wireType = tag & 7
    if (field === 0) return refuse('malformed', 'field number 0')
    const expected = FIELD_WIRE_TYPES[field]
    if (expected !== undefined && wireType !== expected) return refuse('malformed', `field ${field} has wire type ${wireType}, not ${expected}`)
    if (field === LEAVES_FIELD && ++leafCount > SWARM_LIMITS.haveLeavesMax) return refuse('too-many-leaves', `over ${SWARM_LIMITS.haveLeavesMax}`)
    reader.skipType(wireType)
  }
  return undefined
}

function decodeCid(bytes: Uint8Array, field: string): DecodeResult<string> {
  if (bytes.byteLength > SWARM_LIMITS.cidBytesMax) return refuse('cid-too-large', `${field}: ${bytes.byteLength} bytes`)
  try {
    return { ok: true, value: CID.decode(bytes).toString() }
  } catch (error) {
    return refuse('invalid-cid', `${field}: ${error instanceof Error ? error.message : String(error)}`)
  }
}

function decodeBitfield(frame: SwarmFrame, root: ContentKey): DecodeResult<SwarmMessage> {
  const { leafCount, bits } = frame
  if (leafCount > SWARM_LIMITS.leafCountMax) return refuse('leaf-count-too-large', String(leafCount))
  if (bits.byteLength !== Math.ceil(leafCount / 8)) return refuse('bitfield-length', `${bits.byteLength} bytes for ${leafCount} leaves`)
  // Leaves fill each byte from its high bit, so the last byte's spare bits are its low ones.
  const spareBitCount = (8 - leafCount % 8) % 8
  if (spareBitCount > 0 && (bits[bits.byteLength - 1]! & (1 << spareBitCount) - 1) !== 0) return refuse('bitfield-spare-bits', `past leaf ${leafCount}`)
  // dagHeld says something only of a DAG without leaves; beside leaves it is ignored, as a
  // field the frame's type does not carry is.
  if (frame.dagHeld && leafCount === 0) return { ok: true, value: { type: 'bitfield', root, leafCount, bits: new Uint8Array(0), dagHeld: true } }
  // A copy: the core may keep a peer's bitfield for the whole session, and a small frame is
  // often a view into a chunk that holds the stream's other frames too.
  return { ok: true, value: { type: 'bitfield', root, leafCount, bits: new Uint8Array(bits) } }
}

function decodeHave(frame: SwarmFrame, root: ContentKey): DecodeResult<SwarmMessage> {
  const { leaves } = frame
  if (leaves.length === 0) return refuse('empty-have')
  for (const leaf of leaves) {
    if (leaf >= SWARM_LIMITS.leafCountMax) return refuse('leaf-out-of-range', String(leaf))
  }
  return { ok: true, value: { type: 'have', root, leaves } }
}

function decodeBlockRef(frame: SwarmFrame): DecodeResult<BlockRef> {
  // proto3 omits an empty `node`, so an empty one is no ref: no CID is empty.
  const hasNode = frame.node.byteLength > 0
  if (frame.leaf === undefined) return hasNode ? decodeCid(frame.node, 'node') : refuse('missing-block-ref')
  if (hasNode) return refuse('ambiguous-block-ref')
  if (frame.leaf >= SWARM_LIMITS.leafCountMax) return refuse('leaf-out-of-range', String(frame.leaf))
  return { ok: true, value: frame.leaf }
}

function decodeBlock(frame: SwarmFrame, root: ContentKey): DecodeResult<SwarmMessage> {
  const { data } = frame
  if (data.byteLength > SWARM_LIMITS.blockBytesMax) return refuse('block-too-large', `${data.byteLength} bytes`)
  const block = decodeBlockRef(frame)
  if (!block.ok) return block
  // A view, not a copy of up to 2 MiB: protons reads a bytes field as a subarray of the frame
  // (it copies the frame only if it is not ArrayBuffer-backed), and a block's frame is its data
  // and a few dozen bytes. Rewrapped so that the core gets a plain Uint8Array even when the
  // driver hands a Buffer, whose slice() would not copy.
  const view = new Uint8Array(data.buffer, data.byteOffset, data.byteLength)
  return { ok: true, value: { type: 'block', root, block: block.value, data: view } }
}

// --- sizes for the simulator ---------------------------------------------------------------

// A type or a reject reason: its tag and a one-byte value, since every value is below 128.
const ENUM_FIELD_BYTES = 2

/**
 * The exact byteLength of encodeSwarm(message) if every root and inner-node ref were a CID
 * of `cidBytes` bytes, whatever its text, computed without encoding or allocating: the
 * simulator charges every message this, and its blocks have a byteLength but no bytes.
 */
export function swarmMessageSize(message: SwarmMessage, cidBytes = NOMINAL_CID_BYTES): number {
  const header = ENUM_FIELD_BYTES + lengthDelimitedSize(cidBytes)
  switch (message.type) {
    // dagHeld: its tag and a one-byte true.
    case 'bitfield': return header + uint32FieldSize(message.leafCount) + bytesFieldSize(message.bits.byteLength) + (message.dagHeld === true ? 2 : 0)
    case 'have': {
      let size = header
      // Unpacked: each leaf has its own tag.
      for (const leaf of message.leaves) size += 1 + varintBytes(leaf)
      return size
    }
    case 'absent':
    case 'interested':
    case 'not-interested':
    case 'choke':
    case 'unchoke':
      return header
    case 'request':
    case 'cancel':
      return header + blockRefSize(message.block, cidBytes)
    case 'block': return header + blockRefSize(message.block, cidBytes) + bytesFieldSize(message.data.byteLength)
    case 'reject': return header + blockRefSize(message.block, cidBytes) + ENUM_FIELD_BYTES
  }
}

// A leaf is an optional field, written even when 0.
function blockRefSize(block: BlockRef, cidBytes: number): number {
  return typeof block === 'number' ? 1 + varintBytes(block) : lengthDelimitedSize(cidBytes)
}

// Every field number in swarm.proto is below 16, so each tag is one byte; proto3 omits a
// zero number and an empty bytes field.
function uint32FieldSize(value: number): number {
  return value === 0 ? 0 : 1 + varintBytes(value)
}

function bytesFieldSize(length: number): number {
  return length === 0 ? 0 : lengthDelimitedSize(length)
}
