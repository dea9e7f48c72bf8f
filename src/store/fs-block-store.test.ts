import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { blockKey } from '../core/content/cid.ts'
import { isShoalError } from '../core/errors.ts'
import { smallDisk, tempDir } from '../testing/temp.ts'
import { blockStoreContract, rawBlock } from './block-store.contract.ts'
import { FsBlockStore } from './fs-block-store.ts'

const roots: string[] = []
test.after(async () => {
  await Promise.all(roots.map((root) => rm(root, { recursive: true, force: true })))
})

blockStoreContract('FsBlockStore', {
  open: async (options) => {
    const root = await mkdtemp('/tmp/shoal-fs-block-store-')
    roots.push(root)
    return FsBlockStore.open(root, options)
  },
  corrupt: async (store, cid) => {
    const key = blockKey(cid)
    await writeFile(join((store as FsBlockStore).root, key.slice(-3, -1), `${key}.data`), 'bit rot')
  },
})

test('FsBlockStore: one file per block in sharded folders; reopening counts them again', async (t) => {
  const root = await tempDir(t)
  const store = await FsBlockStore.open(root, { quotaBytes: null })
  const blocks = await Promise.all(['a', 'b', 'c'].map((text) => rawBlock(text)))
  for (const { cid, bytes } of blocks) await store.put(cid, bytes)
  await store.close()
  for (const { cid } of blocks) {
    const key = blockKey(cid)
    assert.ok((await readdir(join(root, key.slice(-3, -1)))).includes(`${key}.data`))
  }
  const reopened = await FsBlockStore.open(root, { quotaBytes: null })
  assert.deepEqual(await reopened.stat(), { blockCount: 3, byteCount: 3, quotaBytes: null })
})

test('FsBlockStore: temp files a crash left behind are removed at open and never appear as blocks', async (t) => {
  const root = await tempDir(t)
  const { cid } = await rawBlock('half')
  await mkdir(join(root, '_tmp'), { recursive: true })
  await writeFile(join(root, '_tmp', `${blockKey(cid)}.abc123`), 'ha')
  const store = await FsBlockStore.open(root, { quotaBytes: null })
  assert.deepEqual(await readdir(join(root, '_tmp')), [])
  assert.equal(await store.has(cid), false)
  assert.equal((await store.stat()).blockCount, 0)
})

test('FsBlockStore: a full disk gives DISK_FULL and leaves no partial block', async (t) => {
  const root = await smallDisk(t, '64k')
  if (root === undefined) return t.skip('needs root to mount a small tmpfs')
  const store = await FsBlockStore.open(root, { quotaBytes: null })
  const big = new Uint8Array(128 * 1024).fill(7)
  const { sha256 } = await import('multiformats/hashes/sha2')
  const { CID } = await import('multiformats/cid')
  const cid = CID.createV1(0x55, await sha256.digest(big))
  await assert.rejects(store.put(cid, big), (error) => isShoalError(error, 'DISK_FULL') && /disk full/.test(error.message))
  assert.equal(await store.has(cid), false)
  assert.deepEqual(await readdir(join(root, '_tmp')), [])
  assert.deepEqual(await store.stat(), { blockCount: 0, byteCount: 0, quotaBytes: null })
  const small = await rawBlock('still works')
  assert.equal(await store.put(small.cid, small.bytes), true)
})
