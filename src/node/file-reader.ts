/**
 * Reads a UnixFS file in order with a bounded read-ahead, so that memory stays flat
 * whatever the file's size and however slow the reader. (ipfs-unixfs-exporter reads every
 * child of a DAG layer at once and queues them without bound: a 1 GiB file under the
 * 1024-wide layout is all in memory at once.) The exporter still resolves paths; this
 * reads the bytes of the file it finds.
 *
 * A node's content is its own `data` followed by its children's content, in link order
 * (UnixFS spec); `blockSizes` give each child's content length, so a range skips whole
 * subtrees without reading them.
 */
import * as dagPb from '@ipld/dag-pb'
import { UnixFS } from 'ipfs-unixfs'
import type { CID } from 'multiformats/cid'
import { identity } from 'multiformats/hashes/identity'
import { DAG_PB_CODE, RAW_CODE } from '../core/content/cid.ts'
import { ShoalError } from '../core/errors.ts'

export const READ_AHEAD_BLOCKS_DEFAULT = 8

export interface ReadFileOptions {
  offset?: number
  length?: number
  /** Leaf blocks fetched ahead of the one being yielded. */
  readAheadBlocks?: number
  signal?: AbortSignal
}

type GetBlock = (cid: CID) => Promise<Uint8Array>

/** Bytes of the file, or a leaf block still to fetch and the range of it to keep. */
type Piece = { kind: 'bytes'; bytes: Uint8Array } | { kind: 'leaf'; cid: CID; start: number; end: number }

export async function* readFile(root: CID, getBlock: GetBlock, options: ReadFileOptions = {}): AsyncGenerator<Uint8Array> {
  const start = options.offset ?? 0
  const end = options.length === undefined ? Number.POSITIVE_INFINITY : start + options.length
  const readAhead = Math.max(1, options.readAheadBlocks ?? READ_AHEAD_BLOCKS_DEFAULT)
  const pieces = piecesOf(root, start, end, getBlock)
  const window: Array<Promise<Uint8Array>> = []
  const fill = async (): Promise<void> => {
    while (window.length < readAhead) {
      const next = await pieces.next()
      if (next.done === true) return
      const piece = next.value
      const loaded = piece.kind === 'bytes' ? Promise.resolve(piece.bytes) : getBlock(piece.cid).then((bytes) => bytes.subarray(piece.start, piece.end))
      loaded.catch(() => {}) // awaited in order below; an early failure must not go unhandled meanwhile
      window.push(loaded)
    }
  }
  await fill()
  for (let next = window.shift(); next !== undefined; next = window.shift()) {
    options.signal?.throwIfAborted()
    const bytes = await next
    await fill()
    if (bytes.byteLength > 0) yield bytes
  }
}

/** The pieces that make up [start, end) of the content under `cid`, in order. Fetches inner nodes only. */
async function* piecesOf(cid: CID, start: number, end: number, getBlock: GetBlock): AsyncGenerator<Piece> {
  if (cid.multihash.code === identity.code) {
    yield { kind: 'bytes', bytes: cid.multihash.digest.subarray(start, Math.min(end, cid.multihash.digest.byteLength)) }
    return
  }
  if (cid.code === RAW_CODE) {
    yield { kind: 'leaf', cid, start, end }
    return
  }
  if (cid.code !== DAG_PB_CODE) throw new ShoalError('NOT_A_FILE', `${cid} is not UnixFS content (codec 0x${cid.code.toString(16)})`)
  const node = dagPb.decode(await getBlock(cid))
  const unixfs = UnixFS.unmarshal(node.Data ?? new Uint8Array())
  if (unixfs.type !== 'file' && unixfs.type !== 'raw') throw new ShoalError('NOT_A_FILE', `${cid} is a UnixFS ${unixfs.type}, not a file`)
  const data = unixfs.data ?? new Uint8Array()
  if (start < data.byteLength) yield { kind: 'bytes', bytes: data.subarray(start, Math.min(end, data.byteLength)) }
  if (node.Links.length !== unixfs.blockSizes.length) {
    throw new ShoalError('BLOCK_CORRUPT', `${cid} has ${node.Links.length} links but ${unixfs.blockSizes.length} block sizes`)
  }
  let childStart = data.byteLength
  for (const [index, link] of node.Links.entries()) {
    const childEnd = childStart + Number(unixfs.blockSizes[index])
    if (childEnd > start && childStart < end) {
      yield* piecesOf(link.Hash, Math.max(start - childStart, 0), Math.min(end, childEnd) - childStart, getBlock)
    }
    if (childEnd >= end) return
    childStart = childEnd
  }
}
