/**
 * The swarm protocol's messages as the core sees them: BitTorrent's peer wire semantics
 * (BEP 3: bitfield, have, interested, choke, request, piece, cancel) over the leaf blocks
 * of one UnixFS DAG, per content session keyed by the DAG's root CID. wire/swarm.ts maps
 * them to and from bytes, enforcing SWARM_LIMITS.
 *
 * Blocks are named by a BlockRef: a leaf by its index in the DAG's depth-first leaf order
 * (which every peer that holds the DAG's inner nodes computes alike), an inner node by its
 * CID, since a peer fetching the DAG cannot number a node before it holds the node's parent.
 */

export const SWARM_PROTOCOL = '/shoal/swarm/1.0.0'

/** A content session's key: the root CID's canonical text (a synthetic name in simulation). */
export type ContentKey = string & { readonly __brand: 'ContentKey' }

export function asContentKey(text: string): ContentKey {
  return text as ContentKey
}

/** A leaf's index (a number), or an inner node's CID text (a string). */
export type BlockRef = number | string

/**
 * A block's bytes. In net/ always a Uint8Array; in simulation, where gigabytes are
 * virtual, any object with a length (and possibly a mark that makes it fail verification).
 */
export interface BlockData {
  readonly byteLength: number
}

export type RejectReason =
  /** The block is not held (or is not part of this content). */
  | 'absent'
  /** The requester is choked. */
  | 'choked'
  /** The requester has too many requests queued here. */
  | 'overloaded'
  /** The block is larger than the protocol allows. */
  | 'too-large'

export const REJECT_REASONS: readonly RejectReason[] = ['absent', 'choked', 'overloaded', 'too-large']

export type SwarmMessage =
  /**
   * Opens a session with a peer, or answers one: which leaves the sender holds. `leafCount`
   * 0 (and empty `bits`) means the sender does not know the DAG's leaves yet, unless
   * `dagHeld`: it holds the whole DAG, which has no leaves (every block an inner node, as in
   * UnixFS v0 files, whose leaves are dag-pb nodes). A peer that knows the leaves sends
   * `ceil(leafCount / 8)` bytes, leaf i at bit (7 - i % 8) of byte i / 8.
   */
  | { type: 'bitfield'; root: ContentKey; leafCount: number; bits: Uint8Array; dagHeld?: true }
  /** The sender neither holds nor fetches this content: there is no session. */
  | { type: 'absent'; root: ContentKey }
  /** The sender now holds these leaves (batched). */
  | { type: 'have'; root: ContentKey; leaves: number[] }
  | { type: 'interested'; root: ContentKey }
  | { type: 'not-interested'; root: ContentKey }
  | { type: 'choke'; root: ContentKey }
  | { type: 'unchoke'; root: ContentKey }
  | { type: 'request'; root: ContentKey; block: BlockRef }
  | { type: 'cancel'; root: ContentKey; block: BlockRef }
  | { type: 'block'; root: ContentKey; block: BlockRef; data: BlockData }
  | { type: 'reject'; root: ContentKey; block: BlockRef; reason: RejectReason }

export type SwarmMessageType = SwarmMessage['type']

/** Bounds the wire enforces on every frame. */
export const SWARM_LIMITS = {
  /**
   * The largest block: 2 MiB, twice the 1 MiB chunks of the unixfs-v1-2025 profile and
   * bitswap's own limit, so that any UnixFS DAG the importer builds can be swarmed.
   */
  blockBytesMax: 2 * 1024 * 1024,
  /** Leaves per content: 2^22 leaves of 1 MiB is 4 TiB. */
  leafCountMax: 1 << 22,
  /** Leaves per `have` message. */
  haveLeavesMax: 4_096,
  /** A CID's bytes (root or inner node). */
  cidBytesMax: 128,
} as const

/** Frames carry a block plus a header; a bitfield of leafCountMax leaves is 512 KiB. */
export const SWARM_FRAME_BYTES_MAX = SWARM_LIMITS.blockBytesMax + 1024
