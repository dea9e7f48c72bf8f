/**
 * The BlockStore contract, run against every implementation by its own test file.
 * `corrupt` lets each harness damage a stored block the way its medium would.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { CID } from 'multiformats/cid'
import { sha256 } from 'multiformats/hashes/sha2'
import { RAW_CODE } from '../core/content/cid.ts'
import { isShoalError } from '../core/errors.ts'
import type { BlockStore } from './block-store.ts'

export interface BlockStoreHarness {
  open(options: { quotaBytes: number | null }): Promise<BlockStore>
  corrupt(store: BlockStore, cid: CID): Promise<void>
}

export async function rawBlock(text: string): Promise<{ cid: CID; bytes: Uint8Array }> {
  const bytes = new TextEncoder().encode(text)
  return { cid: CID.createV1(RAW_CODE, await sha256.digest(bytes)), bytes }
}

export function blockStoreContract(name: string, harness: BlockStoreHarness): void {
  test(`${name}: put, has, get and delete a block`, async () => {
    const store = await harness.open({ quotaBytes: null })
    const { cid, bytes } = await rawBlock('hello')
    assert.equal(await store.has(cid), false)
    assert.equal(await store.put(cid, bytes), true)
    assert.equal(await store.has(cid), true)
    assert.deepEqual(await store.get(cid), bytes)
    assert.deepEqual(await store.stat(), { blockCount: 1, byteCount: 5, quotaBytes: null })
    assert.equal(await store.delete(cid), 5)
    assert.equal(await store.delete(cid), 0)
    assert.equal(await store.has(cid), false)
    await assert.rejects(store.get(cid), (error) => isShoalError(error, 'NOT_FOUND') && error.message.includes(cid.toString()))
    await store.close()
  })

  test(`${name}: a block is stored once, whatever CID version or codec names it`, async () => {
    const store = await harness.open({ quotaBytes: null })
    const { cid, bytes } = await rawBlock('same bytes')
    const asDagPb = CID.createV1(0x70, cid.multihash)
    assert.equal(await store.put(cid, bytes), true)
    assert.equal(await store.put(asDagPb, bytes), false)
    const concurrent = await rawBlock('concurrent')
    assert.deepEqual(await Promise.all([store.put(concurrent.cid, concurrent.bytes), store.put(concurrent.cid, concurrent.bytes)]), [true, false])
    assert.equal((await store.stat()).blockCount, 2)
    const listed = (await Array.fromAsync(store.cids())).map((each) => each.multihash.bytes.toString()).sort()
    assert.deepEqual(listed, [cid, concurrent.cid].map((each) => each.multihash.bytes.toString()).sort())
    await store.close()
  })

  test(`${name}: a put over the quota fails with QUOTA_EXCEEDED and stores nothing`, async () => {
    const store = await harness.open({ quotaBytes: 8 })
    const small = await rawBlock('12345')
    const large = await rawBlock('123456789')
    assert.equal(await store.put(small.cid, small.bytes), true)
    await assert.rejects(store.put(large.cid, large.bytes), (error) => isShoalError(error, 'QUOTA_EXCEEDED') && /quota/.test(error.message))
    assert.equal(await store.has(large.cid), false)
    assert.deepEqual(await store.stat(), { blockCount: 1, byteCount: 5, quotaBytes: 8 })
    await store.close()
  })

  test(`${name}: a corrupt block is reported with its CID, never served, and can be stored again`, async () => {
    const store = await harness.open({ quotaBytes: null })
    const { cid, bytes } = await rawBlock('precious')
    await store.put(cid, bytes)
    await harness.corrupt(store, cid)
    await assert.rejects(store.get(cid), (error) => isShoalError(error, 'BLOCK_CORRUPT') && error.message.includes(cid.toString()))
    assert.equal(await store.has(cid), false, 'the corrupt copy is out of the store')
    assert.equal(await store.put(cid, bytes), true, 'a good copy replaces it')
    assert.deepEqual(await store.get(cid), bytes)
    await store.close()
  })

  test(`${name}: a block under a hash Shoal cannot check is refused on read`, async () => {
    const store = await harness.open({ quotaBytes: null })
    const { bytes } = await rawBlock('blake')
    const { create } = await import('multiformats/hashes/digest')
    const unsupported = CID.createV1(RAW_CODE, create(0xb220, new Uint8Array(32)))
    await store.put(unsupported, bytes)
    await assert.rejects(store.get(unsupported), (error) => isShoalError(error, 'INVALID_CID') && /hash function 0xb220/.test(error.message))
    await store.close()
  })
}
