import assert from 'node:assert/strict'
import { test } from 'node:test'
import { Prng } from '../prng.ts'
import { asKey, commonPrefixLength, compareDistance, KEY_BITS, keyFromBytes, randomKeyAtPrefixLength } from './key.ts'

test('keys are SHA-256 of the bytes', () => {
  const key = keyFromBytes(new TextEncoder().encode('abc'))
  assert.equal(Buffer.from(key).toString('hex'), 'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad')
})

test('common prefix length counts leading equal bits', () => {
  const zero = asKey(new Uint8Array(32))
  assert.equal(commonPrefixLength(zero, zero), KEY_BITS)
  const first = new Uint8Array(32)
  first[0] = 0x80
  assert.equal(commonPrefixLength(zero, asKey(first)), 0)
  const tenth = new Uint8Array(32)
  tenth[1] = 0x20
  assert.equal(commonPrefixLength(zero, asKey(tenth)), 10)
})

test('XOR distance orders keys as sorting by XOR does', () => {
  const prng = Prng.fromSeed(9n)
  const random = () => asKey(Uint8Array.from({ length: 32 }, () => prng.int(256)))
  const target = random()
  const keys = Array.from({ length: 200 }, random)
  const sorted = [...keys].sort((a, b) => compareDistance(target, a, b))
  const xorHex = (key: Uint8Array) => Buffer.from(key.map((byte, index) => byte ^ target[index]!)).toString('hex')
  assert.deepEqual(sorted.map(xorHex), keys.map(xorHex).sort())
})

test('a refresh target has exactly the asked prefix length with self', () => {
  const prng = Prng.fromSeed(4n)
  const self = keyFromBytes(Uint8Array.of(1, 2, 3))
  for (const prefixLength of [0, 1, 7, 8, 9, 100, 255]) {
    assert.equal(commonPrefixLength(self, randomKeyAtPrefixLength(self, prefixLength, () => prng.int(256))), prefixLength)
  }
})
