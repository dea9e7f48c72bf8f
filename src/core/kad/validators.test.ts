import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { generateKeyPair, publicKeyToProtobuf } from '@libp2p/crypto/keys'
import { sha256 } from '@noble/hashes/sha2.js'
import { createIPNSRecord, marshalIPNSRecord, multihashToIPNSRoutingKey } from 'ipns'
import { concat } from 'uint8arrays/concat'
import { DEFAULT_RECORD_VALIDATORS, ipnsValidator, namespaceOf, publicKeyValidator, validateRecord } from './validators.ts'

const encoder = new TextEncoder()
const VALUE = '/ipfs/bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy'

describe('record validators', () => {
  it('reads the namespace between the first two slashes', () => {
    assert.equal(namespaceOf(encoder.encode('/ipns/abc')), 'ipns')
    assert.equal(namespaceOf(encoder.encode('/pk/x')), 'pk')
    assert.equal(namespaceOf(encoder.encode('ipns/abc')), undefined)
    assert.equal(namespaceOf(encoder.encode('//abc')), undefined)
    assert.equal(namespaceOf(encoder.encode(`/${'n'.repeat(40)}/abc`)), undefined)
    assert.equal(validateRecord(DEFAULT_RECORD_VALIDATORS, encoder.encode('/other/x'), new Uint8Array(1), 0), 'namespace-unknown')
  })

  it('accepts a public key under its sha2-256 multihash and refuses another', async () => {
    const key = publicKeyToProtobuf((await generateKeyPair('Ed25519')).publicKey)
    const routingKey = concat([encoder.encode('/pk/'), new Uint8Array([0x12, 0x20]), sha256(key)])
    assert.equal(publicKeyValidator.validate(routingKey, key, 0), undefined)
    const other = publicKeyToProtobuf((await generateKeyPair('Ed25519')).publicKey)
    assert.equal(publicKeyValidator.validate(routingKey, other, 0), 'pk-hash-mismatch')
    assert.equal(publicKeyValidator.validate(encoder.encode('/pk/'), key, 0), 'pk-key-malformed')
  })

  it('accepts a signed IPNS record, refuses it under another key, tampered, or expired', async () => {
    const privateKey = await generateKeyPair('Ed25519')
    const record = await createIPNSRecord(privateKey, VALUE, 1n, 60_000)
    const bytes = marshalIPNSRecord(record)
    const routingKey = multihashToIPNSRoutingKey(privateKey.publicKey.toMultihash())
    const now = Date.now()
    assert.equal(ipnsValidator.validate(routingKey, bytes, now), undefined)
    const otherKey = multihashToIPNSRoutingKey((await generateKeyPair('Ed25519')).publicKey.toMultihash())
    // An Ed25519 record carries no key: the routing key's own is used, and the signature fails.
    assert.equal(ipnsValidator.validate(otherKey, bytes, now), 'ipns-signature-invalid')
    assert.equal(ipnsValidator.validate(routingKey, bytes, now + 120_000), 'ipns-record-expired')
    const tampered = marshalIPNSRecord({ ...record, signatureV2: record.signatureV2.map((byte, index) => (index === 0 ? byte ^ 1 : byte)) })
    assert.equal(ipnsValidator.validate(routingKey, tampered, now), 'ipns-signature-invalid')
    assert.equal(ipnsValidator.validate(routingKey, new Uint8Array([1, 2, 3]), now), 'ipns-record-malformed')
    assert.equal(ipnsValidator.validate(routingKey, new Uint8Array(20_000), now), 'ipns-record-too-large')
  })

  it('selects the IPNS record with the highest sequence', async () => {
    const privateKey = await generateKeyPair('Ed25519')
    const routingKey = multihashToIPNSRoutingKey(privateKey.publicKey.toMultihash())
    const older = marshalIPNSRecord(await createIPNSRecord(privateKey, VALUE, 1n, 60_000))
    const newer = marshalIPNSRecord(await createIPNSRecord(privateKey, VALUE, 2n, 60_000))
    assert.equal(ipnsValidator.select(routingKey, [older, newer]), 1)
    assert.equal(ipnsValidator.select(routingKey, [newer, older]), 0)
  })
})
