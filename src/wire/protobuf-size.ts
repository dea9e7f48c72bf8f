/**
 * Protobuf sizes computed without encoding, for the simulator's message size functions
 * (kadMessageSize, gossipRpcSize). Every field number they count is below 16, so each tag
 * is one byte.
 */

/** A length-delimited field (bytes, string or submessage) of `length` bytes, tag included. */
export function lengthDelimitedSize(length: number): number {
  return 1 + varintBytes(length) + length
}

// Comparisons first: lengths below 2²⁸ are nearly all the simulator asks about.
export function varintBytes(value: number): number {
  if (value < 0x80) return 1
  if (value < 0x4000) return 2
  if (value < 0x20_0000) return 3
  if (value < 0x1000_0000) return 4
  let bytes = 5
  for (let rest = Math.floor(value / 2 ** 35); rest > 0; rest = Math.floor(rest / 0x80)) bytes++
  return bytes
}

/** Counted as protons counts: a surrogate pair is four bytes, a lone surrogate three, like any other unit above U+07FF. */
export function utf8Bytes(text: string): number {
  let bytes = 0
  for (let index = 0; index < text.length; index++) {
    const unit = text.charCodeAt(index)
    if (unit < 0x80) bytes += 1
    else if (unit < 0x800) bytes += 2
    else if (unit >= 0xd800 && unit < 0xdc00 && (text.charCodeAt(index + 1) & 0xfc00) === 0xdc00) {
      bytes += 4
      index++
    } else bytes += 3
  }
  return bytes
}
