/**
 * FsBlockStore: one file per block under `blocks/<shard>/<KEY>.data`, where KEY is the
 * base32 multihash and the shard its next-to-last two characters (go-ds-flatfs's layout).
 * A block is written to `_tmp/`, fsynced and renamed into place, so a crash at any instant
 * leaves either the whole block under its name or nothing; flush() fsyncs the shard
 * folders the renames touched. Reads verify the hash; a corrupt file moves to `_corrupt/`.
 */
import { mkdir, open, readdir, readFile, rename, rm, stat, unlink } from 'node:fs/promises'
import { join } from 'node:path'
import { randomBytes } from 'node:crypto'
import type { CID } from 'multiformats/cid'
import { blockKey, cidFromBlockKey } from '../core/content/cid.ts'
import { ShoalError, systemErrorCode } from '../core/errors.ts'
import { corruptBlockError, matchesCid, type BlockStore, type BlockStoreStat } from './block-store.ts'
import { ByteBudget } from './quota.ts'

const TEMP_FOLDER = '_tmp'
const CORRUPT_FOLDER = '_corrupt'
const BLOCK_SUFFIX = '.data'

export interface FsBlockStoreOptions {
  quotaBytes: number | null
}

export class FsBlockStore implements BlockStore {
  readonly root: string
  readonly #budget: ByteBudget
  readonly #knownShards = new Set<string>()
  readonly #dirtyShards = new Set<string>()
  readonly #pendingPuts = new Map<string, Promise<boolean>>()
  /** Counting the blocks reads every folder: it runs in the background, and only what needs the counts waits for it. */
  #counted: Promise<void> = Promise.resolve()

  private constructor(root: string, budget: ByteBudget) {
    this.root = root
    this.#budget = budget
  }

  /** Opens (creating if needed) the store, removes temp files a crash left, and starts counting the blocks. */
  static async open(root: string, options: FsBlockStoreOptions): Promise<FsBlockStore> {
    const store = new FsBlockStore(root, new ByteBudget(options.quotaBytes))
    await rm(join(root, TEMP_FOLDER), { recursive: true, force: true })
    await mkdir(join(root, TEMP_FOLDER), { recursive: true })
    store.#counted = (async () => {
      for await (const { size } of store.#files()) store.#budget.added(size)
    })()
    store.#counted.catch(() => {}) // surfaces where it is awaited
    return store
  }

  has(cid: CID): Promise<boolean> {
    return exists(this.#path(blockKey(cid)))
  }

  async get(cid: CID): Promise<Uint8Array> {
    const key = blockKey(cid)
    let bytes: Uint8Array
    try {
      const buffer = await readFile(this.#path(key))
      bytes = new Uint8Array(buffer.buffer, buffer.byteOffset, buffer.byteLength)
    } catch (error) {
      if (systemErrorCode(error) === 'ENOENT') throw new ShoalError('NOT_FOUND', `block ${cid} not found`)
      throw error
    }
    if (matchesCid(cid, bytes)) return bytes
    const quarantined = await this.#quarantine(key, bytes.byteLength)
    throw corruptBlockError(cid, `moved to ${quarantined}`)
  }

  put(cid: CID, bytes: Uint8Array): Promise<boolean> {
    const key = blockKey(cid)
    // Two concurrent puts of one block would both write and count it; the second waits instead.
    const pending = this.#pendingPuts.get(key)
    if (pending !== undefined) return pending.then(() => false)
    const put = this.#put(key, bytes).finally(() => this.#pendingPuts.delete(key))
    this.#pendingPuts.set(key, put)
    return put
  }

  async delete(cid: CID): Promise<number> {
    await this.#counted
    const path = this.#path(blockKey(cid))
    try {
      const { size } = await stat(path)
      await unlink(path)
      this.#budget.removed(size)
      return size
    } catch (error) {
      if (systemErrorCode(error) === 'ENOENT') return 0
      throw error
    }
  }

  async *cids(): AsyncIterable<CID> {
    for await (const { key } of this.#files()) yield cidFromBlockKey(key)
  }

  async stat(): Promise<BlockStoreStat> {
    await this.#counted
    return { blockCount: this.#budget.blockCount, byteCount: this.#budget.byteCount, quotaBytes: this.#budget.quotaBytes }
  }

  async flush(): Promise<void> {
    const shards = [...this.#dirtyShards]
    this.#dirtyShards.clear()
    await Promise.all(shards.map((shard) => fsyncFolder(join(this.root, shard))))
  }

  async close(): Promise<void> {
    await this.#counted.catch(() => {})
    await this.flush()
  }

  async #put(key: string, bytes: Uint8Array): Promise<boolean> {
    await this.#counted
    const path = this.#path(key)
    if (await exists(path)) return false
    this.#budget.reserve(bytes.byteLength)
    const temp = join(this.root, TEMP_FOLDER, `${key}.${randomBytes(6).toString('hex')}`)
    try {
      await writeDurably(temp, bytes)
      await this.#ensureShard(shardOf(key))
      await rename(temp, path)
    } catch (error) {
      await rm(temp, { force: true })
      const code = systemErrorCode(error)
      if (code === 'ENOSPC' || code === 'EDQUOT') {
        throw new ShoalError('DISK_FULL', `disk full: could not store a block of ${bytes.byteLength} bytes in ${this.root}`, { cause: error })
      }
      throw error
    } finally {
      this.#budget.release(bytes.byteLength)
    }
    this.#budget.added(bytes.byteLength)
    this.#dirtyShards.add(shardOf(key))
    return true
  }

  async #quarantine(key: string, size: number): Promise<string> {
    await this.#counted
    const target = join(this.root, CORRUPT_FOLDER, `${key}.${Date.now()}`)
    await mkdir(join(this.root, CORRUPT_FOLDER), { recursive: true })
    await rename(this.#path(key), target)
    this.#budget.removed(size)
    return target
  }

  async #ensureShard(shard: string): Promise<void> {
    if (this.#knownShards.has(shard)) return
    await mkdir(join(this.root, shard), { recursive: true })
    this.#knownShards.add(shard)
  }

  async *#files(): AsyncIterable<{ key: string; size: number }> {
    for (const shard of await readdir(this.root)) {
      if (shard.startsWith('_')) continue
      this.#knownShards.add(shard)
      for (const name of await readdir(join(this.root, shard))) {
        if (!name.endsWith(BLOCK_SUFFIX)) continue
        const { size } = await stat(join(this.root, shard, name))
        yield { key: name.slice(0, -BLOCK_SUFFIX.length), size }
      }
    }
  }

  #path(key: string): string {
    return join(this.root, shardOf(key), key + BLOCK_SUFFIX)
  }
}

function shardOf(key: string): string {
  return key.slice(-3, -1)
}

async function writeDurably(path: string, bytes: Uint8Array): Promise<void> {
  const handle = await open(path, 'wx', 0o644)
  try {
    await handle.writeFile(bytes)
    await handle.sync()
  } finally {
    await handle.close()
  }
}

async function fsyncFolder(path: string): Promise<void> {
  const handle = await open(path, 'r')
  try {
    await handle.sync()
  } finally {
    await handle.close()
  }
}

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path)
    return true
  } catch (error) {
    if (systemErrorCode(error) === 'ENOENT') return false
    throw error
  }
}
