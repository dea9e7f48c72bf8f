/**
 * The block store: immutable blocks keyed by the multihash of their CID. Two
 * implementations keep one contract (block-store.contract.ts): FsBlockStore on disk and
 * MemoryBlockStore for tests and the simulator.
 */
import type { CID } from 'multiformats/cid'
import { checkBlock } from '../core/content/cid.ts'
import { ShoalError } from '../core/errors.ts'

export interface BlockStoreStat {
  blockCount: number
  byteCount: number
  /** null when no quota is set */
  quotaBytes: number | null
}

export interface BlockStore {
  has(cid: CID): Promise<boolean>
  /**
   * The block's bytes, hashed and checked against the CID on every read. Throws NOT_FOUND
   * when absent and BLOCK_CORRUPT when the bytes fail the check; a corrupt copy is taken
   * out of the store so that it is never served and a later put can replace it.
   */
  get(cid: CID): Promise<Uint8Array>
  /**
   * Stores a block whose bytes the caller has already hashed (the importer, or a network
   * layer that verified them). Returns false when the block was already stored. Throws
   * QUOTA_EXCEEDED or DISK_FULL and then leaves nothing behind.
   */
  put(cid: CID, bytes: Uint8Array): Promise<boolean>
  /** Returns the bytes freed, 0 when the block was absent. */
  delete(cid: CID): Promise<number>
  /** Every stored block, as a CIDv1 with the raw codec (the store keeps no codec). */
  cids(): AsyncIterable<CID>
  stat(): Promise<BlockStoreStat>
  /** Makes every put so far durable; call before recording anything that relies on them. */
  flush(): Promise<void>
  close(): Promise<void>
}

/**
 * The read-side check every store runs: true when the bytes match the CID. A hash Shoal
 * cannot compute is refused outright rather than served unchecked.
 */
export function matchesCid(cid: CID, bytes: Uint8Array): boolean {
  const check = checkBlock(cid, bytes)
  if (check.ok) return true
  if (check.reason === 'unsupported-hash') {
    throw new ShoalError('INVALID_CID', `block ${cid} uses hash function 0x${cid.multihash.code.toString(16)}, which Shoal does not support`)
  }
  return false
}

export function corruptBlockError(cid: CID, whereabouts: string): ShoalError {
  return new ShoalError('BLOCK_CORRUPT', `block ${cid} is corrupt: its bytes do not match its hash (${whereabouts})`)
}
