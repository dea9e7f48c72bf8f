/**
 * MemoryBlockStore: the in-memory twin of FsBlockStore, with the same contract (hash
 * checked on read, corrupt copies dropped, quota). For tests and the simulator.
 */
import type { CID } from 'multiformats/cid'
import { blockKey, cidFromBlockKey } from '../core/content/cid.ts'
import { ShoalError } from '../core/errors.ts'
import { corruptBlockError, matchesCid, type BlockStore, type BlockStoreStat } from './block-store.ts'
import { ByteBudget } from './quota.ts'

export class MemoryBlockStore implements BlockStore {
  readonly #blocks = new Map<string, Uint8Array>()
  readonly #budget: ByteBudget

  constructor(options: { quotaBytes: number | null } = { quotaBytes: null }) {
    this.#budget = new ByteBudget(options.quotaBytes)
  }

  async has(cid: CID): Promise<boolean> {
    return this.#blocks.has(blockKey(cid))
  }

  async get(cid: CID): Promise<Uint8Array> {
    const key = blockKey(cid)
    const bytes = this.#blocks.get(key)
    if (bytes === undefined) throw new ShoalError('NOT_FOUND', `block ${cid} not found`)
    if (matchesCid(cid, bytes)) return bytes
    this.#blocks.delete(key)
    this.#budget.removed(bytes.byteLength)
    throw corruptBlockError(cid, 'dropped')
  }

  async put(cid: CID, bytes: Uint8Array): Promise<boolean> {
    const key = blockKey(cid)
    if (this.#blocks.has(key)) return false
    this.#budget.reserve(bytes.byteLength)
    this.#budget.release(bytes.byteLength)
    this.#blocks.set(key, bytes.slice())
    this.#budget.added(bytes.byteLength)
    return true
  }

  async delete(cid: CID): Promise<number> {
    const key = blockKey(cid)
    const bytes = this.#blocks.get(key)
    if (bytes === undefined) return 0
    this.#blocks.delete(key)
    this.#budget.removed(bytes.byteLength)
    return bytes.byteLength
  }

  async *cids(): AsyncIterable<CID> {
    for (const key of [...this.#blocks.keys()]) yield cidFromBlockKey(key)
  }

  async stat(): Promise<BlockStoreStat> {
    return { blockCount: this.#budget.blockCount, byteCount: this.#budget.byteCount, quotaBytes: this.#budget.quotaBytes }
  }

  async flush(): Promise<void> {}

  async close(): Promise<void> {}

  /** Test hook: overwrite a stored block's bytes in place, as disk corruption would. */
  corruptForTest(cid: CID, bytes: Uint8Array): void {
    this.#blocks.set(blockKey(cid), bytes)
  }
}
