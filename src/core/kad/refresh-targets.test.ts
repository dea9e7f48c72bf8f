import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { commonPrefixLength, keyFromBytes } from './key.ts'
import { PREFIX_COUNT, prefixOf, preimage, REFRESH_PREFIX_LENGTH_MAX, refreshPreimage, shippedPreimageCounters } from './refresh-targets.ts'

describe('refreshPreimage', () => {
  it('ships a table whose every entry hashes to its own prefix', () => {
    const counters = shippedPreimageCounters()
    assert.equal(counters.length, PREFIX_COUNT)
    counters.forEach((counter, prefix) => {
      if (counter === 0 || prefixOf(keyFromBytes(preimage(counter))) !== prefix) assert.fail(`prefix ${prefix}: counter ${counter} is wrong; run npm run generate:refresh-preimages`)
    })
  })

  it('gives preimages whose keys share exactly the asked prefix with self', () => {
    const self = keyFromBytes(new TextEncoder().encode('self'))
    for (let prefixLength = 0; prefixLength <= REFRESH_PREFIX_LENGTH_MAX; prefixLength++) {
      for (let random = 0; random < 5; random++) {
        const { preimage, key } = refreshPreimage(self, prefixLength, random * 7_919)
        assert.deepEqual(keyFromBytes(preimage), key)
        assert.equal(commonPrefixLength(self, key), prefixLength)
      }
    }
    assert.throws(() => refreshPreimage(self, REFRESH_PREFIX_LENGTH_MAX + 1, 0), RangeError)
  })

  it('varies the key where the prefix leaves room', () => {
    const self = keyFromBytes(new TextEncoder().encode('another self'))
    const keys = new Set<string>()
    for (let random = 0; random < 64; random++) keys.add(Buffer.from(refreshPreimage(self, 2, random).key).toString('hex'))
    assert.equal(keys.size, 64)
  })
})
