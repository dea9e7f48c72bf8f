import { test } from 'node:test'
import assert from 'node:assert/strict'
import { importer } from 'ipfs-unixfs-importer'
import { CID } from 'multiformats/cid'
import { identity } from 'multiformats/hashes/identity'
import type { CidProfile } from '../core/content/cid-profile.ts'
import { isShoalError } from '../core/errors.ts'
import { MemoryBlockStore } from '../store/memory-block-store.ts'
import { pseudoRandomBytes } from '../testing/temp.ts'
import { readFile } from './file-reader.ts'

const KiB = 1024

async function imported(bytes: Uint8Array, profile: CidProfile, chunkBytes?: number): Promise<{ store: MemoryBlockStore; root: CID }> {
  const store = new MemoryBlockStore()
  const storage = { put: async (cid: CID, block: Uint8Array) => (await store.put(cid, block), cid) }
  const { fixedSize } = await import('ipfs-unixfs-importer/chunker')
  const { balanced } = await import('ipfs-unixfs-importer/layout')
  let root: CID | undefined
  const options = chunkBytes === undefined ? { profile } : { profile, chunker: fixedSize({ chunkSize: chunkBytes }), layout: balanced({ maxChildrenPerNode: 4 }) }
  for await (const entry of importer([{ content: bytes }], storage, options)) root = entry.cid
  return { store, root: root! }
}

async function read(store: MemoryBlockStore, root: CID, options = {}): Promise<Buffer> {
  return Buffer.concat(await Array.fromAsync(readFile(root, (cid) => store.get(cid), options)))
}

for (const profile of ['unixfs-v1-2025', 'unixfs-v0-2015'] as const) {
  test(`reads whole files and any range of a three-level DAG (${profile})`, async () => {
    const bytes = pseudoRandomBytes(100 * KiB + 7, 1)
    // 1 KiB chunks, 4 links per node: 101 leaves under several levels of inner nodes.
    const { store, root } = await imported(bytes, profile, KiB)
    assert.deepEqual(await read(store, root), Buffer.from(bytes))
    for (const [offset, length] of [[0, 1], [1023, 2], [5000, 40_000], [100 * KiB, 7], [100 * KiB + 6, 10], [200 * KiB, 5], [0, 0]] as const) {
      assert.deepEqual(await read(store, root, { offset, length }), Buffer.from(bytes.subarray(offset, offset + length)), `${offset}+${length}`)
    }
    assert.deepEqual(await read(store, root, { offset: 99 * KiB }), Buffer.from(bytes.subarray(99 * KiB)))
  })
}

test('reads single-block files, empty files and identity CIDs', async () => {
  for (const size of [0, 1, 1000]) {
    const bytes = pseudoRandomBytes(size, 2)
    for (const profile of ['unixfs-v1-2025', 'unixfs-v0-2015'] as const) {
      const { store, root } = await imported(bytes, profile)
      assert.deepEqual(await read(store, root), Buffer.from(bytes), `${size} B ${profile}`)
    }
  }
  const inline = CID.createV1(0x55, identity.digest(new TextEncoder().encode('inline')))
  assert.equal((await read(new MemoryBlockStore(), inline, { offset: 2 })).toString(), 'line')
})

test('never has more than the read-ahead window of leaves in flight', async () => {
  const { store, root } = await imported(pseudoRandomBytes(64 * KiB, 3), 'unixfs-v1-2025', KiB)
  let inFlight = 0
  let inFlightMax = 0
  const slowGet = async (cid: CID) => {
    inFlight += 1
    inFlightMax = Math.max(inFlightMax, inFlight)
    await new Promise((resolve) => setImmediate(resolve))
    inFlight -= 1
    return store.get(cid)
  }
  let total = 0
  for await (const chunk of readFile(root, slowGet, { readAheadBlocks: 3 })) {
    total += chunk.byteLength
    await new Promise((resolve) => setTimeout(resolve, 1)) // a slow consumer
  }
  assert.equal(total, 64 * KiB)
  assert.ok(inFlightMax <= 3, `at most 3 blocks in flight, saw ${inFlightMax}`)
})

test('a directory or a missing block is a typed error', async () => {
  const store = new MemoryBlockStore()
  const storage = { put: async (cid: CID, block: Uint8Array) => (await store.put(cid, block), cid) }
  let directory: CID | undefined
  for await (const entry of importer([{ path: 'd/a', content: Uint8Array.of(1) }], storage)) directory = entry.cid
  await assert.rejects(read(store, directory!), (error) => isShoalError(error, 'NOT_A_FILE'))
  const { root } = await imported(pseudoRandomBytes(10 * KiB, 4), 'unixfs-v1-2025', KiB)
  await assert.rejects(read(new MemoryBlockStore(), root), (error) => isShoalError(error, 'NOT_FOUND'))
})
