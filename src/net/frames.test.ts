import assert from 'node:assert/strict'
import { test } from 'node:test'
import { BAD_LENGTH_PREFIX, encodeFrame, encodeFrameOfParts, FRAME_TOO_LARGE, FrameReader, type FrameRead, varintLength } from './frames.ts'

function readAll(reader: FrameReader): FrameRead[] {
  const reads: FrameRead[] = []
  for (;;) {
    const read = reader.read()
    reads.push(read)
    if (!read.ok || read.frame === undefined) return reads
  }
}

function frames(reads: FrameRead[]): number[][] {
  return reads.flatMap((read) => (read.ok && read.frame !== undefined ? [[...read.frame]] : []))
}

test('a prefix is the minimal unsigned varint of the length', () => {
  assert.deepEqual([...encodeFrame(new Uint8Array([7, 8]))], [2, 7, 8])
  assert.deepEqual([...encodeFrame(new Uint8Array(300)).subarray(0, 2)], [0xac, 0x02])
  assert.equal(encodeFrame(new Uint8Array(300)).byteLength, 302)
  assert.equal(varintLength(0), 1)
  assert.equal(varintLength(127), 1)
  assert.equal(varintLength(128), 2)
  assert.equal(varintLength(16_384), 3)
  assert.equal(varintLength(2 ** 40), 6)
})

test('a frame of parts is the frame of their concatenation, the parts not copied', () => {
  const parts = [new Uint8Array([1, 2]), new Uint8Array(300).fill(9)]
  const frame = encodeFrameOfParts(parts)
  assert.ok(!(frame instanceof Uint8Array))
  assert.deepEqual(frame.subarray(), encodeFrame(new Uint8Array([1, 2, ...parts[1]!])))
  assert.equal([...frame][2], parts[1])
  assert.deepEqual(encodeFrameOfParts([parts[0]!]), encodeFrame(parts[0]!))
})

test('frames are cut from chunks split anywhere, several per chunk', () => {
  const bytes = new Uint8Array([...encodeFrame(new Uint8Array([1])), ...encodeFrame(new Uint8Array(200).fill(9)), ...encodeFrame(new Uint8Array(0)), ...encodeFrame(new Uint8Array([3, 4]))])
  for (let split = 0; split <= bytes.byteLength; split++) {
    const reader = new FrameReader(1024)
    reader.push(bytes.subarray(0, split))
    const reads = readAll(reader)
    reader.push(bytes.subarray(split))
    reads.push(...readAll(reader))
    assert.deepEqual(frames(reads), [[1], new Array(200).fill(9), [], [3, 4]], `split at ${split}`)
    assert.equal(reader.bufferedBytes, 0)
  }
})

test('one byte at a time', () => {
  const reader = new FrameReader(1024)
  const bytes = encodeFrame(new Uint8Array(130).fill(5))
  const reads: FrameRead[] = []
  for (const byte of bytes) {
    reader.push(new Uint8Array([byte]))
    reads.push(...readAll(reader))
  }
  assert.deepEqual(frames(reads), [new Array(130).fill(5)])
})

test('an oversize prefix is refused before its body arrives, even before the prefix ends', () => {
  const reader = new FrameReader(1000)
  reader.push(encodeFrame(new Uint8Array(1001)).subarray(0, 2))
  const read = reader.read()
  assert.equal(!read.ok && read.error.code, FRAME_TOO_LARGE)
  assert.equal(reader.bufferedBytes, 0, 'nothing is held after an error')
  reader.push(new Uint8Array(5000))
  assert.equal(reader.bufferedBytes, 0, 'nor afterwards')
  assert.equal(reader.read().ok, false, 'the error sticks')

  // 2^32 as a varint: no 16 KiB length needs more than three prefix bytes.
  const huge = new FrameReader(16 * 1024)
  huge.push(new Uint8Array([0x80, 0x80]))
  assert.deepEqual(huge.read(), { ok: true, frame: undefined }, 'not yet known to be wrong')
  huge.push(new Uint8Array([0x80, 0x80, 0x10]))
  const hugeRead = huge.read()
  assert.equal(!hugeRead.ok && hugeRead.error.code, BAD_LENGTH_PREFIX, 'longer than any allowed prefix')
  const large = new FrameReader(16 * 1024)
  large.push(new Uint8Array([0xff, 0xff, 0xff, 0xff, 0x0f]))
  const largeRead = large.read()
  assert.equal(!largeRead.ok && largeRead.error.code, FRAME_TOO_LARGE)
})

test('a frame of exactly frameBytesMax is accepted', () => {
  const reader = new FrameReader(300)
  reader.push(encodeFrame(new Uint8Array(300)))
  assert.deepEqual(frames(readAll(reader)).map((frame) => frame.length), [300])
})

test('a non-minimal prefix is malformed', () => {
  const reader = new FrameReader(1000)
  reader.push(new Uint8Array([0x81, 0x00, 0x42]))
  const read = reader.read()
  assert.equal(!read.ok && read.error.code, BAD_LENGTH_PREFIX)
  const padded = new FrameReader(100)
  padded.push(new Uint8Array([0x80, 0x80]))
  const paddedRead = padded.read()
  assert.equal(!paddedRead.ok && paddedRead.error.code, BAD_LENGTH_PREFIX)
})

test('a truncated frame waits; what is held stays within one frame', () => {
  const reader = new FrameReader(100)
  const frame = encodeFrame(new Uint8Array(100))
  reader.push(frame.subarray(0, 60))
  assert.deepEqual(reader.read(), { ok: true, frame: undefined })
  assert.ok(reader.bufferedBytes <= 100 + varintLength(100))
})
