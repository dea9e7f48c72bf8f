/**
 * CID conformance: Shoal's `add` (files on disk → walker → importer → FsBlockStore) must give
 * the CIDs of the IPIP-499 profiles. The expected CIDs come by independent routes: the
 * reference importer called directly on the bytes in memory with the profile, and for
 * small files a DAG built by hand from sha2-256 digests.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { mkdir, symlink, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { importer, type ImportCandidate } from 'ipfs-unixfs-importer'
import { MemoryBlockstore } from 'blockstore-core/memory'
import { UnixFS } from 'ipfs-unixfs'
import * as dagPb from '@ipld/dag-pb'
import { CID } from 'multiformats/cid'
import * as Digest from 'multiformats/hashes/digest'
import type { CidProfile } from '../core/content/cid-profile.ts'
import { onCleanup, pseudoRandomBytes, tempDir } from '../testing/temp.ts'
import { scanPaths } from './fs-source.ts'
import { initRepo } from './repo.ts'
import { ShoalNode } from './shoal-node.ts'

const MiB = 1024 * 1024
const PROFILES: CidProfile[] = ['unixfs-v1-2025', 'unixfs-v0-2015']

async function openNode(t: test.TestContext): Promise<{ node: ShoalNode; dir: string }> {
  const dir = await tempDir(t)
  await initRepo(join(dir, 'repo'))
  const node = await ShoalNode.open(join(dir, 'repo'))
  onCleanup(t, () => node.close())
  return { node, dir }
}

async function shoalAdd(node: ShoalNode, path: string, profile: CidProfile, hidden = false): Promise<string> {
  const source = await scanPaths([path], { hidden })
  const roots = await node.add(source.candidates(), { cidProfile: profile, fileConcurrency: 16 })
  assert.equal(roots.length, 1)
  return roots[0]!.cid
}

/** The reference importer, in memory; the root is the last entry it yields. */
async function referenceCid(candidates: ImportCandidate[], profile: CidProfile, blockstore = new MemoryBlockstore()): Promise<string> {
  let last: string | undefined
  for await (const entry of importer(candidates, blockstore, { profile })) last = entry.cid.toString()
  assert.ok(last !== undefined)
  return last
}

function sha256Multihash(bytes: Uint8Array): Digest.Digest<0x12, number> {
  return Digest.create(0x12, createHash('sha256').update(bytes).digest())
}

test('single-block files under unixfs-v1-2025 are raw leaves: CIDv1(raw, sha2-256(bytes))', async (t) => {
  const { node, dir } = await openNode(t)
  for (const size of [0, 1, MiB]) {
    const bytes = pseudoRandomBytes(size, size + 7)
    await writeFile(join(dir, `f${size}`), bytes)
    const byHand = CID.createV1(0x55, sha256Multihash(bytes)).toString()
    assert.equal(await shoalAdd(node, join(dir, `f${size}`), 'unixfs-v1-2025'), byHand, `${size} B`)
  }
  // The empty file's CID as every implementation of the profile prints it.
  assert.equal(await shoalAdd(node, join(dir, 'f0'), 'unixfs-v1-2025'), 'bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku')
})

test('1 MiB + 1 B under unixfs-v1-2025 is a dag-pb root over two raw leaves, built by hand', async (t) => {
  const { node, dir } = await openNode(t)
  const bytes = pseudoRandomBytes(MiB + 1, 3)
  await writeFile(join(dir, 'f'), bytes)
  const leaves = [bytes.subarray(0, MiB), bytes.subarray(MiB)].map((leaf) => ({ cid: CID.createV1(0x55, sha256Multihash(leaf)), size: leaf.byteLength }))
  const data = new UnixFS({ type: 'file', blockSizes: leaves.map((leaf) => BigInt(leaf.size)) }).marshal()
  const root = dagPb.encode(dagPb.prepare({ Data: data, Links: leaves.map((leaf) => ({ Hash: leaf.cid, Name: '', Tsize: leaf.size })) }))
  const byHand = CID.createV1(0x70, sha256Multihash(root)).toString()
  assert.equal(await shoalAdd(node, join(dir, 'f'), 'unixfs-v1-2025'), byHand)
})

test('a 1 B file under unixfs-v0-2015 is a CIDv0 dag-pb node holding the bytes, built by hand', async (t) => {
  const { node, dir } = await openNode(t)
  const bytes = Uint8Array.of(0x61)
  await writeFile(join(dir, 'a'), bytes)
  const data = new UnixFS({ type: 'file', data: bytes }).marshal()
  const block = dagPb.encode(dagPb.prepare({ Data: data, Links: [] }))
  const byHand = CID.createV0(sha256Multihash(block)).toString()
  assert.match(byHand, /^Qm/)
  assert.equal(await shoalAdd(node, join(dir, 'a'), 'unixfs-v0-2015'), byHand)
})

for (const profile of PROFILES) {
  test(`files of 0 B to 100 MiB match the reference importer under ${profile}`, async (t) => {
    const { node, dir } = await openNode(t)
    for (const size of [0, 1, MiB, MiB + 1, 10 * MiB, 100 * MiB]) {
      const bytes = pseudoRandomBytes(size, size + 11)
      await writeFile(join(dir, 'f'), bytes)
      const expected = await referenceCid([{ content: bytes }], profile)
      assert.equal(await shoalAdd(node, join(dir, 'f'), profile), expected, `${size} B`)
      assert.equal(expected.startsWith('Qm'), profile === 'unixfs-v0-2015', 'CID version follows the profile')
    }
  })

  test(`a nested directory matches the reference importer under ${profile}: empty folders kept, hidden entries only on request, symlinks preserved`, async (t) => {
    const { node, dir } = await openNode(t)
    const root = join(dir, 'tree')
    const files: Record<string, Uint8Array> = {
      'a.txt': new TextEncoder().encode('alpha\n'),
      'sub/b.bin': pseudoRandomBytes(MiB + MiB / 2, 5),
      'sub/deeper/c.txt': new TextEncoder().encode('gamma\n'),
      '.hidden/x': new TextEncoder().encode('x'),
      'sub/.dotfile': new TextEncoder().encode('dot'),
    }
    for (const [path, bytes] of Object.entries(files)) {
      await mkdir(join(root, path, '..'), { recursive: true })
      await writeFile(join(root, path), bytes)
    }
    await mkdir(join(root, 'empty'))
    await symlink('a.txt', join(root, 'link'))
    const isHidden = (path: string) => path.split('/').some((segment) => segment.startsWith('.'))
    const reference = (hidden: boolean): ImportCandidate[] => [
      ...Object.entries(files).filter(([path]) => hidden || !isHidden(path)).map(([path, content]) => ({ path: `tree/${path}`, content })),
      { path: 'tree/empty' },
      { path: 'tree/link', link: 'a.txt' },
    ]
    const withoutHidden = await shoalAdd(node, root, profile)
    assert.equal(withoutHidden, await referenceCid(reference(false), profile))
    const withHidden = await shoalAdd(node, root, profile, true)
    assert.equal(withHidden, await referenceCid(reference(true), profile))
    assert.notEqual(withHidden, withoutHidden)
    assert.deepEqual((await node.ls(withoutHidden)).map((entry) => `${entry.name}:${entry.type}`), ['a.txt:file', 'empty:directory', 'link:symlink', 'sub:directory'])
  })
}

test('a directory over 256 KiB of block bytes becomes a HAMT under unixfs-v1-2025, as in the reference', async (t) => {
  const { node, dir } = await openNode(t)
  const root = join(dir, 'wide')
  await mkdir(root)
  const candidates: ImportCandidate[] = []
  for (let i = 0; i < 5000; i++) {
    const name = `file-${String(i).padStart(5, '0')}`
    const content = new TextEncoder().encode(`${i}`)
    await writeFile(join(root, name), content)
    candidates.push({ path: `wide/${name}`, content })
  }
  for (const profile of PROFILES) {
    const blockstore = new MemoryBlockstore()
    const expected = await referenceCid(candidates, profile, blockstore)
    assert.equal(await shoalAdd(node, root, profile), expected, profile)
    const rootBlock = Buffer.concat(await Array.fromAsync(blockstore.get(CID.parse(expected))))
    const type = UnixFS.unmarshal(dagPb.decode(rootBlock).Data!).type
    // 5000 links of ~55 bytes: over 256 KiB by block bytes (v1), under it by name + hash bytes (v0).
    assert.equal(type, profile === 'unixfs-v1-2025' ? 'hamt-sharded-directory' : 'directory', profile)
  }
})
