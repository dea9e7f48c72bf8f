/**
 * Frames: unsigned-varint length-prefixed frames (multiformats unsigned-varint, minimal
 * encoding) as every Shoal protocol puts them on a libp2p stream. `encodeFrame` prefixes
 * one frame; `FrameReader` takes a stream's chunks as they arrive and cuts them into
 * frames, checking each length prefix before it buffers the body.
 *
 * Driven by ProtocolDriver (one reader per inbound stream). Owns only the bytes of the
 * frame being assembled: at rest a reader holds at most frameBytesMax + the prefix.
 * Errors are values (a WireError with a stable code), never thrown.
 *
 * Why not lpStream from @libp2p/utils: it throws on bad input (errors at our wire are
 * values), reads the prefix one awaited byte at a time, buffers up to its own 4 MiB
 * regardless of the frame limit, accepts non-minimal prefixes, and @libp2p/utils is not a
 * dependency of ours, only of libp2p.
 */
import { Uint8ArrayList } from 'uint8arraylist'
import * as varint from 'uint8-varint'
import type { WireError } from '../core/sans-io.ts'

/** The prefix of a frame bigger than the reader's frameBytesMax: the body is never read. */
export const FRAME_TOO_LARGE = 'frame-too-large'
/** A prefix that is not a minimal unsigned varint, or longer than any allowed length needs. */
export const BAD_LENGTH_PREFIX = 'bad-length-prefix'

export function varintLength(value: number): number {
  let length = 1
  while (value >= 0x80) {
    value = Math.floor(value / 0x80)
    length++
  }
  return length
}

/** `bytes` with its length as an unsigned varint in front, in one buffer ready to send. */
export function encodeFrame(bytes: Uint8Array): Uint8Array {
  const prefixLength = varintLength(bytes.byteLength)
  const frame = new Uint8Array(prefixLength + bytes.byteLength)
  varint.encode(bytes.byteLength, frame)
  frame.set(bytes, prefixLength)
  return frame
}

/** The frame of a body given in parts (WireCodec.encodeParts): the parts are not copied. */
export function encodeFrameOfParts(parts: readonly Uint8Array[]): Uint8Array | Uint8ArrayList {
  if (parts.length === 1) return encodeFrame(parts[0]!)
  const bodyBytes = parts.reduce((sum, part) => sum + part.byteLength, 0)
  return new Uint8ArrayList(varint.encode(bodyBytes), ...parts)
}

export type FrameRead =
  | { ok: true; frame: Uint8Array }
  /** Not a whole frame yet: wait for more bytes. */
  | { ok: true; frame: undefined }
  | { ok: false; error: WireError }

export class FrameReader {
  readonly #frameBytesMax: number
  readonly #prefixBytesMax: number
  readonly #buffer = new Uint8ArrayList()
  /** Body length of the frame being assembled, once its prefix has been read and checked. */
  #bodyBytes: number | undefined
  #error: WireError | undefined

  constructor(frameBytesMax: number) {
    if (!Number.isSafeInteger(frameBytesMax) || frameBytesMax < 0) throw new RangeError(`frameBytesMax ${frameBytesMax}`)
    this.#frameBytesMax = frameBytesMax
    this.#prefixBytesMax = varintLength(frameBytesMax)
  }

  /** Bytes held for a frame not yet complete. */
  get bufferedBytes(): number {
    return this.#buffer.byteLength
  }

  /**
   * Appends a chunk. Call read() until it returns no frame before pushing more, so that
   * what is held stays within one frame.
   */
  push(chunk: Uint8Array | Uint8ArrayList): void {
    if (this.#error !== undefined) return
    this.#buffer.append(chunk)
  }

  /** The next whole frame, nothing (wait for more), or the error that ends the stream. */
  read(): FrameRead {
    if (this.#error !== undefined) return { ok: false, error: this.#error }
    if (this.#bodyBytes === undefined) {
      const prefix = this.#readPrefix()
      if (prefix === undefined) return { ok: true, frame: undefined }
      if (!prefix.ok) return this.#fail(prefix.error)
      this.#bodyBytes = prefix.length
      this.#buffer.consume(prefix.prefixBytes)
    }
    if (this.#buffer.byteLength < this.#bodyBytes) return { ok: true, frame: undefined }
    const frame = this.#buffer.subarray(0, this.#bodyBytes)
    this.#buffer.consume(this.#bodyBytes)
    this.#bodyBytes = undefined
    return { ok: true, frame }
  }

  #readPrefix(): { ok: true; length: number; prefixBytes: number } | { ok: false; error: WireError } | undefined {
    let length = 0
    let scale = 1
    const available = Math.min(this.#buffer.byteLength, this.#prefixBytesMax)
    for (let index = 0; index < available; index++) {
      const byte = this.#buffer.get(index)
      length += (byte & 0x7f) * scale
      scale *= 0x80
      // Decided as soon as the value passes the bound, so a huge prefix is refused at once.
      if (length > this.#frameBytesMax) return { ok: false, error: { code: FRAME_TOO_LARGE, detail: `at least ${length} bytes, max ${this.#frameBytesMax}` } }
      if ((byte & 0x80) === 0) {
        if (byte === 0 && index > 0) return { ok: false, error: { code: BAD_LENGTH_PREFIX, detail: 'not minimally encoded' } }
        return { ok: true, length, prefixBytes: index + 1 }
      }
    }
    if (this.#buffer.byteLength >= this.#prefixBytesMax) {
      // Only zero continuation bytes get here: a padded prefix longer than any allowed length.
      return { ok: false, error: { code: BAD_LENGTH_PREFIX, detail: `longer than ${this.#prefixBytesMax} bytes` } }
    }
    return undefined
  }

  #fail(error: WireError): FrameRead {
    this.#error = error
    this.#buffer.consume(this.#buffer.byteLength)
    return { ok: false, error }
  }
}
