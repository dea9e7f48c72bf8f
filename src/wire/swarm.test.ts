import assert from 'node:assert/strict'
import { test } from 'node:test'
import { base36 } from 'multiformats/bases/base36'
import { CID } from 'multiformats/cid'
import * as Digest from 'multiformats/hashes/digest'
import { identity } from 'multiformats/hashes/identity'
import { sha256 } from 'multiformats/hashes/sha2'
import { type Codec, reader as protobufReader } from 'protons-runtime'
import { DAG_PB_CODE, RAW_CODE } from '../core/content/cid.ts'
import {
  asContentKey, type BlockRef, REJECT_REASONS, SWARM_FRAME_BYTES_MAX, SWARM_LIMITS, SWARM_PROTOCOL, type SwarmMessage,
} from '../core/swarm/messages.ts'
import { SwarmFrame } from './proto/swarm.ts'
import { decodeSwarm, encodeSwarm, encodeSwarmParts, NOMINAL_CID_BYTES, SWARM_WIRE_ERROR_CODES, swarmCodec, swarmMessageSize } from './swarm.ts'

const MEBIBYTE = 1024 * 1024

function sha256Cid(seed: number, code = DAG_PB_CODE): CID {
  return CID.createV1(code, Digest.create(sha256.code, new Uint8Array(32).fill(seed)))
}

function sha256CidV0(seed: number): CID {
  return CID.createV0(Digest.create(sha256.code, new Uint8Array(32).fill(seed)))
}

/** A CIDv1 of exactly `length` bytes: raw codec, identity multihash (4 bytes of header). */
function identityCid(length: number): CID {
  return CID.createV1(RAW_CODE, identity.digest(new Uint8Array(length - 4).fill(1)))
}

const rootCid = sha256Cid(1)
const root = asContentKey(rootCid.toString())
const innerNode = sha256Cid(2).toString()

// The first leaf, another, the last a DAG may have, and an inner node.
const blockRefs: BlockRef[] = [0, 5, SWARM_LIMITS.leafCountMax - 1, innerNode]

/** Every message type, with each kind of block ref and every reject reason; CIDv1 sha2-256 throughout. */
const messages: Record<string, SwarmMessage> = {
  'a bitfield of a peer that knows no leaves yet': { type: 'bitfield', root, leafCount: 0, bits: new Uint8Array(0) },
  'a bitfield of a peer that holds a DAG without leaves': { type: 'bitfield', root, leafCount: 0, bits: new Uint8Array(0), dagHeld: true },
  'a bitfield of one leaf': { type: 'bitfield', root, leafCount: 1, bits: Uint8Array.of(0x80) },
  'a bitfield of 8 leaves': { type: 'bitfield', root, leafCount: 8, bits: Uint8Array.of(0b1011_0001) },
  'a bitfield of 13 leaves': { type: 'bitfield', root, leafCount: 13, bits: Uint8Array.of(0xff, 0b1111_1000) },
  'a bitfield of 1,000 leaves, none held': { type: 'bitfield', root, leafCount: 1_000, bits: new Uint8Array(125) },
  'absent': { type: 'absent', root },
  'have of one leaf': { type: 'have', root, leaves: [7] },
  'have of several leaves, in the order given': { type: 'have', root, leaves: [300, 0, 127, 128, 16_384, SWARM_LIMITS.leafCountMax - 1, 0] },
  'interested': { type: 'interested', root },
  'not-interested': { type: 'not-interested', root },
  'choke': { type: 'choke', root },
  'unchoke': { type: 'unchoke', root },
  ...Object.fromEntries(blockRefs.flatMap((block) => [
    [`request of ${block}`, { type: 'request', root, block }],
    [`cancel of ${block}`, { type: 'cancel', root, block }],
    [`block ${block}`, { type: 'block', root, block, data: Uint8Array.of(1, 2, 3) }],
  ])),
  'an empty block': { type: 'block', root, block: 3, data: new Uint8Array(0) },
  ...Object.fromEntries(REJECT_REASONS.flatMap((reason) => [
    [`reject of a leaf: ${reason}`, { type: 'reject', root, block: 9, reason }],
    [`reject of an inner node: ${reason}`, { type: 'reject', root, block: innerNode, reason }],
  ])),
}

function decoded(bytes: Uint8Array): SwarmMessage {
  const result = decodeSwarm(bytes)
  assert.ok(result.ok, result.ok ? '' : `${result.error.code}: ${result.error.detail}`)
  return result.value
}

function rejectionCode(bytes: Uint8Array): string | undefined {
  const result = decodeSwarm(bytes)
  return result.ok ? undefined : result.error.code
}

test('the codec speaks /shoal/swarm/1.0.0 and bounds frames by SWARM_FRAME_BYTES_MAX', () => {
  assert.equal(swarmCodec.protocol, SWARM_PROTOCOL)
  assert.equal(swarmCodec.fallbackProtocols, undefined)
  assert.equal(swarmCodec.frameBytesMax, SWARM_FRAME_BYTES_MAX)
  const original = messages['have of several leaves, in the order given']!
  assert.deepEqual(swarmCodec.decode(swarmCodec.encode(original)), { ok: true, value: original })
})

test('every message type survives a round trip, with leaf and inner-node refs and every reject reason', () => {
  for (const [name, original] of Object.entries(messages)) assert.deepEqual(decodeSwarm(encodeSwarm(original)), { ok: true, value: original }, name)
})

// swarm.proto's enum values by name, read from the generated codec, so that the test does not
// share the codec's tables.
function protoEnumValues<Name extends string>(codec: Codec<Name>): Map<string, number> {
  const values = new Map<string, number>()
  for (let value = 0; value < 32; value++) {
    try {
      values.set(codec.decode(protobufReader(Uint8Array.of(value))), value)
    } catch {
      // Not a value of this enum.
    }
  }
  return values
}

const wireName = (name: string): string => name.toUpperCase().replaceAll('-', '_')
const TYPE_VALUES = protoEnumValues(SwarmFrame.Type.codec())
const REASON_VALUES = protoEnumValues(SwarmFrame.RejectReason.codec())

function typeValue(type: SwarmMessage['type']): number {
  const value = TYPE_VALUES.get(wireName(type))
  assert.ok(value !== undefined, type)
  return value
}

test('types and reject reasons go on the wire as swarm.proto\'s enum values, none of them 0', () => {
  assert.equal(TYPE_VALUES.size, 12)
  assert.equal(REASON_VALUES.size, REJECT_REASONS.length + 1)
  for (const [name, original] of Object.entries(messages)) {
    const frame = SwarmFrame.decode(encodeSwarm(original))
    assert.equal(frame.type, typeValue(original.type), name)
    if (original.type === 'reject') assert.equal(frame.reason, REASON_VALUES.get(`REASON_${wireName(original.reason)}`), name)
  }
  assert.equal(TYPE_VALUES.get('TYPE_UNSPECIFIED'), 0)
  assert.equal(REASON_VALUES.get('REASON_UNSPECIFIED'), 0)
})

test('the examples cover every type of swarm.proto', () => {
  const exampleTypes = new Set(Object.values(messages).map(({ type }) => wireName(type)))
  assert.deepEqual(exampleTypes, new Set([...TYPE_VALUES.keys()].filter((name) => name !== 'TYPE_UNSPECIFIED')))
})

test('a have of one leaf costs its root CID and 6 bytes; a block of 1 MiB, its root CID, its data and 11', () => {
  const rootBytes = rootCid.bytes.byteLength
  assert.equal(encodeSwarm({ type: 'have', root, leaves: [7] }).byteLength, rootBytes + 6)
  assert.equal(encodeSwarm({ type: 'block', root, block: 1_000, data: new Uint8Array(MEBIBYTE) }).byteLength, rootBytes + MEBIBYTE + 11)
  assert.equal(encodeSwarm({ type: 'request', root, block: 1_000 }).byteLength, rootBytes + 7)
})

test('roots and inner-node refs are read back as canonical CID text: base32 for CIDv1, base58btc for CIDv0', () => {
  const v0 = sha256CidV0(3)
  const v0Message: SwarmMessage = { type: 'request', root: asContentKey(v0.toString()), block: v0.toString() }
  assert.ok(v0.toString().startsWith('Qm'))
  assert.deepEqual(decoded(encodeSwarm(v0Message)), v0Message)
  const raw = sha256Cid(4, RAW_CODE)
  const inBase36: SwarmMessage = { type: 'cancel', root: asContentKey(raw.toString(base36)), block: rootCid.toString(base36) }
  assert.deepEqual(decoded(encodeSwarm(inBase36)), { type: 'cancel', root: raw.toString(), block: rootCid.toString() })
})

test('a block of 2 MiB survives a round trip; one of 2 MiB + 1 byte is refused', () => {
  const data = new Uint8Array(SWARM_LIMITS.blockBytesMax).fill(7)
  const largest: SwarmMessage = { type: 'block', root, block: innerNode, data }
  assert.deepEqual(decoded(encodeSwarm(largest)), largest)
  const tooLarge = encodeSwarm({ type: 'block', root, block: 0, data: new Uint8Array(SWARM_LIMITS.blockBytesMax + 1) })
  assert.ok(tooLarge.byteLength <= SWARM_FRAME_BYTES_MAX, 'refused for its block, not its frame')
  assert.equal(rejectionCode(tooLarge), 'block-too-large')
})

test('the largest block under the largest CIDs fits in a frame', () => {
  const largestCid = identityCid(SWARM_LIMITS.cidBytesMax)
  assert.equal(largestCid.bytes.byteLength, SWARM_LIMITS.cidBytesMax)
  const largest: SwarmMessage = { type: 'block', root: asContentKey(largestCid.toString()), block: largestCid.toString(), data: new Uint8Array(SWARM_LIMITS.blockBytesMax) }
  const bytes = encodeSwarm(largest)
  assert.ok(bytes.byteLength <= SWARM_FRAME_BYTES_MAX, `${bytes.byteLength} bytes`)
  assert.deepEqual(decoded(bytes), largest)
})

test('a block\'s data is read as a plain view of the frame, not a copy; a bitfield\'s bits are copied', () => {
  const frame = encodeSwarm({ type: 'block', root, block: 0, data: new Uint8Array(MEBIBYTE).fill(3) })
  const block = decoded(frame)
  assert.ok(block.type === 'block' && block.data instanceof Uint8Array)
  assert.equal(block.data.buffer, frame.buffer)
  const fromBuffer = decoded(Buffer.from(frame))
  assert.ok(fromBuffer.type === 'block')
  assert.equal(Object.getPrototypeOf(fromBuffer.data), Uint8Array.prototype, 'not a Buffer')
  const bitfieldFrame = encodeSwarm(messages['a bitfield of 13 leaves']!)
  const bitfield = decoded(bitfieldFrame)
  bitfieldFrame.fill(0)
  assert.deepEqual(bitfield, messages['a bitfield of 13 leaves'])
})

test('a block is encoded in parts, its data the last one and not copied; other messages in one', () => {
  const data = new Uint8Array(MEBIBYTE).fill(5)
  for (const block of [0, innerNode] as const) {
    const message: SwarmMessage = { type: 'block', root, block, data }
    const parts = encodeSwarmParts(message)
    assert.equal(parts.length, 2)
    assert.equal(parts[1], data)
    assert.deepEqual(Buffer.concat(parts), Buffer.from(SwarmFrame.encode({ type: 10, root: CID.parse(root).bytes, ...(block === 0 ? { leaf: 0 } : { node: CID.parse(block).bytes }), data })))
    assert.deepEqual(decoded(encodeSwarm(message)), message)
  }
  for (const [name, message] of Object.entries(messages)) {
    const parts = encodeSwarmParts(message)
    if (message.type !== 'block' || (message.data as Uint8Array).byteLength === 0) assert.equal(parts.length, 1, name)
    assert.deepEqual(Buffer.concat(parts), Buffer.from(encodeSwarm(message)), name)
  }
})

test('encoding what the wire cannot carry is a bug in the caller, and throws', () => {
  assert.throws(() => encodeSwarm({ type: 'block', root, block: 0, data: { byteLength: 10 } }), TypeError)
  assert.throws(() => encodeSwarm({ type: 'choke', root: asContentKey('content-17') }), TypeError)
  assert.throws(() => encodeSwarm({ type: 'request', root, block: 'node-3' }), TypeError)
  for (const leaf of [-1, 1.5, 2 ** 32, Number.NaN]) {
    assert.throws(() => encodeSwarm({ type: 'request', root, block: leaf }), RangeError, String(leaf))
    assert.throws(() => encodeSwarm({ type: 'have', root, leaves: [1, leaf] }), RangeError, String(leaf))
    assert.throws(() => encodeSwarm({ type: 'bitfield', root, leafCount: leaf, bits: new Uint8Array(0) }), RangeError, String(leaf))
  }
  assert.throws(() => encodeSwarm({ type: 'reject', root, block: 0, reason: 'bored' as never }), RangeError)
  assert.throws(() => encodeSwarm({ type: 'bitfield', root, leafCount: 8, bits: new Uint8Array(1), dagHeld: true }), /dagHeld goes with leafCount 0, not 8/)
})

// --- swarmMessageSize ----------------------------------------------------------------------

function assertSizeExact(original: SwarmMessage, label: string, cidBytes?: number): void {
  assert.equal(swarmMessageSize(original, cidBytes), encodeSwarm(original).byteLength, label)
}

test('swarmMessageSize is the encoded size of every example', () => {
  for (const [name, original] of Object.entries(messages)) assertSizeExact(original, name)
})

test('swarmMessageSize is the encoded size where numbers and lengths cross varint boundaries', () => {
  const boundaries = [0, 1, 127, 128, 16_383, 16_384, 2_097_151, 2_097_152, SWARM_LIMITS.leafCountMax - 1]
  for (const leaf of boundaries) {
    for (const type of ['request', 'cancel'] as const) assertSizeExact({ type, root, block: leaf }, `${type} ${leaf}`)
    assertSizeExact({ type: 'reject', root, block: leaf, reason: 'too-large' }, `reject ${leaf}`)
    assertSizeExact({ type: 'have', root, leaves: [leaf, leaf, 1] }, `have ${leaf}`)
  }
  for (const leafCount of [0, 1, 7, 8, 9, 127, 128, 1_016, 1_017, 1_024, 131_071, 131_072, 131_073, SWARM_LIMITS.leafCountMax]) {
    assertSizeExact({ type: 'bitfield', root, leafCount, bits: new Uint8Array(Math.ceil(leafCount / 8)) }, `bitfield of ${leafCount}`)
  }
  for (const length of [0, 1, 127, 128, 16_383, 16_384, MEBIBYTE, SWARM_LIMITS.blockBytesMax - 1, SWARM_LIMITS.blockBytesMax]) {
    assertSizeExact({ type: 'block', root, block: 1, data: new Uint8Array(length) }, `block of ${length}`)
    assertSizeExact({ type: 'block', root, block: innerNode, data: new Uint8Array(length) }, `inner block of ${length}`)
  }
  assertSizeExact({ type: 'have', root, leaves: Array.from({ length: SWARM_LIMITS.haveLeavesMax }, (_, leaf) => leaf * 1_000) }, 'the largest have')
})

test('swarmMessageSize counts every CID as cidBytes long: CIDv0s, identity CIDs, synthetic names', () => {
  const v0 = sha256CidV0(5).toString()
  for (const original of [{ type: 'choke', root: asContentKey(v0) }, { type: 'block', root: asContentKey(v0), block: v0, data: Uint8Array.of(1) }] as const) {
    assertSizeExact(original, original.type, 34)
  }
  for (const length of [SWARM_LIMITS.cidBytesMax, 127, 100]) {
    const cid = identityCid(length).toString()
    assertSizeExact({ type: 'reject', root: asContentKey(cid), block: cid, reason: 'absent' }, `${length}-byte CIDs`, length)
  }
  const synthetic: SwarmMessage = { type: 'block', root: asContentKey('content-17'), block: 'node-3', data: { byteLength: MEBIBYTE } }
  const real: SwarmMessage = { type: 'block', root, block: innerNode, data: new Uint8Array(MEBIBYTE) }
  assert.equal(NOMINAL_CID_BYTES, rootCid.bytes.byteLength)
  assert.equal(swarmMessageSize(synthetic), encodeSwarm(real).byteLength)
})

// --- malformed and hostile input ---------------------------------------------------------

const rootBytes = rootCid.bytes as Uint8Array<ArrayBuffer>
const innerNodeBytes = sha256Cid(2).bytes as Uint8Array<ArrayBuffer>

function wireFrame(type: SwarmMessage['type'], fields: Partial<SwarmFrame> = {}): Uint8Array {
  return SwarmFrame.encode({ type: typeValue(type), root: rootBytes, ...fields })
}

const wireLeaves = (count: number): number[] => Array.from({ length: count }, (_, leaf) => leaf)

/** A frame that reaches each code; together, every code there is. */
const refusals: [code: string, bytes: Uint8Array, why: string][] = [
  ['frame-too-large', new Uint8Array(SWARM_FRAME_BYTES_MAX + 1), 'a frame over the bound'],
  ['malformed', Uint8Array.of(0x12, 0x05, 0x01), 'a root cut short'],
  ['too-many-leaves', wireFrame('have', { leaves: wireLeaves(SWARM_LIMITS.haveLeavesMax + 1) }), 'a have over haveLeavesMax'],
  ['unknown-type', SwarmFrame.encode({ type: 12, root: rootBytes }), 'type 12'],
  ['missing-root', SwarmFrame.encode({ type: typeValue('choke') }), 'a choke of nothing'],
  ['cid-too-large', wireFrame('choke', { root: identityCid(SWARM_LIMITS.cidBytesMax + 1).bytes as Uint8Array<ArrayBuffer> }), 'a root over cidBytesMax'],
  ['invalid-cid', wireFrame('choke', { root: Uint8Array.of(1, 2, 3) }), 'a root that is not a CID'],
  ['leaf-count-too-large', wireFrame('bitfield', { leafCount: SWARM_LIMITS.leafCountMax + 1, bits: new Uint8Array(SWARM_LIMITS.leafCountMax / 8 + 1) }), 'a bitfield over leafCountMax'],
  ['bitfield-length', wireFrame('bitfield', { leafCount: 9, bits: new Uint8Array(1) }), 'a bitfield of 9 leaves in one byte'],
  ['bitfield-spare-bits', wireFrame('bitfield', { leafCount: 9, bits: Uint8Array.of(0, 0x40) }), 'a bitfield of 9 leaves that holds a tenth'],
  ['empty-have', wireFrame('have'), 'a have of nothing'],
  ['leaf-out-of-range', wireFrame('have', { leaves: [SWARM_LIMITS.leafCountMax] }), 'a have of leaf leafCountMax'],
  ['missing-block-ref', wireFrame('request'), 'a request of nothing'],
  ['ambiguous-block-ref', wireFrame('request', { leaf: 0, node: innerNodeBytes }), 'a request of a leaf and a node'],
  ['block-too-large', wireFrame('block', { leaf: 0, data: new Uint8Array(SWARM_LIMITS.blockBytesMax + 1) }), 'a block over blockBytesMax'],
  ['unknown-reject-reason', wireFrame('reject', { leaf: 0 }), 'a reject without a reason'],
]

test('every error code is reached by a frame of its own, and SWARM_WIRE_ERROR_CODES lists exactly those', () => {
  for (const [code, bytes, why] of refusals) assert.equal(rejectionCode(bytes), code, why)
  assert.deepEqual(new Set(refusals.map(([code]) => code)), SWARM_WIRE_ERROR_CODES)
})

test('bounds are inclusive: at its bound, each is read', () => {
  const { haveLeavesMax, leafCountMax, cidBytesMax, blockBytesMax } = SWARM_LIMITS
  assert.equal(decoded(wireFrame('have', { leaves: wireLeaves(haveLeavesMax) })).type, 'have')
  assert.deepEqual(decoded(wireFrame('have', { leaves: [leafCountMax - 1] })), { type: 'have', root, leaves: [leafCountMax - 1] })
  assert.equal(decoded(wireFrame('bitfield', { leafCount: leafCountMax, bits: new Uint8Array(leafCountMax / 8).fill(0xff) })).type, 'bitfield')
  const largestCid = identityCid(cidBytesMax)
  assert.deepEqual(decoded(wireFrame('cancel', { root: largestCid.bytes as Uint8Array<ArrayBuffer>, node: largestCid.bytes as Uint8Array<ArrayBuffer> })), {
    type: 'cancel', root: largestCid.toString(), block: largestCid.toString(),
  })
  assert.equal(decoded(wireFrame('block', { leaf: 0, data: new Uint8Array(blockBytesMax) })).type, 'block')
})

test('block refs are checked wherever they travel: request, cancel, block and reject', () => {
  const tooLongCid = identityCid(SWARM_LIMITS.cidBytesMax + 1).bytes as Uint8Array<ArrayBuffer>
  for (const type of ['request', 'cancel', 'block', 'reject'] as const) {
    const reason = type === 'reject' ? { reason: 1 } : {}
    assert.equal(rejectionCode(wireFrame(type, reason)), 'missing-block-ref', type)
    assert.equal(rejectionCode(wireFrame(type, { ...reason, leaf: 1, node: innerNodeBytes })), 'ambiguous-block-ref', type)
    assert.equal(rejectionCode(wireFrame(type, { ...reason, leaf: SWARM_LIMITS.leafCountMax })), 'leaf-out-of-range', type)
    assert.equal(rejectionCode(wireFrame(type, { ...reason, leaf: 2 ** 32 - 1 })), 'leaf-out-of-range', type)
    assert.equal(rejectionCode(wireFrame(type, { ...reason, node: Uint8Array.of(0x01, 0x70) })), 'invalid-cid', type)
    assert.equal(rejectionCode(wireFrame(type, { ...reason, node: tooLongCid })), 'cid-too-large', type)
  }
  assert.equal(rejectionCode(wireFrame('reject', { leaf: 0, reason: REJECT_REASONS.length + 1 })), 'unknown-reject-reason')
})

test('roots that are not CIDs are refused: bad version, truncated digest, trailing bytes', () => {
  const invalid = [
    Uint8Array.of(0x03, 0x70, 0x12, 0x20, ...new Uint8Array(32)),
    rootBytes.subarray(0, rootBytes.byteLength - 1),
    Uint8Array.of(...rootBytes, 0),
    Uint8Array.of(0x12, 0x20, ...new Uint8Array(31)),
  ]
  for (const bytes of invalid) assert.equal(rejectionCode(wireFrame('choke', { root: new Uint8Array(bytes) })), 'invalid-cid', String(bytes))
})

test('a bitfield\'s length and spare bits are checked at every remainder of 8', () => {
  for (let leafCount = 1; leafCount <= 16; leafCount++) {
    const length = Math.ceil(leafCount / 8)
    const full = new Uint8Array(length).fill(0xff)
    const spareBitCount = length * 8 - leafCount
    full[length - 1]! &= 0xff << spareBitCount
    assert.deepEqual(decoded(wireFrame('bitfield', { leafCount, bits: full })), { type: 'bitfield', root, leafCount, bits: full }, `${leafCount} leaves`)
    if (spareBitCount > 0) {
      const spare = full.slice()
      spare[length - 1]! |= 1
      assert.equal(rejectionCode(wireFrame('bitfield', { leafCount, bits: spare })), 'bitfield-spare-bits', `${leafCount} leaves`)
    }
    assert.equal(rejectionCode(wireFrame('bitfield', { leafCount, bits: new Uint8Array(length + 1) })), 'bitfield-length')
    assert.equal(rejectionCode(wireFrame('bitfield', { leafCount, bits: new Uint8Array(length - 1) })), 'bitfield-length')
  }
  assert.equal(rejectionCode(wireFrame('bitfield', { leafCount: 0, bits: Uint8Array.of(0) })), 'bitfield-length')
})

test('truncated frames are refused as malformed or, cut between fields, read as the shorter frame', () => {
  for (const original of [messages['block 5']!, messages['a bitfield of 13 leaves']!, messages['have of several leaves, in the order given']!]) {
    const valid = encodeSwarm(original)
    for (let length = 0; length < valid.byteLength; length++) {
      const result = decodeSwarm(valid.subarray(0, length))
      assert.ok(result.ok || SWARM_WIRE_ERROR_CODES.has(result.error.code), `${original.type} cut at ${length}: ${result.ok ? '' : result.error.code}`)
    }
    assert.equal(rejectionCode(valid.subarray(0, valid.byteLength - 1)), 'malformed', original.type)
  }
  // Cut between fields: a type alone has no root, a have without its leaves is empty.
  assert.equal(rejectionCode(encodeSwarm(messages['choke']!).subarray(0, 2)), 'missing-root')
  assert.equal(rejectionCode(encodeSwarm(messages['have of one leaf']!).subarray(0, 2 + 2 + rootBytes.byteLength)), 'empty-have')
})

test('garbage and trailing bytes are refused as malformed', () => {
  const valid = encodeSwarm(messages['have of one leaf']!)
  assert.equal(rejectionCode(Uint8Array.of(...valid, 0x40)), 'malformed')
  assert.equal(rejectionCode(Uint8Array.of(...valid, 0x2a, 0x05, 0x01)), 'malformed')
  assert.equal(rejectionCode(new Uint8Array(11).fill(0xff)), 'malformed')
  assert.equal(rejectionCode(Uint8Array.of(0x0f)), 'malformed')
  // An end-group tag (of unknown field 15) without its start.
  assert.equal(rejectionCode(Uint8Array.of(...valid, 15 << 3 | 4)), 'malformed')
  // Nested start-group tags on an unknown field: protons' reader skips them by recursion.
  assert.equal(rejectionCode(new Uint8Array(SWARM_FRAME_BYTES_MAX).fill(0x53)), 'malformed')
})

test('known fields of the wrong wire type are refused as malformed, though protons alone would read them', () => {
  const header = encodeSwarm(messages['absent']!)
  const misreadings: [string, Uint8Array][] = [
    // Packed, as proto3 encoders write repeated numbers by default: protons reads the length as a leaf, then a type.
    ['packed leaves 8 and 3', Uint8Array.of(...wireFrame('have'), 8 << 3 | 2, 2, 0x08, 0x03)],
    // protons reads the length, 6, as the type (unchoke), then the root.
    ['type as bytes', Uint8Array.of(1 << 3 | 2, 6, ...header.subarray(2))],
    ['leaf as fixed32', Uint8Array.of(...wireFrame('request'), 3 << 3 | 5, 0x87, 0x01, 6 << 3 | 0, 1)],
    ['data as a varint', Uint8Array.of(...header, 5 << 3 | 0, 2, 6 << 3 | 0, 1)],
    // protons reads the length, 2, as true, then the bytes as a leafCount of 0.
    ['dagHeld as bytes', Uint8Array.of(...wireFrame('bitfield'), 10 << 3 | 2, 2, 6 << 3 | 0, 0)],
    ['reason as fixed64', Uint8Array.of(...wireFrame('reject', { leaf: 0 }), 9 << 3 | 1, 1, 6 << 3 | 0, 1, 6 << 3 | 0, 1, 6 << 3 | 0, 0x81, 0x01)],
  ]
  for (const [name, bytes] of misreadings) {
    assert.doesNotThrow(() => SwarmFrame.decode(bytes), name)
    assert.equal(rejectionCode(bytes), 'malformed', name)
  }
  assert.equal(rejectionCode(Uint8Array.of(0 << 3 | 0, 1, ...header)), 'malformed', 'field number 0')
})

test('an empty frame has no type; an unknown type is refused, whatever else the frame holds', () => {
  assert.equal(rejectionCode(new Uint8Array(0)), 'unknown-type')
  assert.equal(rejectionCode(SwarmFrame.encode({ root: rootBytes, leaves: [1] })), 'unknown-type')
  assert.equal(rejectionCode(SwarmFrame.encode({ type: 2 ** 32 - 1, root: rootBytes })), 'unknown-type')
})

test('unknown fields, and fields that the frame\'s type does not carry, are skipped', () => {
  // Fields 14 (varint), 11 (bytes), 12 (fixed32), 13 (a group) and 1000 (varint, a two-byte tag).
  const unknownFields = [14 << 3 | 0, 1, 11 << 3 | 2, 2, 0, 0, 12 << 3 | 5, 0, 0, 0, 0, 13 << 3 | 3, 14 << 3 | 0, 1, 13 << 3 | 4, 0xc0, 0x3e, 1]
  const future = Uint8Array.of(...unknownFields.slice(0, 2), ...encodeSwarm(messages['have of one leaf']!), ...unknownFields.slice(2))
  assert.deepEqual(decoded(future), messages['have of one leaf'])
  const everything = { leaf: 1, node: innerNodeBytes, data: new Uint8Array(10), leafCount: 9, bits: Uint8Array.of(0xff), leaves: [SWARM_LIMITS.leafCountMax], reason: 99, dagHeld: true }
  for (const type of ['absent', 'interested', 'not-interested', 'choke', 'unchoke'] as const) {
    assert.deepEqual(decoded(wireFrame(type, everything)), { type, root }, type)
  }
  assert.deepEqual(decoded(wireFrame('have', { ...everything, leaves: [4] })), { type: 'have', root, leaves: [4] })
  assert.deepEqual(decoded(wireFrame('request', { ...everything, node: undefined })), { type: 'request', root, block: 1 })
  // dagHeld speaks of a DAG without leaves: beside leaves it is not carried.
  assert.deepEqual(decoded(wireFrame('bitfield', { leafCount: 8, bits: Uint8Array.of(0xff), dagHeld: true })), { type: 'bitfield', root, leafCount: 8, bits: Uint8Array.of(0xff) })
})

test('a frame with a field twice is read as protobuf reads it: the last value wins', () => {
  const twice = Uint8Array.of(...wireFrame('request', { leaf: 1 }), 3 << 3 | 0, 2)
  assert.deepEqual(decoded(twice), { type: 'request', root, block: 2 })
})
