/**
 * CIDs as the rest of Shoal sees them: parsing user input with a specific error, the
 * multihash key a block is stored under, and the check that bytes match their CID.
 */
import { CID } from 'multiformats/cid'
import { base32 } from 'multiformats/bases/base32'
import * as Digest from 'multiformats/hashes/digest'
import { sha256 } from 'multiformats/hashes/sha2'
import { identity } from 'multiformats/hashes/identity'
import { equals } from 'multiformats/bytes'
import { ShoalError } from '../errors.ts'

export const CID_TEXT_LENGTH_MAX = 512

export function parseCid(text: string): CID {
  const trimmed = text.trim()
  if (trimmed.length === 0) throw new ShoalError('INVALID_CID', 'invalid CID: empty string')
  if (trimmed.length > CID_TEXT_LENGTH_MAX) {
    throw new ShoalError('INVALID_CID', `invalid CID: ${trimmed.length} characters is longer than ${CID_TEXT_LENGTH_MAX}`)
  }
  try {
    return CID.parse(trimmed)
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error)
    throw new ShoalError('INVALID_CID', `invalid CID '${abbreviate(trimmed)}': ${reason}`)
  }
}

/**
 * A CID of UnixFS content (dag-pb or raw): what Shoal reads, pins and fetches. Other codecs
 * (dag-cbor, say) parse as CIDs but name nothing Shoal can walk.
 */
export function parseUnixFsCid(text: string): CID {
  const cid = parseCid(text)
  if (cid.code !== DAG_PB_CODE && cid.code !== RAW_CODE) {
    throw new ShoalError('INVALID_CID', `invalid CID '${abbreviate(text.trim())}': codec 0x${cid.code.toString(16)} is not UnixFS (dag-pb 0x70 or raw 0x55)`)
  }
  return cid
}

/**
 * Blocks are stored by multihash, not by CID: the same bytes under a CIDv0 and a CIDv1, or
 * under two codecs, are one block. The key is the base32 multihash, safe as a file name.
 */
export function blockKey(cid: CID): string {
  return base32.baseEncode(cid.multihash.bytes).toUpperCase()
}

export function cidFromBlockKey(key: string): CID {
  const multihash = Digest.decode(base32.baseDecode(key.toLowerCase()))
  return CID.createV1(RAW_CODE, multihash)
}

export const RAW_CODE = 0x55
export const DAG_PB_CODE = 0x70

export type BlockCheck = { ok: true } | { ok: false; reason: 'digest-mismatch' | 'unsupported-hash' }

/** Hashes `bytes` with the CID's own hash function and compares digests. */
export function checkBlock(cid: CID, bytes: Uint8Array): BlockCheck {
  const { code, digest } = cid.multihash
  if (code === sha256.code) {
    const actual = sha256.digest(bytes)
    if (actual instanceof Promise) throw new Error('sha2-256 is synchronous in Node')
    return equals(actual.digest, digest) ? { ok: true } : { ok: false, reason: 'digest-mismatch' }
  }
  if (code === identity.code) {
    return equals(bytes, digest) ? { ok: true } : { ok: false, reason: 'digest-mismatch' }
  }
  return { ok: false, reason: 'unsupported-hash' }
}

function abbreviate(text: string): string {
  return text.length > 64 ? `${text.slice(0, 61)}...` : text
}
