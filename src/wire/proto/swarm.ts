import { decodeMessage, encodeMessage, enumeration, MaxLengthError, message, streamMessage } from 'protons-runtime'
import { alloc as uint8ArrayAlloc } from 'uint8arrays/alloc'
import type { Codec, DecodeOptions } from 'protons-runtime'
import type { Uint8ArrayList } from 'uint8arraylist'

export interface SwarmFrame {
  type: number
  root: Uint8Array<ArrayBuffer>
  leaf?: number
  node: Uint8Array<ArrayBuffer>
  data: Uint8Array<ArrayBuffer>
  leafCount: number
  bits: Uint8Array<ArrayBuffer>
  leaves: number[]
  reason: number
  dagHeld: boolean
}

export namespace SwarmFrame {
  export enum Type {
    TYPE_UNSPECIFIED = 'TYPE_UNSPECIFIED',
    BITFIELD = 'BITFIELD',
    ABSENT = 'ABSENT',
    HAVE = 'HAVE',
    INTERESTED = 'INTERESTED',
    NOT_INTERESTED = 'NOT_INTERESTED',
    CHOKE = 'CHOKE',
    UNCHOKE = 'UNCHOKE',
    REQUEST = 'REQUEST',
    CANCEL = 'CANCEL',
    BLOCK = 'BLOCK',
    REJECT = 'REJECT'
  }

  enum __TypeValues {
    TYPE_UNSPECIFIED = 0,
    BITFIELD = 1,
    ABSENT = 2,
    HAVE = 3,
    INTERESTED = 4,
    NOT_INTERESTED = 5,
    CHOKE = 6,
    UNCHOKE = 7,
    REQUEST = 8,
    CANCEL = 9,
    BLOCK = 10,
    REJECT = 11
  }

  export namespace Type {
    export const codec = (): Codec<Type> => {
      return enumeration<Type>(__TypeValues)
    }
  }

  export enum RejectReason {
    REASON_UNSPECIFIED = 'REASON_UNSPECIFIED',
    REASON_ABSENT = 'REASON_ABSENT',
    REASON_CHOKED = 'REASON_CHOKED',
    REASON_OVERLOADED = 'REASON_OVERLOADED',
    REASON_TOO_LARGE = 'REASON_TOO_LARGE'
  }

  enum __RejectReasonValues {
    REASON_UNSPECIFIED = 0,
    REASON_ABSENT = 1,
    REASON_CHOKED = 2,
    REASON_OVERLOADED = 3,
    REASON_TOO_LARGE = 4
  }

  export namespace RejectReason {
    export const codec = (): Codec<RejectReason> => {
      return enumeration<RejectReason>(__RejectReasonValues)
    }
  }

  let _codec: Codec<SwarmFrame>

  export const codec = (): Codec<SwarmFrame> => {
    if (_codec == null) {
      _codec = message<SwarmFrame>((obj, w, opts = {}) => {
        if (opts.lengthDelimited !== false) {
          w.fork()
        }

        if ((obj.type != null && obj.type !== 0)) {
          w.uint32(8)
          w.uint32(obj.type)
        }

        if ((obj.root != null && obj.root.byteLength > 0)) {
          w.uint32(18)
          w.bytes(obj.root)
        }

        if (obj.leaf != null) {
          w.uint32(24)
          w.uint32(obj.leaf)
        }

        if ((obj.node != null && obj.node.byteLength > 0)) {
          w.uint32(34)
          w.bytes(obj.node)
        }

        if ((obj.data != null && obj.data.byteLength > 0)) {
          w.uint32(42)
          w.bytes(obj.data)
        }

        if ((obj.leafCount != null && obj.leafCount !== 0)) {
          w.uint32(48)
          w.uint32(obj.leafCount)
        }

        if ((obj.bits != null && obj.bits.byteLength > 0)) {
          w.uint32(58)
          w.bytes(obj.bits)
        }

        if (obj.leaves != null && obj.leaves.length > 0) {
          for (const value of obj.leaves) {
            w.uint32(64)
            w.uint32(value)
          }
        }

        if ((obj.reason != null && obj.reason !== 0)) {
          w.uint32(72)
          w.uint32(obj.reason)
        }

        if ((obj.dagHeld != null && obj.dagHeld !== false)) {
          w.uint32(80)
          w.bool(obj.dagHeld)
        }

        if (opts.lengthDelimited !== false) {
          w.ldelim()
        }
      }, (reader, length, opts = {}) => {
        const obj: any = {
          type: 0,
          root: uint8ArrayAlloc(0),
          node: uint8ArrayAlloc(0),
          data: uint8ArrayAlloc(0),
          leafCount: 0,
          bits: uint8ArrayAlloc(0),
          leaves: [],
          reason: 0,
          dagHeld: false
        }

        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            case 1: {
              obj.type = reader.uint32()
              break
            }
            case 2: {
              obj.root = reader.bytes()
              break
            }
            case 3: {
              obj.leaf = reader.uint32()
              break
            }
            case 4: {
              obj.node = reader.bytes()
              break
            }
            case 5: {
              obj.data = reader.bytes()
              break
            }
            case 6: {
              obj.leafCount = reader.uint32()
              break
            }
            case 7: {
              obj.bits = reader.bytes()
              break
            }
            case 8: {
              if (opts.limits?.leaves != null && obj.leaves.length === opts.limits.leaves) {
                throw new MaxLengthError('Decode error - repeated field "leaves" had too many elements')
              }

              obj.leaves.push(reader.uint32())
              break
            }
            case 9: {
              obj.reason = reader.uint32()
              break
            }
            case 10: {
              obj.dagHeld = reader.bool()
              break
            }
            default: {
              reader.skipType(tag & 7)
              break
            }
          }
        }

        return obj
      }, function * (reader, length, prefix, opts = {}) {
        const obj = {
          leaves: 0
        }

        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            case 1: {
              yield {
                field: `${prefix}.type`,
                value: reader.uint32()
              }
              break
            }
            case 2: {
              yield {
                field: `${prefix}.root`,
                value: reader.bytes()
              }
              break
            }
            case 3: {
              yield {
                field: `${prefix}.leaf`,
                value: reader.uint32()
              }
              break
            }
            case 4: {
              yield {
                field: `${prefix}.node`,
                value: reader.bytes()
              }
              break
            }
            case 5: {
              yield {
                field: `${prefix}.data`,
                value: reader.bytes()
              }
              break
            }
            case 6: {
              yield {
                field: `${prefix}.leafCount`,
                value: reader.uint32()
              }
              break
            }
            case 7: {
              yield {
                field: `${prefix}.bits`,
                value: reader.bytes()
              }
              break
            }
            case 8: {
              if (opts.limits?.leaves != null && obj.leaves === opts.limits.leaves) {
                throw new MaxLengthError('Streaming decode error - repeated field "leaves" had too many elements')
              }

              yield {
                field: `${prefix}.leaves[]`,
                index: obj.leaves,
                value: reader.uint32()
              }

              obj.leaves++

              break
            }
            case 9: {
              yield {
                field: `${prefix}.reason`,
                value: reader.uint32()
              }
              break
            }
            case 10: {
              yield {
                field: `${prefix}.dagHeld`,
                value: reader.bool()
              }
              break
            }
            default: {
              reader.skipType(tag & 7)
              break
            }
          }
        }
      })
    }

    return _codec
  }

  export interface SwarmFrameTypeFieldEvent {
    field: '$.type'
    value: number
  }

  export interface SwarmFrameRootFieldEvent {
    field: '$.root'
    value: Uint8Array<ArrayBuffer>
  }

  export interface SwarmFrameLeafFieldEvent {
    field: '$.leaf'
    value: number
  }

  export interface SwarmFrameNodeFieldEvent {
    field: '$.node'
    value: Uint8Array<ArrayBuffer>
  }

  export interface SwarmFrameDataFieldEvent {
    field: '$.data'
    value: Uint8Array<ArrayBuffer>
  }

  export interface SwarmFrameLeafCountFieldEvent {
    field: '$.leafCount'
    value: number
  }

  export interface SwarmFrameBitsFieldEvent {
    field: '$.bits'
    value: Uint8Array<ArrayBuffer>
  }

  export interface SwarmFrameLeavesFieldEvent {
    field: '$.leaves[]'
    index: number
    value: number
  }

  export interface SwarmFrameReasonFieldEvent {
    field: '$.reason'
    value: number
  }

  export interface SwarmFrameDagHeldFieldEvent {
    field: '$.dagHeld'
    value: boolean
  }

  export function encode (obj: Partial<SwarmFrame>): Uint8Array<ArrayBuffer> {
    return encodeMessage(obj, SwarmFrame.codec())
  }

  export function decode (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<SwarmFrame>): SwarmFrame {
    return decodeMessage(buf, SwarmFrame.codec(), opts)
  }

  export function stream (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<SwarmFrame>): Generator<SwarmFrameTypeFieldEvent | SwarmFrameRootFieldEvent | SwarmFrameLeafFieldEvent | SwarmFrameNodeFieldEvent | SwarmFrameDataFieldEvent | SwarmFrameLeafCountFieldEvent | SwarmFrameBitsFieldEvent | SwarmFrameLeavesFieldEvent | SwarmFrameReasonFieldEvent | SwarmFrameDagHeldFieldEvent> {
    return streamMessage(buf, SwarmFrame.codec(), opts)
  }
}
