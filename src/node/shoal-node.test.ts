import { test } from 'node:test'
import assert from 'node:assert/strict'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { CID } from 'multiformats/cid'
import { blockKey, parseCid } from '../core/content/cid.ts'
import { isShoalError } from '../core/errors.ts'
import { onCleanup, pseudoRandomBytes, tempDir } from '../testing/temp.ts'
import type { AddCandidate, ShoalApi } from './api.ts'
import { setConfigValue, readConfig, writeConfig } from './config.ts'
import { initRepo } from './repo.ts'
import { ShoalNode } from './shoal-node.ts'

const MiB = 1024 * 1024

async function openNode(t: test.TestContext, quota?: string): Promise<ShoalNode> {
  const path = join(await tempDir(t), 'repo')
  await initRepo(path)
  if (quota !== undefined) await writeConfig(path, setConfigValue(await readConfig(path), 'storage.quotaBytes', quota))
  const node = await ShoalNode.open(path)
  onCleanup(t, () => node.close())
  return node
}

async function* candidates(...list: AddCandidate[]): AsyncIterable<AddCandidate> {
  yield* list
}

async function* chunksOf(bytes: Uint8Array, chunkBytes = 256 * 1024): AsyncIterable<Uint8Array> {
  for (let offset = 0; offset < bytes.byteLength; offset += chunkBytes) yield bytes.subarray(offset, offset + chunkBytes)
}

function file(path: string, bytes: Uint8Array): AddCandidate {
  return { kind: 'file', path, content: chunksOf(bytes) }
}

async function catBytes(api: ShoalApi, path: string, options = {}): Promise<Buffer> {
  return Buffer.concat(await Array.fromAsync(api.cat(path, options)))
}

test('add pins its roots; cat, stat and ls read them back', async (t) => {
  const node = await openNode(t)
  const bytes = pseudoRandomBytes(3 * MiB + 17, 9)
  const [root] = await node.add(candidates({ kind: 'directory', path: 'd' }, file('d/data.bin', bytes), { kind: 'symlink', path: 'd/alias', target: 'data.bin' }))
  assert.equal(root!.path, 'd')
  assert.deepEqual(await node.pinLs(), [{ cid: root!.cid, type: 'recursive' }])
  assert.deepEqual(await catBytes(node, `${root!.cid}/data.bin`), Buffer.from(bytes))
  assert.deepEqual(await catBytes(node, `/ipfs/${root!.cid}/data.bin`, { offset: MiB - 5, length: 10 }), Buffer.from(bytes.subarray(MiB - 5, MiB + 5)))
  assert.deepEqual(await node.stat(`${root!.cid}/data.bin`), { cid: (await node.stat(`${root!.cid}/data.bin`)).cid, type: 'file', size: bytes.byteLength })
  assert.deepEqual((await node.ls(root!.cid)).map(({ name, type, target }) => ({ name, type, target })), [
    { name: 'alias', type: 'symlink', target: 'data.bin' },
    { name: 'data.bin', type: 'file', target: undefined },
  ])
})

test('bad paths give specific errors', async (t) => {
  const node = await openNode(t)
  const [root] = await node.add(candidates({ kind: 'directory', path: 'd' }, file('d/a', Uint8Array.of(1))))
  const fails = (promise: Promise<unknown>, code: string) => assert.rejects(promise, (error) => isShoalError(error) && error.code === code && !error.message.includes('\n'))
  await fails(node.stat('not-a-cid'), 'INVALID_CID')
  await fails(node.stat(''), 'INVALID_CID')
  await fails(node.stat('bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku'), 'NOT_FOUND')
  await fails(node.stat(`${root!.cid}/missing`), 'PATH_NOT_FOUND')
  // A CID of a codec that is not UnixFS (dag-cbor here; the fuzzer found one it had no reader for).
  const dagCbor = CID.createV1(0x71, CID.parse(root!.cid).multihash).toString()
  for (const call of [node.stat(dagCbor), node.ls(dagCbor), Array.fromAsync(node.cat(dagCbor)), node.pinAdd(dagCbor)]) await fails(call, 'INVALID_CID')
  await fails(node.ls(`${root!.cid}/a`), 'NOT_A_DIRECTORY')
  await fails(Array.fromAsync(node.cat(root!.cid)), 'NOT_A_FILE')
  await fails(node.add(candidates(file('../escape', Uint8Array.of(1)))), 'INVALID_ARGUMENT')
  await fails(node.add(candidates(file('/absolute', Uint8Array.of(1)))), 'INVALID_ARGUMENT')
  await fails(node.pinRm('bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku'), 'PIN_NOT_FOUND')
})

test('gc removes unpinned blocks only', async (t) => {
  const node = await openNode(t)
  const kept = await node.add(candidates(file('kept', pseudoRandomBytes(2 * MiB + 1, 1))))
  const dropped = await node.add(candidates(file('dropped', pseudoRandomBytes(2 * MiB + 1, 2))), { pin: false })
  const before = await node.repoStat()
  assert.equal(before.blockCount, 8, 'two files of three leaves and a root each')
  const result = await node.gc()
  assert.deepEqual(result, { removedBlockCount: 4, removedByteCount: before.byteCount - (await node.repoStat()).byteCount })
  assert.equal((await catBytes(node, kept[0]!.cid)).byteLength, 2 * MiB + 1)
  await assert.rejects(Array.fromAsync(node.cat(dropped[0]!.cid)), (error) => isShoalError(error, 'NOT_FOUND'))
  await node.pinRm(kept[0]!.cid)
  assert.deepEqual(await node.gc(), { removedBlockCount: 4, removedByteCount: before.byteCount - result.removedByteCount })
  assert.equal((await node.repoStat()).blockCount, 0)
})

test('a direct pin keeps one block; a recursive pin needs the whole DAG', async (t) => {
  const node = await openNode(t)
  const [root] = await node.add(candidates(file('f', pseudoRandomBytes(MiB + 1, 4))), { pin: false })
  await node.pinAdd(root!.cid, { recursive: false })
  assert.deepEqual(await node.gc(), { removedBlockCount: 2, removedByteCount: MiB + 1 })
  await assert.rejects(node.pinAdd(root!.cid), (error) => isShoalError(error, 'NOT_FOUND'), 'the leaves are gone')
  const v0 = await node.add(candidates(file('g', Uint8Array.of(1, 2, 3))), { cidProfile: 'unixfs-v0-2015' })
  assert.match(v0[0]!.cid, /^Qm/)
  assert.deepEqual(await node.pinRm(parseCid(v0[0]!.cid).toV1().toString()), { cid: v0[0]!.cid, type: 'recursive' }, 'a CIDv0 pin is removed by its CIDv1')
})

test('an add over the quota fails with QUOTA_EXCEEDED and leaves the repository as it was', async (t) => {
  const node = await openNode(t, '3MiB')
  await node.add(candidates(file('small', pseudoRandomBytes(MiB, 5))))
  const before = await node.repoStat()
  await assert.rejects(node.add(candidates(file('big', pseudoRandomBytes(4 * MiB, 6)))), (error) => isShoalError(error, 'QUOTA_EXCEEDED'))
  assert.deepEqual(await node.repoStat(), before)
  assert.deepEqual((await node.repoVerify()).corrupt, [])
})

test('an aborted add stops, removes what it wrote and keeps what was there', async (t) => {
  const node = await openNode(t)
  const shared = pseudoRandomBytes(MiB, 7)
  await node.add(candidates(file('first', shared)))
  const before = await node.repoStat()
  const controller = new AbortController()
  async function* slowContent(): AsyncIterable<Uint8Array> {
    yield shared // already stored: must survive the rollback
    yield pseudoRandomBytes(MiB, 8)
    controller.abort()
    yield pseudoRandomBytes(MiB, 9)
  }
  await assert.rejects(
    node.add(candidates({ kind: 'file', path: 'second', content: slowContent() }), { signal: controller.signal }),
    (error) => isShoalError(error, 'ABORTED') && error.message === 'add interrupted; nothing was added',
  )
  assert.deepEqual(await node.repoStat(), before)
  assert.equal((await catBytes(node, (await node.pinLs())[0]!.cid)).byteLength, MiB)
})

test('a corrupt block is reported with its CID, never served, and re-adding the content repairs it', async (t) => {
  const node = await openNode(t)
  const bytes = pseudoRandomBytes(2 * MiB, 10)
  const [root] = await node.add(candidates(file('f', bytes)))
  const [firstLeaf] = await Array.fromAsync(node.repo.blocks.cids()).then((cids) => cids.filter((cid) => cid.multihash.bytes.toString() !== parseCid(root!.cid).multihash.bytes.toString()))
  const key = blockKey(firstLeaf!)
  await writeFile(join(node.repo.blocks.root, key.slice(-3, -1), `${key}.data`), pseudoRandomBytes(MiB, 99))
  await assert.rejects(catBytes(node, root!.cid), (error) => isShoalError(error, 'BLOCK_CORRUPT') && error.message.includes(firstLeaf!.toString()))
  assert.deepEqual((await node.repoVerify()).corrupt, [], 'the corrupt copy was already moved out on the read')
  await assert.rejects(catBytes(node, root!.cid), (error) => isShoalError(error, 'NOT_FOUND'))
  await node.add(candidates(file('f', bytes)))
  assert.deepEqual(await catBytes(node, root!.cid), Buffer.from(bytes))
})
