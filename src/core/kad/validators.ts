/**
 * Value record validation and selection, by key namespace (libp2p kad-dht spec, "Value
 * storage and retrieval"; libp2p record validators): `/pk/<multihash>` holds the public key
 * whose hash is the multihash; `/ipns/<multihash>` holds an IPNS record signed by that key
 * (IPNS record spec). Keys of any other namespace are refused.
 *
 * Validation is synchronous so that the core can run it inside handle(): the IPNS
 * signature is checked with the key's own verify(), which is synchronous for Ed25519 and
 * secp256k1 keys; a key type whose verify() is asynchronous (RSA) is refused with its own
 * code rather than waited for.
 */
import { publicKeyFromMultihash } from '@libp2p/crypto/keys'
import type { PublicKey } from '@libp2p/interface'
import { sha256 } from '@noble/hashes/sha2.js'
import { extractPublicKeyFromIPNSRecord, type IPNSRecord, multihashFromIPNSRoutingKey, multihashToIPNSRoutingKey, unmarshalIPNSRecord } from 'ipns'
import { ipnsSelector } from 'ipns/selector'
import type { Millis } from '../sans-io.ts'
import { bytesEqual } from './key.ts'

export interface RecordValidator {
  /** undefined when valid; otherwise a short code counted in metrics. */
  validate(key: Uint8Array, value: Uint8Array, now: Millis): string | undefined
  /** Index of the best of several valid values for one key. */
  select(key: Uint8Array, values: readonly Uint8Array[]): number
}

/** Validators by namespace, the text between the key's first two slashes. */
export type RecordValidators = ReadonlyMap<string, RecordValidator>

const NAMESPACE_LENGTH_MAX = 32
const IPNS_RECORD_BYTES_MAX = 10 * 1024
const IDENTITY_CODE = 0x00
const SHA2_256_CODE = 0x12

export function namespaceOf(key: Uint8Array): string | undefined {
  if (key[0] !== 0x2f) return undefined
  const end = key.indexOf(0x2f, 1)
  if (end < 2 || end > NAMESPACE_LENGTH_MAX) return undefined
  return new TextDecoder().decode(key.subarray(1, end))
}

export function validateRecord(validators: RecordValidators, key: Uint8Array, value: Uint8Array, now: Millis): string | undefined {
  const namespace = namespaceOf(key)
  if (namespace === undefined) return 'key-without-namespace'
  const validator = validators.get(namespace)
  if (validator === undefined) return 'namespace-unknown'
  return validator.validate(key, value, now)
}

/** `/pk/<multihash>`: the value is a public key whose sha2-256 (or identity) multihash is in the key. */
export const publicKeyValidator: RecordValidator = {
  validate(key, value) {
    const multihash = key.subarray(4)
    if (multihash.byteLength < 2) return 'pk-key-malformed'
    const code = multihash[0]
    const length = multihash[1]!
    const digest = multihash.subarray(2)
    if (length !== digest.byteLength) return 'pk-key-malformed'
    if (code === SHA2_256_CODE) return bytesEqual(sha256(value), digest) ? undefined : 'pk-hash-mismatch'
    if (code === IDENTITY_CODE) return bytesEqual(value, digest) ? undefined : 'pk-hash-mismatch'
    return 'pk-hash-unsupported'
  },
  // Every valid value for a key is the same key.
  select: () => 0,
}

/** `/ipns/<multihash>`: a signed IPNS record of the key in the multihash, not expired. */
export const ipnsValidator: RecordValidator = {
  validate(key, value, now) {
    if (value.byteLength > IPNS_RECORD_BYTES_MAX) return 'ipns-record-too-large'
    let record: IPNSRecord
    let publicKey: PublicKey | undefined
    try {
      record = unmarshalIPNSRecord(value)
      const routingMultihash = multihashFromIPNSRoutingKey(key)
      publicKey = extractPublicKeyFromIPNSRecord(record) ?? (routingMultihash.code === IDENTITY_CODE ? publicKeyFromMultihash(routingMultihash as Parameters<typeof publicKeyFromMultihash>[0]) : undefined)
    } catch {
      return 'ipns-record-malformed'
    }
    if (publicKey === undefined) return 'ipns-public-key-missing'
    if (!bytesEqual(multihashToIPNSRoutingKey(publicKey.toMultihash()), key)) return 'ipns-key-mismatch'
    let verified: boolean | Promise<boolean>
    try {
      verified = publicKey.verify(signedData(record.data), record.signatureV2)
    } catch {
      return 'ipns-signature-invalid'
    }
    if (typeof verified !== 'boolean') {
      verified.catch(() => {})
      return 'ipns-key-type-unsupported'
    }
    if (!verified) return 'ipns-signature-invalid'
    // Only EOL validity exists; its time carries nanoseconds, which Date.parse drops.
    if (record.validityType !== undefined && record.validityType !== 'EOL') return 'ipns-validity-unsupported'
    const endMs = Date.parse(record.validity)
    if (Number.isNaN(endMs)) return 'ipns-record-malformed'
    return endMs < now ? 'ipns-record-expired' : undefined
  },
  select(key, values) {
    return ipnsSelector(key, [...values])
  },
}

export const DEFAULT_RECORD_VALIDATORS: RecordValidators = new Map([
  ['pk', publicKeyValidator],
  ['ipns', ipnsValidator],
])

const SIGNATURE_PREFIX = new TextEncoder().encode('ipns-signature:')

function signedData(data: Uint8Array): Uint8Array {
  const bytes = new Uint8Array(SIGNATURE_PREFIX.byteLength + data.byteLength)
  bytes.set(SIGNATURE_PREFIX)
  bytes.set(data, SIGNATURE_PREFIX.byteLength)
  return bytes
}
